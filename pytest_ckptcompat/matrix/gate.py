"""Regression gating: before a dependency upgrade lands, fail on what stops loading.

Two questions, both answered from matrix documents (`ckptcompat.matrix/1`):

- against a baseline (`ckptcompat gate matrix.json --baseline matrix/baseline.json`):
  every (artifact, writer, reader) that was `ok` and is not now (or was not
  checked at all), and every (global, reader) that was allowed and is now
  blocked or missing, is a regression; what went the other way is good news;
- an upgrade (`--current TAG --candidate TAG`, two readers of one matrix):
  what loads under the current environment and not under the candidate
  (reading), and what the current environment writes that every reader
  loads but the candidate's files do not (writing).

The baseline (`ckptcompat.baseline/1`) keeps only what the gate compares,
sorted, so a change to it reads well in a diff.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import schemas
from ..environment import tag_key
from ..errors import ReportError
from ..vocab import is_allowed
from .merge import read_json


@dataclass
class GateResult:
    """What got worse (fails the gate) and what got better (good news)."""

    regressions: list[str] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    fixed_by: str = "since the baseline"

    @property
    def passed(self) -> bool:
        """No regression."""
        return not self.regressions

    def text(self) -> str:
        """The verdict for a terminal or a CI log."""
        lines = []
        if self.regressions:
            lines.append(f"{len(self.regressions)} regression(s):")
            lines += [f"  {r}" for r in self.regressions]
        if self.fixed:
            lines.append(f"{len(self.fixed)} fixed {self.fixed_by} (good news):")
            lines += [f"  {f}" for f in self.fixed]
        lines += self.notes
        lines.append("gate: FAILED" if self.regressions else "gate: passed")
        return "\n".join(lines)


def _outcomes(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(o["artifact"], o["writer"], o["reader"]): o for o in doc["outcomes"]}


def _global_status(doc: dict[str, Any]) -> dict[tuple[str, str], str]:
    if doc["schema"] == schemas.BASELINE:
        return {(g["name"], g["reader"]): g["status"] for g in doc["globals"]}
    return {(g["name"], r): s for g in doc["globals"] for r, s in g["status"].items()}


def load_doc(path: Path) -> dict[str, Any]:
    """A matrix document or a baseline, checked for the fields the gate reads."""
    doc = read_json(path, [schemas.MATRIX, schemas.BASELINE])
    if not isinstance(doc.get("outcomes"), list) or not isinstance(doc.get("globals"), list):
        raise ReportError(f"{path}: lacks 'outcomes' or 'globals'")
    return doc


def baseline_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The baseline document of a matrix document."""
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    return {
        "schema": schemas.BASELINE,
        "created": created,
        "outcomes": [
            {k: o[k] for k in ("artifact", "writer", "reader", "outcome")}
            for o in sorted(_outcomes(doc).values(), key=_triple_key)
        ],
        "globals": [
            {"name": name, "reader": reader, "status": status}
            for (name, reader), status in sorted(
                _global_status(doc).items(), key=lambda kv: (kv[0][0], tag_key(kv[0][1]))
            )
        ],
    }


def baseline_text(baseline: dict[str, Any]) -> str:
    """The baseline as JSON with one row per line, so a change to it reads well in a diff."""
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(baseline[k])}," for k in ("schema", "created")]
    for key in ("outcomes", "globals"):
        rows = [f"    {json.dumps(row)}" for row in baseline[key]]
        lines += [f'  "{key}": [', ",\n".join(rows), "  ]" + ("," if key == "outcomes" else "")]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _triple_key(o: dict[str, Any]) -> tuple[Any, ...]:
    return (o["artifact"], tag_key(o["writer"]), tag_key(o["reader"]))


def _names(o: dict[str, Any]) -> str:
    names = o.get("blocked", []) + o.get("missing", [])
    return f" ({', '.join(names)})" if names else ""


