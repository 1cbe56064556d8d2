"""Predictions: what torch releases that are not installed do with a checkpoint.

A scan's facts do not depend on torch (`machine`, `fastpath`); the rules of
every release from 1.13 are in the offline table (`torch_table`) and the
names of every numpy from 1.23 in another (`numpy_table`), so one scan is
judged by any set of releases without installing them, and nothing here
imports torch or numpy.

- `select_torch(spec)`: the releases `ckptcompat scan --torch SPEC` means:
  one version (`2.6`, `2.6.0`), a list (`2.4,2.6`), a range in PEP 440's
  words (`>=2.4`, `>=2.4,<2.9`, `==2.5.*`) or `all`.
- `predict_file` / `predict_bytes`: one checkpoint judged by each release,
  opened once and each pickle walked once (`scanner.scan_for`), as a
  `Prediction`: the `FileScan` of each release, exactly what a scan under
  that torch (and numpy) would say.
- For reports: `Prediction.verdict(version)` (`schemas.PredictedVerdict`)
  and `Prediction.summary()`, one line for people ("loads with weights_only
  on torch 2.6-2.15; blocked on 1.13-2.5 by builtins.set").

The version matrix can show predicted columns for the releases it did not
install, in a job without torch, numpy or the project::

    numpy = reader_numpy("1.25.2")
    allow = Allowlist.for_reader(ini_entries, numpy, imports=False)
    prediction = predict_file(golden, ["2.6.0", "2.7.1"], numpy=numpy, allowlist=allow)
    prediction.verdict("2.6.0")["outcome"]

Where it did install a release, `verdict(...)["outcome"]` is what the cell's
real load must have been (ok, or blocked/missing/error), so agreement can be
shown, and a disagreement is a bug of ours.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ..errors import CkptCompatError
from ..schemas import PredictedVerdict, PredictFile, ScanObstacle
from . import torch_table
from .allowlist import Allowlist
from .container import Checkpoint, checkpoint_from_bytes, open_checkpoint
from .machine import TypeResolver
from .names import py3_name
from .numpy_reader import ReaderNumpy
from .releases import version_key
from .rules import TorchRules
from .scanner import FileScan, scan_for

#: `--numpy none`: a reader without numpy.
NO_NUMPY: Final = "none"
_OPERATOR: Final = re.compile(r"^\s*(~=|>=|<=|==|!=|>|<)\s*([0-9][0-9.]*(?:\.\*)?)\s*$")
_VERSION: Final = re.compile(r"^\s*v?(\d+(?:\.\d+){0,2})(?:\+[\w.]+)?\s*$")


class TorchSpecError(CkptCompatError, ValueError):
    """A `--torch` SPEC that is malformed or selects nothing; the message names the known ones."""


@dataclass(frozen=True)
class Selection:
    """The releases a `--torch` SPEC selects (oldest first); `single`: SPEC named one release."""

    versions: tuple[str, ...]
    single: bool


def _known_line() -> str:
    return f"known: {', '.join(torch_table.known_versions())}"


def select_torch(spec: str) -> Selection:
    """The releases of the table `spec` names (see the module doc); `TorchSpecError` if none."""
    known = torch_table.known_versions()
    text = spec.strip()
    if text.lower() == "all":
        return Selection(known, single=False)
    items = [item.strip() for item in text.split(",")]
    if not text or not all(items):
        raise TorchSpecError(f"--torch {spec!r}: empty version ({_known_line()})")
    ranged = [_OPERATOR.match(item) for item in items]
    if any(ranged):
        if not all(ranged):
            raise TorchSpecError(
                f"--torch {spec!r}: mix of versions and ranges; write a list (2.4,2.6) or a "
                "range (>=2.4,<2.9)"
            )
        chosen = tuple(
            v for v in known if all(_satisfies(v, m.group(1), m.group(2)) for m in ranged if m)
        )
        if not chosen:
            raise TorchSpecError(f"--torch {spec!r} selects no release ({_known_line()})")
        return Selection(chosen, single=False)
    versions = [_one(item, spec) for item in items]
    inexact = [v for v in versions if v not in known]
    if len(items) > 1 and inexact:
        # `ckptcompat.predict/1` has no place to say that a column is approximated.
        raise TorchSpecError(
            f"--torch {spec!r}: {inexact[0]} is not a release the rules table holds, and only "
            f"a scan of it alone says whose rules stand for it: give --torch {inexact[0]} alone"
        )
    ordered = tuple(sorted(dict.fromkeys(versions), key=version_key))
    return Selection(ordered, single=len(items) == 1)


def _one(item: str, spec: str) -> str:
    """The version one list item names.

    `2.6.0` (or a build variant, `2.6.0+cpu`) itself, `2.6` its newest patch in
    the table; any other version the table can stand for (`2.7.0.dev20250101`,
    `2.6.0+mybuild`: `torch_table.resolve`) as written, judged by
    `torch_table.rules_for` with the approximation said.
    """
    from packaging.version import InvalidVersion, Version  # here: only `--torch` needs it

    m = _VERSION.match(item)
    try:
        Version(item.strip())
    except InvalidVersion:
        msg = f"--torch {spec!r}: {item!r} is not a version ({_known_line()})"
        raise TorchSpecError(msg) from None
    wanted = m.group(1) if m else ""
    known = torch_table.known_versions()
    if not m or wanted.count(".") == 2 or "+" in item:
        found = torch_table.resolve(item.strip().removeprefix("v"))
        return found.release if found.exact else found.version
    prefix = tuple(int(p) for p in wanted.split("."))
    same = [v for v in known if version_key(v)[: len(prefix)] == prefix]
    if not same:
        raise torch_table.UnknownTorchVersionError(wanted, known)
    return same[-1]


def _satisfies(version: str, op: str, bound: str) -> bool:
    key = version_key(version)
    if bound.endswith(".*"):  # `==2.5.*`, `!=2.5.*`: the release series
        prefix = tuple(int(p) for p in bound[:-2].split("."))
        inside = key[: len(prefix)] == prefix
        if op not in ("==", "!="):
            raise TorchSpecError(f"{op}{bound}: a wildcard only goes with == or !=")
        return inside if op == "==" else not inside
    other = version_key(bound)
    if op == "~=":  # PEP 440's compatible release: ~=2.4 is >=2.4,==2.*
        parts = bound.split(".")
        if len(parts) < 2:
            raise TorchSpecError(f"~={bound}: a compatible release needs two parts or more")
        prefix = tuple(int(p) for p in parts[:-1])
        return key >= other and key[: len(prefix)] == prefix
    return {
        ">=": key >= other,
        "<=": key <= other,
        ">": key > other,
        "<": key < other,
        "==": key == other,
        "!=": key != other,
    }[op]


def reader_numpy(version: str | None) -> ReaderNumpy:
    """The reader's numpy for `--numpy VERSION`: None, the installed one; `none`, no numpy."""
    if version is None:
        return ReaderNumpy.here()
    if version.strip().lower() == NO_NUMPY:
        return ReaderNumpy(None)
    return ReaderNumpy.release(version.strip())


