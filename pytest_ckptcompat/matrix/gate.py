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

The matrix's predicted columns (`predicted`: torch releases between the
installed ones, judged from the rules table) are gated too. Against a baseline,
a predicted load that was `ok` in the baseline's predictions and is predicted
to fail now is a regression, labelled by its `(predicted)` reader; a predicted
break the baseline already had is not new. Rows are matched by torch minor and
numpy, since a column is the newest patch of its minor the rules table knows
and a newer table moves it (2.8.0 -> 2.8.1). A baseline from before predicted
columns is not compared on them (a note says so). In upgrade mode the candidate
may be a predicted reader: what the current reader loads and the candidate is
predicted to refuse is a regression; its own files, tests and call sites were
never run, and a note says so.

The baseline (`ckptcompat.baseline/1`) keeps only what the gate compares,
sorted, so a change to it reads well in a diff. It is written only from a
matrix that vouches for itself (`baseline_problems`): no crashed cell, no
partial run, no failing test of the project, a printed fix proved in every
reader, and predictions that agree with every real load. A baseline is what
later gates take as the truth: one written from less would let them pass on
what was never checked.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from .. import schemas
from ..environment import tag_key
from ..errors import ReportError
from ..scan.releases import Release, release_of, version_key
from ..schemas import MatrixDoc
from ..vocab import TEST_FAILURES, is_allowed, test_state
from .cells import site_label
from .merge import read_json, unproved_readers


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
    if "predicted" in doc:
        predicted = doc["predicted"]
        if doc["schema"] == schemas.BASELINE:
            shaped = isinstance(predicted, list)
        else:
            shaped = isinstance(predicted, dict) and all(
                isinstance(predicted.get(k), list) for k in ("readers", "outcomes")
            )
        if not shaped:
            raise ReportError(f"{path}: 'predicted' is not a list of predicted loads")
    return doc


