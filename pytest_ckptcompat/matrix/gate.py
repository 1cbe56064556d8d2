"""Regression gating: before a dependency upgrade lands, fail on what stops loading.

Two questions, both answered from matrix documents (`ckptcompat.matrix/1`):

- against a baseline (`ckptcompat gate matrix.json --baseline matrix/baseline.json`):
  every (artifact, writer, reader) that was `ok` and is not now (or was not
  checked at all), every (global, reader) that was allowed and is now
  blocked or missing, every test of the project that passed and fails now
  (or fails and is new), and every `torch.load` call site that went through
  and raises now (or raises and is new), is a regression; what went the other
  way is good news;
- an upgrade (`--current TAG --candidate TAG`, two readers of one matrix):
  what loads under the current environment and not under the candidate
  (reading), what the current environment writes that every reader loads but
  the candidate's files do not (writing), and every test and call site that
  works under the current one and fails under the candidate, named by its
  `path:line`.

Both fail on a crashed cell (one whose phases did not run to the end): what it
did not check cannot be called safe.

The baseline (`ckptcompat.baseline/1`) keeps only what the gate compares,
sorted, so a change to it reads well in a diff. It is never written from a
matrix with a crashed cell.
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
from ..vocab import TEST_FAILURES, is_allowed, test_state
from .cells import site_label
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


def crashed_cells(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells of a matrix document whose phases did not all run to the end."""
    return [c for c in doc.get("cells", []) if c.get("status") == "crashed"]


def _problem(cell: dict[str, Any]) -> str:
    return "; ".join(
        f"{name} phase: {p['problem']}"
        for name, p in cell.get("phases", {}).items()
        if p.get("status") == "crashed"
    )


def _tests(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(t["nodeid"], t["reader"]): t for t in doc.get("tests", [])}


