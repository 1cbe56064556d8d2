"""Read the project's `ckpt_compat_*` ini keys outside pytest (for the `ckptcompat` CLI).

The CLI must find the very file pytest finds, so `ckptcompat scan` and
`pytest --ckpt-compat` use the same allowlist. The rules are pytest's own
(`_pytest/config/findpaths.py`, pytest 9), for a run with no path arguments:

- from the current directory up to the file system root, each directory is
  searched for, in this order: `pytest.toml`, `.pytest.toml`, `pytest.ini`,
  `.pytest.ini`, `pyproject.toml`, `tox.ini`, `setup.cfg`; the first one that
  holds pytest configuration wins, nearer directories first;
- `pytest.toml` / `.pytest.toml` (table `[pytest]`) and `pytest.ini` /
  `.pytest.ini` (section `[pytest]`) are the configuration even without it;
- `pyproject.toml` counts with `[tool.pytest]` (native TOML values) or
  `[tool.pytest.ini_options]` (ini values; both at once is an error);
  `tox.ini` with `[pytest]`; `setup.cfg` with `[tool:pytest]` (its `[pytest]`
  is an error);
- when none has any, the first `pyproject.toml` seen is the (empty) configuration.

pytest before 9 knows neither the `pytest.toml` files nor `[tool.pytest]`, and
pytest before 8.1 has no `pyproject.toml` fallback: the installed pytest's
rules apply. Values are read as pytest's `linelist` reads them: a list from
TOML, lines from ini text; a TOML file's own table must hold a list.
tests/test_project_config.py checks this module against pytest's own
`locate_config` on every layout it knows.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from .errors import CkptCompatError

Mode = Literal["ini", "toml"]


class Section(dict[str, object]):
    """The pytest configuration of one file, and how its values are typed.

    `mode` is "toml" for native TOML values (`pytest.toml`, `[tool.pytest]`), "ini"
    for ini text and `[tool.pytest.ini_options]` (strings and lists of strings).
    """

    def __init__(self, values: Mapping[str, object], mode: Mode, path: Path) -> None:
        super().__init__(values)
        self.mode: Mode = mode
        self.path = path


@functools.cache
def _pytest_version() -> tuple[int, ...]:
    # Imported here: importlib.metadata costs `ckptcompat scan` ~15 ms at start-up.
    from importlib.metadata import PackageNotFoundError, version

    try:
        text = version("pytest")
    except PackageNotFoundError:  # pragma: no cover - pytest is a dependency
        return (9,)
    parts = []
    for part in text.split(".")[:2]:
        digits = "".join(c for c in part if c.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def _problem(path: Path, exc: BaseException) -> CkptCompatError:
    return CkptCompatError(f"{path}: cannot read the pytest configuration ({exc})")


def _toml(path: Path) -> dict[str, object]:
    # Imported here: `ckptcompat scan` starts in milliseconds, and often finds no file.
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - 3.10
        import tomli as tomllib

    try:
        document: dict[str, object] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _problem(path, exc) from None
    return document


def _ini(path: Path) -> dict[str, dict[str, str]]:
    """The sections of an ini file, parsed by iniconfig as pytest parses them."""
    import iniconfig  # pytest's own dependency and parser

    try:
        parsed = iniconfig.IniConfig(str(path))
    except (OSError, UnicodeDecodeError, iniconfig.ParseError) as exc:
        raise _problem(path, exc) from None
    return {name: dict(parsed[name].items()) for name in parsed.sections}


def _pytest_toml(path: Path) -> Section | None:
    document = _toml(path)
    table = document.get("pytest")
    if isinstance(table, dict):
        return Section(table, "toml", path)
    top_level = [key for key, value in document.items() if not isinstance(value, dict)]
    if top_level:
        raise CkptCompatError(
            f"{path}: pytest configuration must be under a [pytest] table (found top-level "
            f"options: {', '.join(top_level)})"
        )
    return Section({}, "toml", path)  # the configuration, even when empty


def _pytest_ini(path: Path) -> Section | None:
    return Section(_ini(path).get("pytest", {}), "ini", path)  # even without [pytest]


def _pyproject(path: Path) -> Section | None:
    tool = _toml(path).get("tool", {})
    table = tool.get("pytest", {}) if isinstance(tool, dict) else {}
    if not isinstance(table, dict):
        return None
    native = {k: v for k, v in table.items() if k != "ini_options"}
    ini_options = table.get("ini_options")
    if _pytest_version() < (9,):
        native = {}  # [tool.pytest] outside ini_options means nothing to pytest 8
    if native and ini_options is not None:
        raise CkptCompatError(
            f"{path}: cannot use both [tool.pytest] and [tool.pytest.ini_options] (pytest "
            "refuses it too)"
        )
    if native:
        return Section(native, "toml", path)
    if isinstance(ini_options, dict):
        return Section(
            {k: v if isinstance(v, list) else str(v) for k, v in ini_options.items()}, "ini", path
        )
    return None


def _tox_ini(path: Path) -> Section | None:
    sections = _ini(path)
    return Section(sections["pytest"], "ini", path) if "pytest" in sections else None


def _setup_cfg(path: Path) -> Section | None:
    sections = _ini(path)
    if "tool:pytest" in sections:
        return Section(sections["tool:pytest"], "ini", path)
    if "pytest" in sections:
        raise CkptCompatError(
            f"{path}: [pytest] section in setup.cfg files is no longer supported (pytest "
            "fails on it): change it to [tool:pytest]"
        )
    return None


def loaders() -> dict[str, Callable[[Path], Section | None]]:
    """The files pytest looks for, in its order of precedence, for the installed pytest."""
    names: dict[str, Callable[[Path], Section | None]] = {}
    if _pytest_version() >= (9,):
        names |= {"pytest.toml": _pytest_toml, ".pytest.toml": _pytest_toml}
    names |= {
        "pytest.ini": _pytest_ini,
        ".pytest.ini": _pytest_ini,
        "pyproject.toml": _pyproject,
        "tox.ini": _tox_ini,
        "setup.cfg": _setup_cfg,
    }
    return names


def find_ini(start: Path | None = None) -> tuple[Path, Section] | None:
    """The pytest configuration that applies in `start` (default: the current directory).

    None when pytest would run with no configuration file at all.
    """
    here = (start or Path.cwd()).resolve()
    first_pyproject: Path | None = None
    names = loaders()
    for directory in (here, *here.parents):
        for name, loader in names.items():
            candidate = directory / name
            if not candidate.is_file():
                continue
            if name == "pyproject.toml" and first_pyproject is None:
                first_pyproject = candidate
            section = loader(candidate)
            if section is not None:
                return candidate, section
    if first_pyproject is not None and _pytest_version() >= (8, 1):
        # pytest's fallback: the project's pyproject.toml, even without a pytest table.
        return first_pyproject, Section({}, "ini", first_pyproject)
    return None


def ini_lines(section: dict[str, object], key: str) -> list[str]:
    """A `linelist` value as pytest reads it: a list from TOML, non-blank lines from ini text.

    A value of the wrong type is an error, as it is for pytest (which stops with a
    usage error), naming the file.
    """
    value = section.get(key)
    if value is None:
        return []
    mode = getattr(section, "mode", "ini")
    where = getattr(section, "path", "the pytest configuration")
    if isinstance(value, list):
        for i, item in enumerate(value):
            if not isinstance(item, str):
                raise CkptCompatError(
                    f"{where}: config option '{key}' expects a list of strings, but item at "
                    f"index {i} is {type(item).__name__}: {item!r}"
                )
        return list(value)
    if mode == "ini" and isinstance(value, str):
        return [stripped for line in value.split("\n") if (stripped := line.strip())]
    raise CkptCompatError(
        f"{where}: config option '{key}' expects a list for type 'linelist', got "
        f"{type(value).__name__}: {value!r}"
    )


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