@dataclass
class Prediction:
    """One checkpoint judged by several torch releases (and one numpy)."""

    path: str
    numpy: str | None
    scans: dict[str, FileScan]  # release -> what a scan under that torch says, oldest first

    @property
    def error(self) -> str | None:
        """Why the file cannot be read at all (the same for every release), else None."""
        return next((s.error for s in self.scans.values() if s.error), None)

    @property
    def format(self) -> str | None:
        """The container format (`torch-zip`, ...)."""
        return next((s.format for s in self.scans.values() if s.format), None)

    @property
    def loadable_everywhere(self) -> bool:
        """True when every release loads it."""
        return all(s.loadable for s in self.scans.values())

    def verdict(self, version: str) -> PredictedVerdict:
        """What release `version` does with the file (`files[].by_torch[version]`)."""
        return verdict_of(self.scans[version])

    def to_json(self) -> PredictFile:
        """The `files[]` record of `ckptcompat.predict/1`."""
        return {
            "path": self.path,
            "format": self.format,
            "error": self.error,
            "by_torch": {v: self.verdict(v) for v in self.scans} if not self.error else {},
        }

    def summary(self) -> str:
        """One line for people: which releases load it, and what stops the others."""
        if self.error:
            return f"{self.path}: {self.error}"
        versions = list(self.scans)
        groups: dict[_Reason, list[str]] = {}
        for version in versions:
            groups.setdefault(_reason_key(self.scans[version]), []).append(version)
        phrases = []
        for key, members in sorted(groups.items(), key=lambda kv: (not kv[0][0], 0)):
            where = _ranges(members, versions)
            phrases.append(_phrase(key, where))
        danger = any(s.verdict is not None and s.verdict.dangerous for s in self.scans.values())
        tail = "; DANGEROUS (can run code)" if danger else ""
        # Rules that only approximate a torch say so here too (their note is in each scan).
        tail += "".join(
            f"; torch {v}: not in the rules table, approximated"
            for v, s in self.scans.items()
            if not torch_table.holds(v) and s.verdict is not None
        )
        numpy = f", numpy {self.numpy}" if self.numpy else ", no numpy"
        return f"{self.path}: {'; '.join(phrases)}{tail} (predicted{numpy})"