def against_baseline(current: dict[str, Any], baseline: dict[str, Any]) -> GateResult:
    """Regressions of `current` against `baseline`."""
    result = GateResult()
    now = _outcomes(current)
    for key, was in sorted(_outcomes(baseline).items(), key=lambda kv: _triple_key(kv[1])):
        artifact, writer, reader = key
        what = f"{artifact}: written by {writer}, read by {reader}"
        o = now.get(key)
        if was["outcome"] == "ok":
            if o is None:
                result.regressions.append(f"{what}: ok in the baseline, not checked now")
            elif o["outcome"] != "ok":
                result.regressions.append(f"{what}: ok -> {o['outcome']}{_names(o)}")
        elif o is not None and o["outcome"] == "ok":
            result.fixed.append(f"{what}: {was['outcome']} -> ok")
    new = sorted(set(now) - set(_outcomes(baseline)))
    if new:
        result.notes.append(
            f"{len(new)} load(s) not in the baseline (new artifacts or environments)"
        )
    statuses = _global_status(current)
    for (name, reader), was_status in sorted(_global_status(baseline).items()):
        status = statuses.get((name, reader))
        if status is None:
            continue
        if is_allowed(was_status) and not is_allowed(status):
            result.regressions.append(f"{name} in {reader}: {was_status} -> {status}")
        elif not is_allowed(was_status) and is_allowed(status):
            result.fixed.append(f"{name} in {reader}: {was_status} -> {status}")
    return result


def resolve_reader(doc: dict[str, Any], wanted: str, option: str) -> str:
    """The reader tag `wanted` names: the tag itself or a unique part of it (`torch2.5.1`)."""
    tags: list[str] = sorted({o["reader"] for o in doc["outcomes"]}, key=tag_key)
    if wanted in tags:
        return wanted
    hits = [t for t in tags if wanted in t]
    if len(hits) == 1:
        return hits[0]
    problem = "matches several readers" if hits else "is not a reader of this matrix"
    raise ReportError(f"{option} {wanted!r} {problem} (readers: {', '.join(hits or tags)})")


def upgrade(doc: dict[str, Any], current: str, candidate: str) -> GateResult:
    """What loads with the `current` reader/writer and not with the `candidate` one."""
    result = GateResult(fixed_by="by the upgrade")
    outcomes = _outcomes(doc)
    artifacts = sorted({k[0] for k in outcomes})
    writers = sorted({k[1] for k in outcomes}, key=tag_key)
    readers = sorted({k[2] for k in outcomes}, key=tag_key)
    for artifact in artifacts:
        for writer in writers:  # reading: the candidate must read what the current one reads
            cur, cand = (
                outcomes.get((artifact, writer, current)),
                outcomes.get((artifact, writer, candidate)),
            )
            if cur and cur["outcome"] == "ok" and (cand is None or cand["outcome"] != "ok"):
                got = f"{cand['outcome']}{_names(cand)}" if cand else "not checked"
                result.regressions.append(
                    f"reading {artifact} written by {writer}: ok under {current}, "
                    f"{got} under {candidate}"
                )
        for reader in readers:  # writing: others must read the candidate's files as they read ours
            if reader in (current, candidate):
                continue
            cur, cand = (
                outcomes.get((artifact, current, reader)),
                outcomes.get((artifact, candidate, reader)),
            )
            if cur and cur["outcome"] == "ok" and cand and cand["outcome"] != "ok":
                result.regressions.append(
                    f"writing {artifact} for {reader}: files from {current} load, files from "
                    f"{candidate} are {cand['outcome']}{_names(cand)}"
                )
    statuses = _global_status(doc)
    for name in sorted({n for n, _ in statuses}):
        before, after = statuses.get((name, current)), statuses.get((name, candidate))
        if (
            before is not None
            and is_allowed(before)
            and after is not None
            and not is_allowed(after)
        ):
            result.regressions.append(
                f"{name}: {before} under {current}, {after} under {candidate}"
            )
        elif (
            before is not None
            and not is_allowed(before)
            and after is not None
            and is_allowed(after)
        ):
            result.fixed.append(f"{name}: {before} under {current}, {after} under {candidate}")
    return result