def _sites(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    if doc["schema"] == schemas.BASELINE:
        return {(s["site"], s["reader"]): s for s in doc.get("load_sites", [])}
    return {(site_label(s), s["reader"]): s for s in doc.get("load_sites", [])}


def baseline_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The baseline document of a matrix document (`ReportError` if a cell crashed)."""
    crashed = crashed_cells(doc)
    if crashed:
        raise ReportError(
            "no baseline from a matrix with a crashed cell: "
            + "; ".join(f"{c['tag']}: {_problem(c)}" for c in crashed)
        )
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
        "tests": [
            {"nodeid": t["nodeid"], "site": t["site"], "reader": t["reader"], "outcome": _state(t)}
            for t in sorted(_tests(doc).values(), key=lambda t: (t["nodeid"], tag_key(t["reader"])))
        ],
        "load_sites": [
            {"site": label, "reader": reader, "state": s["state"]}
            for (label, reader), s in sorted(
                _sites(doc).items(), key=lambda kv: (kv[0][0], tag_key(kv[0][1]))
            )
        ],
    }


_BASELINE_LISTS = ("outcomes", "globals", "tests", "load_sites")


def baseline_text(baseline: dict[str, Any]) -> str:
    """The baseline as JSON with one row per line, so a change to it reads well in a diff."""
    lines = ["{"]
    lines += [f"  {json.dumps(k)}: {json.dumps(baseline[k])}," for k in ("schema", "created")]
    keys = [k for k in _BASELINE_LISTS if k in baseline]
    for key in keys:
        rows = [f"    {json.dumps(row)}" for row in baseline[key]]
        last = key == keys[-1]
        lines += [
            f'  "{key}": [',
            *([",\n".join(rows)] if rows else []),
            "  ]" + ("" if last else ","),
        ]
    lines.append("}")
    return "\n".join(lines) + "\n"


def _triple_key(o: dict[str, Any]) -> tuple[Any, ...]:
    return (o["artifact"], tag_key(o["writer"]), tag_key(o["reader"]))


def _names(o: dict[str, Any]) -> str:
    names = o.get("blocked", []) + o.get("missing", [])
    stale = " [stale golden]" if o.get("stale") else ""
    return (f" ({', '.join(names)})" if names else "") + stale


def _test_text(t: dict[str, Any]) -> str:
    """`tests/test_io.py::test_load (tests/test_io.py:12)`."""
    return f"test {t['nodeid']}" + (f" ({t['site']})" if t.get("site") else "")


def _why(t: dict[str, Any]) -> str:
    """`: AttributeError: ... (at src/lib/io.py:12)` for a failed test of a matrix document."""
    if t.get("outcome") not in TEST_FAILURES or not t.get("message"):
        return ""
    return f": {t['message']}" + (f" (at {t['where']})" if t.get("where") else "")


def _fails(outcome: str | None) -> bool:
    return outcome in TEST_FAILURES


def _state(t: dict[str, Any]) -> str:
    return test_state(str(t["outcome"]), t.get("finding"))


def _bad(state: str | None) -> bool:
    return state == "finding" or _fails(state)


def _worse(was: str | None, now: str) -> bool:
    """Passing -> failing, or a failure on a finding -> a failure of the test itself."""
    return _bad(now) and (not _bad(was) or (was == "finding" and now != "finding"))


def _gate_cells(doc: dict[str, Any], result: GateResult, only: tuple[str, ...] = ()) -> set[str]:
    """A crashed cell is a regression (of the named readers only, when given)."""
    crashed = set()
    for cell in crashed_cells(doc):
        if only and cell["tag"] not in only:
            continue
        crashed.add(cell["tag"])
        result.regressions.append(
            f"cell {cell['tag']} crashed: {_problem(cell)}: what it did not check is not safe"
        )
    return crashed


def against_baseline(current: dict[str, Any], baseline: dict[str, Any]) -> GateResult:
    """Regressions of `current` against `baseline`."""
    result = GateResult()
    crashed = _gate_cells(current, result)
    now = _outcomes(current)
    unchecked = 0
    for key, was in sorted(_outcomes(baseline).items(), key=lambda kv: _triple_key(kv[1])):
        artifact, writer, reader = key
        what = f"{artifact}: written by {writer}, read by {reader}"
        o = now.get(key)
        if was["outcome"] == "ok":
            if o is None and reader in crashed:
                unchecked += 1  # said once, with the crash
            elif o is None:
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
    if unchecked:
        result.notes.append(f"{unchecked} load(s) ok in the baseline not checked by crashed cells")
    _tests_against_baseline(current, baseline, result, crashed)
    _sites_against_baseline(current, baseline, result)
    return result


def _tests_against_baseline(
    current: dict[str, Any], baseline: dict[str, Any], result: GateResult, crashed: set[str]
) -> None:
    now = _tests(current)
    if "tests" not in baseline and now:
        result.notes.append(
            "the baseline predates test outcomes: every failing test counts as new "
            "(rewrite it with --write-baseline)"
        )
    was_tests = _tests(baseline)
    for key, t in sorted(now.items(), key=lambda kv: (kv[0][0], tag_key(kv[0][1]))):
        reader = key[1]
        was = was_tests.get(key)
        state, before = _state(t), (_state(was) if was is not None else None)
        if was is None:
            if _fails(state):
                result.regressions.append(
                    f"{_test_text(t)} in {reader}: {state}, and not in the baseline{_why(t)}"
                )
        elif _worse(before, state):
            result.regressions.append(f"{_test_text(t)} in {reader}: {before} -> {state}{_why(t)}")
        elif _bad(before) and not _bad(state):
            result.fixed.append(f"{_test_text(t)} in {reader}: {before} -> {state}")
    for key, was in sorted(was_tests.items(), key=lambda kv: (kv[0][0], tag_key(kv[0][1]))):
        if key not in now and was["outcome"] == "passed" and key[1] not in crashed:
            result.regressions.append(
                f"{_test_text(was)} in {key[1]}: passed in the baseline, not run now"
            )


def _sites_against_baseline(
    current: dict[str, Any], baseline: dict[str, Any], result: GateResult
) -> None:
    now = _sites(current)
    if "load_sites" not in baseline and now:
        result.notes.append(
            "the baseline predates load sites: every failing one counts as new "
            "(rewrite it with --write-baseline)"
        )
    was_sites = _sites(baseline)
    for (label, reader), s in sorted(now.items()):
        was = was_sites.get((label, reader))
        if s["state"] == "fails" and (was is None or was["state"] != "fails"):
            before = f"{was['state']} -> fails" if was else "fails, and not in the baseline"
            result.regressions.append(f"torch.load at {label} in {reader}: {before}: {s['error']}")
        elif was is not None and was["state"] == "fails" and s["state"] != "fails":
            result.fixed.append(f"torch.load at {label} in {reader}: fails -> {s['state']}")


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
    _gate_cells(doc, result, (current, candidate))
    _upgrade_tests_and_sites(doc, current, candidate, result)
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


def _upgrade_tests_and_sites(
    doc: dict[str, Any], current: str, candidate: str, result: GateResult
) -> None:
    """Tests and call sites that work under `current` and fail under `candidate`."""
    tests = _tests(doc)
    for nodeid in sorted({n for n, _ in tests}):
        cur, cand = tests.get((nodeid, current)), tests.get((nodeid, candidate))
        if cur is None:
            continue
        before = _state(cur)
        if cand is None:
            if not _bad(before):
                result.regressions.append(
                    f"{_test_text(cur)}: {before} under {current}, not run under {candidate}"
                )
            continue
        after = _state(cand)
        if _worse(before, after):
            result.regressions.append(
                f"{_test_text(cur)}: {before} under {current}, {after} under {candidate}"
                f"{_why(cand)}"
            )
        elif _bad(before) and not _bad(after):
            result.fixed.append(
                f"{_test_text(cur)}: {before} under {current}, {after} under {candidate}"
            )
    sites = _sites(doc)
    for label in sorted({label for label, _ in sites}):
        cur_site, cand_site = sites.get((label, current)), sites.get((label, candidate))
        if cur_site is None or cand_site is None:
            continue
        if cur_site["state"] != "fails" and cand_site["state"] == "fails":
            result.regressions.append(
                f"torch.load at {label}: {cur_site['state']} under {current}, fails under "
                f"{candidate}: {cand_site['error']}"
            )
        elif cur_site["state"] == "fails" and cand_site["state"] != "fails":
            result.fixed.append(
                f"torch.load at {label}: fails under {current}, {cand_site['state']} under "
                f"{candidate}"
            )