def verdict_of(scan: FileScan) -> PredictedVerdict:
    """A `FileScan` as the short verdict of `by_torch`."""
    verdict = scan.verdict
    if verdict is None:
        return {
            "loadable": False,
            "outcome": "error",
            "blocked": [],
            "missing": [],
            "obstacles": [{"code": "unreadable", "message": scan.error or ""}],
            "dangerous": False,
        }
    blocked = [r.lookup for r in verdict.troubles if r.status == "blocked"]
    missing = [r.lookup for r in verdict.troubles if r.status == "missing"]
    obstacles: list[ScanObstacle] = [
        {"code": o.code, "message": o.message} for o in verdict.obstacles
    ]
    outcome = "ok" if scan.loadable else "missing" if missing else "blocked" if blocked else "error"
    return {
        "loadable": scan.loadable,
        "outcome": outcome,
        "blocked": blocked,
        "missing": missing,
        "obstacles": obstacles,
        "dangerous": verdict.dangerous,
    }


_Reason = tuple[bool, tuple[str, ...], tuple[str, ...], tuple[str, ...]]


def _reason_key(scan: FileScan) -> _Reason:
    """What stops a release, in words that do not depend on its spelling of python-2 names."""
    v = verdict_of(scan)
    return (
        v["loadable"],
        tuple(dict.fromkeys(py3_name(n) for n in v["blocked"])),
        tuple(dict.fromkeys(py3_name(n) for n in v["missing"])),
        tuple(dict.fromkeys(o["code"] for o in v["obstacles"])),
    )


def _phrase(key: _Reason, where: str) -> str:
    loadable, blocked, missing, codes = key
    if loadable:
        return f"loads with weights_only on torch {where}"
    if not blocked and not missing:
        return f"refused on {where} ({', '.join(codes)})"
    if blocked:
        text = f"blocked on {where} by {_names(blocked)}"
        text += f" and missing {_names(missing)}" if missing else ""
    else:
        text = f"missing on {where}: {_names(missing)}"
    return text + (f", refused ({', '.join(codes)})" if codes else "")


def _names(names: Sequence[str], most: int = 4) -> str:
    shown = ", ".join(names[:most])
    return shown + (f" (+{len(names) - most} more)" if len(names) > most else "")


def _ranges(members: list[str], order: list[str]) -> str:
    """`2.6-2.15, 2.17` for the releases `members` of the ordered selection `order`."""
    index = {v: i for i, v in enumerate(order)}
    runs: list[list[str]] = []
    for version in members:
        if runs and index[runs[-1][-1]] + 1 == index[version]:
            runs[-1].append(version)
        else:
            runs.append([version])
    whole = _whole_minors(order)
    out = []
    for run in runs:
        first, last = _shown(run[0], whole, run), _shown(run[-1], whole, run)
        out.append(first if first == last else f"{first}-{last}")
    return ", ".join(out)


def _whole_minors(order: list[str]) -> set[str]:
    """The minors (`2.5`) whose every release in the table is in `order`."""
    selected = set(order)
    minors: dict[str, list[str]] = {}
    for v in torch_table.known_versions():
        minors.setdefault(".".join(v.split(".")[:2]), []).append(v)
    return {m for m, vs in minors.items() if set(vs) <= selected}


def _shown(version: str, whole: set[str], run: list[str]) -> str:
    minor = ".".join(version.split(".")[:2])
    same_minor = [v for v in torch_table.known_versions() if v.startswith(minor + ".")]
    if minor in whole and set(same_minor) <= set(run):
        return minor
    return version


def readers_for(versions: Iterable[str]) -> list[TorchRules]:
    """The table's rules of each release, in order."""
    return [torch_table.rules_for(v) for v in versions]


def predict_file(
    path: str | os.PathLike[str],
    torch: Sequence[str],
    *,
    numpy: ReaderNumpy | None = None,
    allowlist: Allowlist | Iterable[str] = (),
) -> Prediction:
    """What each torch release in `torch` does with the checkpoint at `path` (never raises for it).

    `numpy`: the reader's numpy (`reader_numpy("1.25.2")`; default the one
    installed here). `allowlist`: entries (`module.name`) or an `Allowlist`
    as the reader's code registers them.
    """
    numpy = numpy or ReaderNumpy.here()
    shown = os.fspath(path)
    return _predict(shown, lambda: open_checkpoint(Path(path)), torch, numpy, allowlist)


def predict_bytes(
    data: bytes,
    torch: Sequence[str],
    *,
    numpy: ReaderNumpy | None = None,
    allowlist: Allowlist | Iterable[str] = (),
    shown: str = "<bytes>",
) -> Prediction:
    """`predict_file` for checkpoint bytes held in memory."""
    numpy = numpy or ReaderNumpy.here()
    return _predict(shown, lambda: checkpoint_from_bytes(data, shown), torch, numpy, allowlist)


def _predict(
    shown: str,
    opener: Callable[[], Checkpoint],
    torch: Sequence[str],
    numpy: ReaderNumpy,
    allowlist: Allowlist | Iterable[str],
) -> Prediction:
    if not isinstance(allowlist, Allowlist):
        allowlist = Allowlist.for_reader(allowlist, numpy)
    readers = readers_for(torch)
    scans = scan_for(shown, opener, readers, allowlist, TypeResolver(numpy))
    return Prediction(shown, numpy.version, dict(zip(torch, scans, strict=True)))