def crashed_cells(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The cells of a matrix document whose phases did not all run to the end."""
    return [c for c in doc.get("cells", []) if c.get("status") == "crashed"]


def _failed_phases(doc: dict[str, Any]) -> tuple[list[str], list[str]]:
    """The failed phases of a matrix document: (partial runs, runs with failing project tests).

    `cells.phase_entry` marks a phase failed when a test of the project failed for a
    reason other than a compatibility finding (those tests are counted as `failed` or
    `error` in its `tests`), else when pytest ran only part of the tests: the counts
    tell the two apart, in documents written before this function too.
    """
    partial: list[str] = []
    failing: list[str] = []
    for cell in doc.get("cells", []):
        for name, phase in cell.get("phases", {}).items():
            if phase.get("status") != "failed":
                continue
            if any(phase.get("tests", {}).get(o) for o in TEST_FAILURES):
                failing.append(f"{cell['tag']}: {name} phase: {phase['problem']}")
            else:
                partial.append(f"{cell['tag']} ({name} phase)")
    return partial, failing


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


def baseline_problems(doc: dict[str, Any]) -> list[str]:
    """Why a matrix document cannot be a baseline, one message per kind of problem (empty: it can).

    A baseline is what later gates compare with as the truth, so it must not hold less
    than a full, proved run: a load a crashed or partial cell never checked, or a test
    that failed before it checked anything, would be absent from it, and a later gate
    would call its failure new data instead of a regression; a fix the run did not
    prove, or predictions a real load contradicted, failed the run that made it.
    """
    problems = []
    crashed = crashed_cells(doc)
    if crashed:
        problems.append(
            "no baseline from a matrix with a crashed cell: "
            + "; ".join(f"{c['tag']}: {_problem(c)}" for c in crashed)
        )
    partial, failing = _failed_phases(doc)
    if partial:
        problems.append(
            f"no baseline from a partial run: pytest ran part of the tests in {', '.join(partial)}"
            " (a deselection, node ids, --lf, -x, or a crashed xdist worker): the loads of the "
            "tests it did not run would be missing from the baseline; run them all"
        )
    if failing:
        problems.append(
            "no baseline from a matrix whose project tests failed: "
            + "; ".join(failing)
            + ": what they did not get to check would be missing from the baseline; fix them, "
            "or mark a known failure xfail"
        )
    unproved = unproved_readers(cast(MatrixDoc, doc))
    if unproved:
        problems.append(f"no baseline from a matrix whose {_unproved_text(unproved)}")
    if disagreement := _disagreement_text(doc):
        problems.append(f"no baseline from a matrix whose {disagreement}")
    predicted_problems = (doc.get("predicted") or {}).get("problems") or []
    if predicted_problems:
        # Rows it could not predict would be missing from the baseline, and every later
        # break of them would pass as new data.
        problems.append(
            "no baseline from a matrix whose predicted columns are incomplete: "
            + "; ".join(predicted_problems)
        )
    return problems


def _unproved_text(unproved: dict[str, str]) -> str:
    return (
        "printed fix is not proved: "
        + ", ".join(f"{tag} ({verdict})" for tag, verdict in unproved.items())
        + ": run the fix phase (`nox -s matrix` does; or `ckptcompat check-fix` in each "
        "reader, its JSON given to `ckptcompat report`)"
    )


def _disagreement_text(doc: dict[str, Any]) -> str:
    """What the predictions' disagreements with real loads say (empty: none)."""
    predicted = doc.get("predicted")
    disagreements = predicted["agreement"]["disagreements"] if predicted else []
    if not disagreements:
        return ""
    d = disagreements[0]
    more = f"; and {len(disagreements) - 1} more" if len(disagreements) > 1 else ""
    return (
        f"predictions disagree with a real load: {d['artifact']} written by {d['writer']}, "
        f"read by {d['reader']}: real {d['real']}, predicted {d['predicted']}{more}: its "
        "predicted columns cannot be trusted (a bug of pytest-ckptcompat's tables or scan: "
        "please report it)"
    )


def baseline_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The baseline document of a matrix document (`ReportError` when `baseline_problems`)."""
    problems = baseline_problems(doc)
    if problems:
        # One line: a cell's problem may quote a multi-line error message.
        raise ReportError(" ".join("; ".join(problems).split()))
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    baseline: dict[str, Any] = {
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
    predicted = _predicted(doc)
    if predicted is not None:  # a report given no goldens predicted nothing: say so later
        baseline["predicted"] = [
            {k: o[k] for k in ("artifact", "writer", "reader", "torch", "numpy", "outcome")}
            for o in sorted(predicted.values(), key=_predicted_key)
        ]
    return baseline


_BASELINE_LISTS = ("outcomes", "globals", "tests", "load_sites", "predicted")


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


def _predicted_readers(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A matrix document's predicted readers by tag (empty for a baseline or without any)."""
    section = doc.get("predicted")
    if doc["schema"] == schemas.BASELINE or not section:
        return {}
    return {r["tag"]: r for r in section["readers"]}


def _predicted(doc: dict[str, Any]) -> dict[tuple[str, str, Release, str], dict[str, Any]] | None:
    """Predicted loads by (artifact, writer, torch minor, numpy), with their torch and numpy.

    None: the document has no predictions (a report given no goldens, or a baseline
    written before predicted columns were kept).
    """
    section = doc.get("predicted")
    if section is None:
        return None
    if doc["schema"] == schemas.BASELINE:
        rows = list(section)
    else:
        readers = _predicted_readers(doc)
        rows = [
            {**o, "torch": readers[o["reader"]]["torch"], "numpy": readers[o["reader"]]["numpy"]}
            for o in section["outcomes"]
            if o["reader"] in readers
        ]
    return {(o["artifact"], o["writer"], release_of(o["torch"]), o["numpy"]): o for o in rows}


def _predicted_key(o: dict[str, Any]) -> tuple[Any, ...]:
    return (o["artifact"], tag_key(o["writer"]), version_key(o["torch"]), version_key(o["numpy"]))


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
    """What fails the run fails the gate (for the named readers only, when given).

    A crashed cell; a printed fix not proved in a reader; predictions that a real
    load contradicts. `ckptcompat report` and `nox -s matrix` fail on the last two
    as well, and the gate must not pass a run they failed.
    """
    crashed = set()
    for cell in crashed_cells(doc):
        if only and cell["tag"] not in only:
            continue
        crashed.add(cell["tag"])
        result.regressions.append(
            f"cell {cell['tag']} crashed: {_problem(cell)}: what it did not check is not safe"
        )
    unproved = {
        tag: verdict
        for tag, verdict in unproved_readers(cast(MatrixDoc, doc)).items()
        if not only or tag in only
    }
    if unproved:
        result.regressions.append(f"the matrix's {_unproved_text(unproved)}")
    if disagreement := _disagreement_text(doc):
        result.regressions.append(f"the matrix's {disagreement}")
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
    _predicted_against_baseline(current, baseline, result)
    return result


def _predicted_against_baseline(
    current: dict[str, Any], baseline: dict[str, Any], result: GateResult
) -> None:
    """Predicted loads that were ok in the baseline's predictions and are predicted to fail now.

    Like real loads: one the baseline does not have (a new release column, artifact or
    writer) is counted in a note, and a break the baseline already predicted is not new.
    """
    now, was = _predicted(current), _predicted(baseline)
    if now is None:
        if was:
            result.notes.append(
                f"the matrix has no predicted columns (its report was given no goldens): the "
                f"baseline's {len(was)} predicted load(s) were not compared"
            )
        return
    if was is None:
        if now:
            result.notes.append(
                f"the baseline predates predicted columns: the matrix's {len(now)} predicted "
                "load(s) were not compared (rewrite it with --write-baseline)"
            )
        return
    new = 0
    for key, o in sorted(now.items(), key=lambda kv: _predicted_key(kv[1])):
        before = was.get(key)
        if before is None:
            new += 1
            continue
        what = f"{o['artifact']}: written by {o['writer']}, read by {o['reader']}"
        if before["outcome"] == "ok" and o["outcome"] != "ok":
            result.regressions.append(
                f"{what}: ok in the baseline, predicted {o['outcome']}{_names(o)}"
            )
        elif before["outcome"] != "ok" and o["outcome"] == "ok":
            result.fixed.append(f"{what}: {before['outcome']} in the baseline, predicted ok")
    if new:
        result.notes.append(
            f"{new} predicted load(s) not in the baseline (new release columns, artifacts or "
            "writers)"
        )
    # A column leaves when its minor gets installed (its real loads are gated then) or
    # falls outside the installed range; a golden that could not be read is a problem
    # the report lists.
    gone = sum(1 for key, o in was.items() if o["outcome"] == "ok" and key not in now)
    if gone:
        result.notes.append(f"{gone} predicted load(s) ok in the baseline not predicted now")


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


def resolve_reader(
    doc: dict[str, Any], wanted: str, option: str, *, predicted: bool = False
) -> str:
    """The reader tag `wanted` names: the tag itself or a unique part of it (`torch2.5.1`).

    `predicted`: a predicted reader may be named too (`torch2.8.0-numpy2.2.6`), when no
    installed one is: `torch2.1` keeps naming an installed torch 2.13 beside predicted
    2.10, 2.11 and 2.12.
    """
    tags: list[str] = sorted({o["reader"] for o in doc["outcomes"]}, key=tag_key)
    if wanted in tags:
        return wanted
    hits = [t for t in tags if wanted in t]
    if len(hits) == 1:
        return hits[0]
    if predicted and not hits:
        named = list(_predicted_readers(doc))
        hits = [t for t in named if wanted in t]
        if len(hits) == 1:
            return hits[0]
        tags += named
    problem = "matches several readers" if hits else "is not a reader of this matrix"
    raise ReportError(f"{option} {wanted!r} {problem} (readers: {', '.join(hits or tags)})")


def upgrade(doc: dict[str, Any], current: str, candidate: str) -> GateResult:
    """What loads with the `current` reader/writer and not with the `candidate` one.

    A predicted `candidate` (a torch release the matrix did not install) is compared on
    reading only (`_upgrade_to_predicted`).
    """
    if candidate in _predicted_readers(doc):
        return _upgrade_to_predicted(doc, current, candidate)
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


def _upgrade_to_predicted(doc: dict[str, Any], current: str, candidate: str) -> GateResult:
    """What the `current` reader loads and the predicted `candidate` would refuse.

    A predicted reader never ran: it wrote no file and ran no test or call site, so
    only reading is compared, and a note says so.
    """
    result = GateResult(fixed_by="by the upgrade (predicted)")
    _gate_cells(doc, result, (current,))
    predicted = {
        (o["artifact"], o["writer"]): o
        for o in doc["predicted"]["outcomes"]
        if o["reader"] == candidate
    }
    unpredicted = 0
    for (artifact, writer, reader), cur in sorted(
        _outcomes(doc).items(), key=lambda kv: _triple_key(kv[1])
    ):
        if reader != current:
            continue
        cand = predicted.get((artifact, writer))
        if cand is None:
            # Nothing to predict from: a safetensors golden (torch.load never reads it), a
            # live roundtrip (no file), a golden the report could not read (its problems).
            if cur["outcome"] == "ok":
                unpredicted += 1
        elif cur["outcome"] == "ok" and cand["outcome"] != "ok":
            result.regressions.append(
                f"reading {artifact} written by {writer}: ok under {current}, "
                f"predicted {cand['outcome']}{_names(cand)} under {candidate}"
            )
        elif cur["outcome"] != "ok" and cand["outcome"] == "ok":
            result.fixed.append(
                f"reading {artifact} written by {writer}: {cur['outcome']} under {current}, "
                f"predicted ok under {candidate}"
            )
    result.notes.append(
        f"{candidate} is predicted from the rules table, not installed: only its reading of "
        "the goldens is compared, not the files it would write, the project's tests or its "
        "torch.load call sites"
    )
    if unpredicted:
        result.notes.append(
            f"{unpredicted} load(s) ok under {current} have no prediction (safetensors goldens, "
            "live roundtrips, or goldens the report could not read)"
        )
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
