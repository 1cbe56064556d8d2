"""The version matrix as data: `matrix/matrix.toml`, read and validated strictly.

    [matrix]
    python = ["3.11"]
    torch = ["2.4.1", "2.5.1", "2.13.0", "2.15.0"]
    numpy = ["1.25.2", "2.2.6"]
    exclude = [{torch = "<2.3", numpy = ">=2", reason = "torch < 2.3 wheels need numpy 1"}]
    include = [{python = "3.11", torch = "2.5.1", numpy = "1.26.4"}]

    [install]                 # what every cell installs besides torch and numpy
    packages = ["-e .", "-e examples/trainer"]
    find-links = ["$PIP_FIND_LINKS"]     # $VARS expand; empty entries are dropped
    index-url = "https://pypi.org/simple"
    extra-index-url = []

    [run]                     # paths are relative to the project root (the noxfile's folder)
    tests = ["examples/trainer/tests"]
    pytest-args = []
    goldens = "matrix/goldens"
    cells = "matrix/cells"
    report = "matrix/report"
    baseline = "matrix/baseline.json"

The cells are the product python x torch x numpy, minus `exclude` (each with
its reason), plus `include`. Versions are exact pins: a cell is named after
its environment tag (`torch2.5.1-numpy1.25.2-py3.11`), the same tag the
plugin writes goldens under, so a range would make the name a lie. An unknown
key, a range where a pin belongs, a duplicate, an exclude that matches no
cell, or a cell that cannot work (torch < 2.3 wheels with numpy 2) is a
`MatrixError` naming the file and the key.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

from ..environment import tag
from ..errors import MatrixError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

DEFAULT_MATRIX = "matrix/matrix.toml"
ENV_VAR = "CKPTCOMPAT_MATRIX"  # which matrix file the noxfile reads
_PIN = re.compile(r"^\d+(\.\d+){1,2}$")
_AXES = ("python", "torch", "numpy")
_KEYS: dict[str, tuple[str, ...]] = {
    "matrix": (*_AXES, "exclude", "include"),
    "install": ("packages", "find-links", "index-url", "extra-index-url"),
    "run": ("tests", "pytest-args", "goldens", "cells", "report", "baseline"),
}
# Cells no release can satisfy, whatever the user's reason: (torch, numpy, python, why).
_IMPOSSIBLE = (
    ("<2.3", ">=2", "", "torch < 2.3 wheels are built against numpy 1 and do not run with numpy 2"),
    ("", "<1.26", ">=3.12", "numpy < 1.26 has no wheels for python >= 3.12"),
    ("", ">=2.3", "<3.11", "numpy >= 2.3 needs python >= 3.11"),
)


@dataclass(frozen=True, order=True)
class Cell:
    """One environment of the matrix: it writes goldens, then reads everyone's."""

    python: str
    torch: str
    numpy: str

    @property
    def tag(self) -> str:
        """The environment tag, which is also the nox session's name."""
        return tag(self.torch, self.numpy, self.python)


@dataclass(frozen=True)
class Exclusion:
    """Cells left out of the product, and why."""

    specs: dict[str, SpecifierSet]
    reason: str

    def matches(self, cell: Cell) -> bool:
        """Whether `cell` falls under every axis this exclusion names."""
        return all(Version(getattr(cell, axis)) in spec for axis, spec in self.specs.items())


@dataclass(frozen=True)
class Matrix:
    """A validated matrix file."""

    path: Path
    cells: tuple[Cell, ...]
    exclusions: tuple[Exclusion, ...] = ()
    packages: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()
    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    tests: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    goldens: str = "matrix/goldens"
    cell_reports: str = "matrix/cells"
    report: str = "matrix/report"
    baseline: str = "matrix/baseline.json"
    excluded: tuple[tuple[Cell, str], ...] = field(default=())

    def cell(self, name: str) -> Cell:
        """The cell whose tag is `name`."""
        for cell in self.cells:
            if cell.tag == name:
                return cell
        raise MatrixError(f"{self.path}: no cell {name!r} (cells: {', '.join(self.tags)})")

    @property
    def tags(self) -> list[str]:
        """Every cell's tag, in matrix order."""
        return [c.tag for c in self.cells]

    def index_args(self) -> list[str]:
        """Installer options (pip and `uv pip` spell them alike)."""
        args = [a for link in self.find_links for a in ("--find-links", link)]
        if self.index_url:
            args += ["--index-url", self.index_url]
        args += [a for url in self.extra_index_urls for a in ("--extra-index-url", url)]
        return args


