"""`[tool.ckptcompat.lint]` in pyproject.toml: which codes `ckptcompat lint` reports, and where.

    [tool.ckptcompat.lint]
    select = ["CKC"]                       # codes or prefixes (default: every code)
    ignore = ["CKC003"]                    # taken out of select
    exclude = ["vendored", "legacy/*.py"]  # files and folders never linted
    [tool.ckptcompat.lint.per-file-ignores]
    "tests/**" = ["CKC001", "CKC005"]      # codes not reported in matching files

The keys and their meaning follow ruff's: patterns are globs relative to the
folder of the pyproject.toml (`*` also crosses `/`), and a pattern without a
`/` matches any one component of the path (a folder or a file name).
`exclude` applies to files given on the command line too, as ruff's
`--force-exclude` does, so a pre-commit hook honours it. The file used is the
nearest pyproject.toml with a `[tool.ckptcompat.lint]` table, from the current
folder up (or `--config FILE`).
"""

from __future__ import annotations

import fnmatch
import os
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - 3.10
    import tomli as tomllib

from .errors import LintConfigError

KEYS = ("select", "ignore", "exclude", "per-file-ignores")


def _codes(values: Iterable[str], where: str, known: Iterable[str]) -> frozenset[str]:
    """Codes or prefixes (`CKC`, `CKC00`) made into the codes they select."""
    known = tuple(known)
    out: set[str] = set()
    for value in values:
        if not isinstance(value, str):
            raise LintConfigError(f"{where}: {value!r} is not a code (a string such as 'CKC001')")
        matched = {code for code in known if code.startswith(value.strip().upper())}
        if not value.strip() or not matched:
            raise LintConfigError(
                f"{where}: {value!r} selects no code; the codes are {', '.join(known)}"
            )
        out |= matched
    return frozenset(out)


def _strings(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise LintConfigError(f"{where}: expected a list of strings, got {value!r}")
    return list(value)


def matches(rel: str, pattern: str) -> bool:
    """Whether the POSIX path `rel` (relative to the config's folder) matches `pattern`."""
    pattern = pattern.strip().strip("/")
    if pattern.startswith("./"):
        pattern = pattern[2:]
    if "/" not in pattern:
        return any(fnmatch.fnmatchcase(part, pattern) for part in rel.split("/"))
    candidates = [pattern]
    while candidates[-1].startswith("**/"):  # `**/x` also matches `x` at the top
        candidates.append(candidates[-1][3:])
    return any(
        fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(rel, f"{p}/*") for p in candidates
    )


@dataclass(frozen=True)
class LintConfig:
    """What to report: the selected codes, excluded paths and per-file ignores."""

    codes: frozenset[str]
    root: Path = field(default_factory=Path.cwd)  # the patterns' base folder
    exclude: tuple[str, ...] = ()
    per_file_ignores: tuple[tuple[str, frozenset[str]], ...] = ()
    path: Path | None = None  # the pyproject.toml it came from

    @classmethod
    def default(cls, known: Iterable[str]) -> LintConfig:
        """Every code, nothing excluded (no configuration file)."""
        return cls(frozenset(known))

    @classmethod
    def from_table(
        cls, table: Mapping[str, object], path: Path, known: Iterable[str]
    ) -> LintConfig:
        """Validate a `[tool.ckptcompat.lint]` table read from `path`."""
        known = tuple(known)
        where = f"{path} [tool.ckptcompat.lint]"
        unknown = sorted(set(table) - set(KEYS))
        if unknown:
            raise LintConfigError(
                f"{where}: unknown key(s) {', '.join(unknown)}; the keys are {', '.join(KEYS)}"
            )
        select = (
            _codes(_strings(table["select"], f"{where} select"), f"{where} select", known)
            if "select" in table
            else frozenset(known)
        )
        ignore = _codes(_strings(table.get("ignore", []), f"{where} ignore"), where, known)
        exclude = tuple(_strings(table.get("exclude", []), f"{where} exclude"))
        per_file = table.get("per-file-ignores", {})
        if not isinstance(per_file, dict):
            raise LintConfigError(f"{where} per-file-ignores: expected a table, got {per_file!r}")
        ignores = tuple(
            (
                pattern,
                _codes(
                    _strings(codes, f"{where} per-file-ignores.{pattern}"),
                    f"{where} per-file-ignores",
                    known,
                ),
            )
            for pattern, codes in per_file.items()
        )
        return cls(select - ignore, path.parent, exclude, ignores, path)

    def relative(self, path: str | os.PathLike[str]) -> str | None:
        """`path` relative to the config's folder (POSIX), or None when it lies outside."""
        try:
            rel = Path(os.path.abspath(path)).relative_to(self.root.resolve())
        except ValueError:
            try:  # the folder itself may be reached through a symlink
                rel = Path(os.path.abspath(path)).resolve().relative_to(self.root.resolve())
            except ValueError:
                return None
        return rel.as_posix()

    def excluded(self, path: str | os.PathLike[str]) -> bool:
        """Whether a file or folder is never linted."""
        rel = self.relative(path)
        return rel is not None and rel != "." and any(matches(rel, p) for p in self.exclude)

    def reports(self, path: str, code: str) -> bool:
        """Whether `code` is reported in `path`."""
        if code not in self.codes:
            return False
        if not self.per_file_ignores:
            return True
        rel = self.relative(path)
        return rel is None or not any(
            code in codes and matches(rel, pattern) for pattern, codes in self.per_file_ignores
        )

    def with_codes(
        self, select: Iterable[str] | None, ignore: Iterable[str], known: Iterable[str]
    ) -> LintConfig:
        """The command line's `--select` / `--ignore` over the file's."""
        known = tuple(known)
        codes = _codes(select, "--select", known) if select else self.codes
        codes -= _codes(ignore, "--ignore", known)
        return LintConfig(codes, self.root, self.exclude, self.per_file_ignores, self.path)


def find_config(start: Path | None = None) -> Path | None:
    """The nearest pyproject.toml with a `[tool.ckptcompat.lint]` table, from `start` up."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file() and _table(candidate) is not None:
            return candidate
    return None


def _table(path: Path) -> dict[str, object] | None:
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise LintConfigError(f"{path}: cannot read ({exc})") from None
    tool = document.get("tool", {})
    table = tool.get("ckptcompat", {}).get("lint") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise LintConfigError(f"{path}: [tool.ckptcompat.lint] must be a table")
    return table


def load_config(path: Path | None, known: Iterable[str]) -> LintConfig:
    """The configuration in `path` (a pyproject.toml), or the default when `path` is None."""
    if path is None:
        return LintConfig.default(known)
    table = _table(path)
    if table is None:
        raise LintConfigError(f"{path}: no [tool.ckptcompat.lint] table")
    return LintConfig.from_table(table, path, known)
