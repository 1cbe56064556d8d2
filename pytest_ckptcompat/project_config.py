"""Read the project's `ckpt_compat_*` ini keys outside pytest (for the `ckptcompat` CLI).

pytest looks for its configuration in the first of pytest.ini, pyproject.toml,
tox.ini and setup.cfg (walking up from the current directory) that has a
pytest section; the CLI finds the same file so `ckptcompat scan` and
`pytest --ckpt-compat` use the same allowlist.
"""

from __future__ import annotations

import sys
from pathlib import Path

from .errors import CkptCompatError


def _read(path: Path) -> dict[str, object] | None:
    """The pytest section of one candidate file, or None when it has none."""
    # Imported here: `ckptcompat scan` starts in milliseconds, and often finds no file.
    import configparser

    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        import tomli as tomllib
    try:
        if path.name == "pyproject.toml":
            tool = tomllib.loads(path.read_text(encoding="utf-8")).get("tool", {})
            pytest_table = tool.get("pytest", {})
            if "ini_options" in pytest_table:
                return dict(pytest_table["ini_options"])
            return dict(pytest_table) if pytest_table else None
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, configparser.Error) as exc:
        raise CkptCompatError(f"{path}: cannot read the pytest configuration ({exc})") from None
    section = "tool:pytest" if path.name == "setup.cfg" else "pytest"
    if parser.has_section(section):
        return dict(parser.items(section))
    return {} if path.name == "pytest.ini" else None


def find_ini(start: Path | None = None) -> tuple[Path, dict[str, object]] | None:
    """The pytest configuration that applies in `start` (default: the current directory)."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        for name in ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg"):
            candidate = directory / name
            if candidate.is_file():
                section = _read(candidate)
                if section is not None:
                    return candidate, section
    return None


def ini_lines(section: dict[str, object], key: str) -> list[str]:
    """A `linelist` ini value as pytest would read it (TOML list or text lines)."""
    value = section.get(key, [])
    if isinstance(value, str):
        return [line for line in value.splitlines() if line.strip()]
    if isinstance(value, list):
        return [str(v) for v in value]
    return []


# Top-level files that are tooling, not the project's importable code.
_TOOLING = frozenset({"setup", "noxfile", "conftest", "tasks", "fabfile", "manage"})


def first_party_packages(root: Path) -> frozenset[str]:
    """The project's own top-level packages and modules, under `root` and `root/src`.

    Their classes are the ones advice may suggest allowlisting (the user's own
    data classes); see `scan.plaindata.advice`.
    """
    names: set[str] = set()
    for base in (root, root / "src"):
        try:
            children = list(base.iterdir())
        except OSError:
            continue
        for child in children:
            if child.suffix == ".py" and child.stem not in _TOOLING:
                names.add(child.stem)
                continue
            try:
                if (child / "__init__.py").is_file():
                    names.add(child.name)
            except OSError:  # a folder we may not look into is not the project's code
                continue
    return frozenset(n for n in names if n.isidentifier())