def load_matrix(path: str | os.PathLike[str]) -> Matrix:
    """Read and validate a matrix file; `MatrixError` names the file and key on any problem."""
    path = Path(path)
    try:
        doc = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise MatrixError(f"{path}: no such matrix file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MatrixError(f"{path}: cannot read: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise MatrixError(f"{path}: not valid TOML: {exc}") from None
    return _Reader(path).matrix(doc)


class _Reader:
    """Validation with the file name at hand for every message."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str) -> MatrixError:
        return MatrixError(f"{self.path}: {key}: {problem}")

    def table(self, doc: dict[str, Any], key: str, allowed: tuple[str, ...]) -> dict[str, Any]:
        value = doc.get(key, {})
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        for unknown in sorted(set(value) - set(allowed)):
            raise self.fail(
                f"{key}.{unknown}", f"unknown key (expected one of: {', '.join(allowed)})"
            )
        return value

    def strings(
        self, table: dict[str, Any], key: str, where: str, *, required: bool = False
    ) -> list[str]:
        value = table.get(key)
        if value is None:
            if required:
                raise self.fail(f"{where}.{key}", "missing (a list of strings)")
            return []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(f"{where}.{key}", "must be a list of strings")
        return value

    def string(self, table: dict[str, Any], key: str, where: str, default: str) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or not value:
            raise self.fail(f"{where}.{key}", "must be a non-empty string")
        return value

    def pins(self, values: list[str], where: str) -> list[str]:
        if not values:
            raise self.fail(where, "is empty")
        for v in values:
            if not _PIN.match(v):
                raise self.fail(
                    where,
                    f"{v!r} is not an exact version like '2.5.1' (cells are named after their "
                    "exact versions; ranges belong in exclude)",
                )
        if len(set(values)) != len(values):
            dup = next(v for v in values if values.count(v) > 1)
            raise self.fail(where, f"{dup!r} is listed twice")
        return values

    def matrix(self, doc: dict[str, Any]) -> Matrix:
        for unknown in sorted(set(doc) - set(_KEYS)):
            raise self.fail(unknown, f"unknown table (expected: {', '.join(_KEYS)})")
        m = self.table(doc, "matrix", _KEYS["matrix"])
        install = self.table(doc, "install", _KEYS["install"])
        run = self.table(doc, "run", _KEYS["run"])
        axes = {
            a: self.pins(self.strings(m, a, "matrix", required=True), f"matrix.{a}") for a in _AXES
        }
        exclusions = [self.exclusion(e, i) for i, e in enumerate(self.entries(m, "exclude"))]
        product = [
            Cell(py, t, n) for py in axes["python"] for t in axes["torch"] for n in axes["numpy"]
        ]
        cells: list[Cell] = []
        excluded: list[tuple[Cell, str]] = []
        used = [False] * len(exclusions)
        for cell in product:
            hits = [i for i, e in enumerate(exclusions) if e.matches(cell)]
            for i in hits:
                used[i] = True
            if hits:
                excluded.append((cell, exclusions[hits[0]].reason))
            else:
                cells.append(cell)
        for i, was_used in enumerate(used):
            if not was_used:
                raise self.fail(f"matrix.exclude[{i}]", "matches no cell (remove it)")
        for i, entry in enumerate(self.entries(m, "include")):
            cell = self.include(entry, i)
            where = f"matrix.include[{i}]"
            if cell in cells:
                raise self.fail(where, f"{cell.tag} is already in the product")
            if any(e.matches(cell) for e in exclusions):
                raise self.fail(where, f"{cell.tag} is also excluded")
            cells.append(cell)
        for cell in cells:
            self.check_possible(cell)
        if not cells:
            raise self.fail("matrix", "every cell is excluded")
        links = [os.path.expandvars(v) for v in self.strings(install, "find-links", "install")]
        index_url = install.get("index-url")
        if index_url is not None and (not isinstance(index_url, str) or not index_url):
            raise self.fail("install.index-url", "must be a non-empty string")
        return Matrix(
            path=self.path,
            cells=tuple(cells),
            exclusions=tuple(exclusions),
            excluded=tuple(excluded),
            packages=tuple(self.strings(install, "packages", "install")),
            # An unset $VAR expands to itself: drop it like an empty one, so one
            # file serves machines with and without a local wheel folder.
            find_links=tuple(v for v in links if v and "$" not in v),
            index_url=index_url,
            extra_index_urls=tuple(self.strings(install, "extra-index-url", "install")),
            tests=tuple(self.strings(run, "tests", "run")),
            pytest_args=tuple(self.strings(run, "pytest-args", "run")),
            goldens=self.string(run, "goldens", "run", "matrix/goldens"),
            cell_reports=self.string(run, "cells", "run", "matrix/cells"),
            report=self.string(run, "report", "run", "matrix/report"),
            baseline=self.string(run, "baseline", "run", "matrix/baseline.json"),
        )

    def entries(self, m: dict[str, Any], key: str) -> list[dict[str, Any]]:
        value = m.get(key, [])
        if not isinstance(value, list) or not all(isinstance(e, dict) for e in value):
            raise self.fail(f"matrix.{key}", f"must be a list of tables ([[matrix.{key}]])")
        return value

    def exclusion(self, entry: dict[str, Any], i: int) -> Exclusion:
        where = f"matrix.exclude[{i}]"
        for unknown in sorted(set(entry) - {*_AXES, "reason"}):
            raise self.fail(
                f"{where}.{unknown}", "unknown key (expected python, torch, numpy, reason)"
            )
        reason = entry.get("reason")
        if not isinstance(reason, str) or not reason.strip():
            raise self.fail(f"{where}.reason", "missing: say why these cells are left out")
        specs = {}
        for axis in _AXES:
            if axis in entry:
                specs[axis] = self.specifier(entry[axis], f"{where}.{axis}")
        if not specs:
            raise self.fail(where, "names no axis (python, torch or numpy)")
        return Exclusion(specs, reason)

    def specifier(self, value: object, where: str) -> SpecifierSet:
        if not isinstance(value, str):
            raise self.fail(where, "must be a string like '<2.3' or '2.4.1'")
        text = f"=={value}" if _PIN.match(value) else value
        try:
            return SpecifierSet(text)
        except InvalidSpecifier:
            raise self.fail(where, f"{value!r} is not a version or specifier like '<2.3'") from None

    def include(self, entry: dict[str, Any], i: int) -> Cell:
        where = f"matrix.include[{i}]"
        for unknown in sorted(set(entry) - set(_AXES)):
            raise self.fail(f"{where}.{unknown}", "unknown key (expected python, torch, numpy)")
        values = []
        for axis in _AXES:
            value = entry.get(axis)
            if not isinstance(value, str):
                raise self.fail(f"{where}.{axis}", "missing (an exact version string)")
            values.append(self.pins([value], f"{where}.{axis}")[0])
        return Cell(*values)

    def check_possible(self, cell: Cell) -> None:
        for torch_spec, numpy_spec, python_spec, why in _IMPOSSIBLE:
            if (
                Version(cell.torch) in SpecifierSet(torch_spec)
                and Version(cell.numpy) in SpecifierSet(numpy_spec)
                and Version(cell.python) in SpecifierSet(python_spec)
            ):
                raise self.fail(
                    "matrix",
                    f"cell {cell.tag} cannot work ({why}): leave it out with a "
                    "[[matrix.exclude]] entry",
                )
