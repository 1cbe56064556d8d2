"""Merge cell reports (`ckptcompat.report/1`) into one matrix document.

`ckptcompat.matrix/1` (matrix/report/matrix.json, what `ckptcompat gate` reads):

    {
      "schema": "ckptcompat.matrix/1", "plugin": "0.1.0", "created": "...",
      "readers": [{"tag", "torch", "numpy", "python", "platform", "report"}],
      "writers": ["torch2.4.1-numpy1.25.2-py3.11", ...],
      "artifacts": ["hparams", ...],
      "outcomes": [{"artifact", "writer", "reader", "outcome", "blocked", "missing",
                    "message", "test", "stale"}],
      "globals": [{"name", "artifacts": [...], "status": {reader: "allowed" |
                   "allowed-user" | "blocked" | "missing"}, "fix": {...}}],
      "counts": {"ok": 40, "blocked": 12, ...},
      "cells": [{"tag", "status": "ok" | "failed" | "crashed",
                 "phases": {"write": {...}, "read": {"status", "problem", "exitstatus",
                            "duration", "tests": {"passed": 8}, "report", "log"}}}],
      "tests": [{"nodeid", "site", "reader", "outcome", "phase", "finding", "message", "where"}],
      "load_sites": [{"site", "project_site", "reader", "state": "works" | "at-risk" | "fails",
                      "weights_only", "calls", "blocked", "error", "fix", "tests"}],
      "not_read": [{"artifact", "writer", "reader", "why"}],
      "stale_globals": [{"name", "artifacts", "writers"}],
      "totals": {"expected", "read", "not_read", "stale"},
      "predicted": {"releases", "readers", "outcomes", "agreement": {"checked",
                    "disagreements"}, "problems"}    (matrix.predicted, given the goldens)
    }

Each cell gives the report of its read phase and, from a matrix run, of its
write phase too (`<tag>.write.json`: which goldens this run wrote, and how the
project's tests went there). One outcome per (artifact, writer, reader): the
stored golden of `writer` read by `reader`. A golden this run's write phase
did not rewrite is `stale` (its reason says why); the globals table is built
from current files only, and names that only stale files hold are listed
apart. A reader whose own golden is absent contributes its live roundtrip as
the (reader, reader) outcome. A global's status in a reader is
the worst it had in any load there (missing > blocked > allowed-user >
allowed); absent means no file holding it was read. `expected` = readers x
writers x artifacts = `read` + `not_read`: every grid square has an outcome or
a reason.
"""

from __future__ import annotations

import datetime
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from .. import schemas
from .._version import __version__
from ..environment import parse_tag, tag_key
from ..errors import ReportError
from ..scan import releases
from ..scan.fixes import Fix, fix_for_name, snippet
from ..scan.names import is_numpy_2_only
from ..scan.snippet import digest
from ..schemas import (
    FixCheckDoc,
    MatrixCell,
    MatrixDoc,
    MatrixFix,
    MatrixFixCheck,
    MatrixGlobal,
    MatrixNotRead,
    MatrixOutcome,
    MatrixPhase,
    MatrixReader,
    MatrixTest,
)
from ..vocab import (
    LOADED,
    OUTCOMES,
    TEST_FAILURES,
    TEST_OUTCOMES,
    is_allowed,
    status_rank,
    test_state,
)
from .cells import (
    MATRIX_PHASES,
    cell_entry,
    missing_phase,
    phase_entry,
    phase_of,
    site_rows,
    test_rows,
)


def read_json(path: Path, accepted: Sequence[str]) -> dict[str, Any]:
    """A JSON document of one of the `accepted` schemas, or `ReportError` naming the file."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ReportError(f"{path}: cannot read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{path}: not JSON ({exc})") from None
    schema = doc.get("schema") if isinstance(doc, dict) else None
    if schema not in accepted:
        raise ReportError(f"{path}: schema is {schema!r}, expected {' or '.join(accepted)}")
    return doc  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Cell:
    path: Path
    reader: dict[str, Any]
    records: list[dict[str, Any]]
    phase: str  # write, read
    doc: dict[str, Any]

    @property
    def tag(self) -> str:
        return str(self.reader["tag"])


def _read_cell(path: Path, doc: dict[str, Any]) -> _Cell:
    reader, records = doc.get("reader"), doc.get("records")
    if not isinstance(reader, dict) or not isinstance(reader.get("tag"), str):
        raise ReportError(f"{path}: no reader environment (did the run check any artifact?)")
    if not isinstance(records, list):
        raise ReportError(f"{path}: 'records' is not a list")
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not {"artifact", "writer", "outcome", "kind"} <= set(r):
            raise ReportError(f"{path}: records[{i}] lacks artifact/writer/outcome/kind")
        if r["outcome"] not in OUTCOMES:
            raise ReportError(f"{path}: records[{i}]: unknown outcome {r['outcome']!r}")
    for key in ("tests", "load_sites", "written", "allowlist"):
        if key in doc and not isinstance(doc[key], list):
            raise ReportError(f"{path}: {key!r} is not a list")
    for i, t in enumerate(doc.get("tests", [])):
        if not isinstance(t, dict) or not {"nodeid", "outcome"} <= set(t):
            raise ReportError(f"{path}: tests[{i}] lacks nodeid/outcome")
        if t["outcome"] not in TEST_OUTCOMES:
            raise ReportError(f"{path}: tests[{i}]: unknown outcome {t['outcome']!r}")
    return _Cell(path, reader, records, phase_of(doc), doc)


def _fix_check(path: Path, doc: dict[str, Any]) -> FixCheckDoc:
    reader, results = doc.get("reader"), doc.get("results")
    if not isinstance(reader, dict) or not isinstance(reader.get("tag"), str):
        raise ReportError(f"{path}: no reader environment")
    if not isinstance(results, list) or not all(
        isinstance(r, dict) and {"artifact", "writer", "loads", "error"} <= set(r) for r in results
    ):
        raise ReportError(f"{path}: 'results' is not a list of golden results")
    return cast(FixCheckDoc, doc)


def merge_reports(
    paths: Iterable[Path], expect: Sequence[str] = (), goldens: Path | None = None
) -> MatrixDoc:
    """The `ckptcompat.matrix/1` document of these cell reports.

    Each cell gives its read phase's report (`<tag>.json`) and, when the
    matrix ran both phases, its write phase's (`<tag>.write.json`). `expect`
    names the cells the matrix has: one whose report is missing is a crashed
    cell, not an absent one. `ckptcompat.fixcheck/1` files among them
    (`ckptcompat check-fix`) say what the matrix's own fix did in each reader.
    `goldens`: the folder the cells read, for the predicted columns
    (`matrix.predicted`); None leaves them out.
    """
    reports: list[_Cell] = []
    checks: list[FixCheckDoc] = []
    for path in map(Path, paths):
        doc = read_json(path, [schemas.REPORT, schemas.FIXCHECK])
        if doc["schema"] == schemas.FIXCHECK:
            checks.append(_fix_check(path, doc))
        else:
            reports.append(_read_cell(path, doc))
    if not reports and not expect:
        raise ReportError("no cell reports given")
    by_tag: dict[str, dict[str, _Cell]] = {}
    for report in reports:
        first = by_tag.setdefault(report.tag, {}).get(report.phase)
        if first is not None:
            what = "reader" if report.phase == "read" else "write phase of"
            raise ReportError(f"{report.path}: {what} {report.tag} also reported by {first.path}")
        by_tag[report.tag][report.phase] = report
    writes = {tag: p["write"] for tag, p in by_tag.items() if "write" in p}
    reads = {tag: p["read"] for tag, p in by_tag.items() if "read" in p}
    # Which goldens this run wrote is known once the write phase reported (or is expected to).
    judge_writes = bool(writes) or bool(expect)
    tags = sorted(set(expect) | set(by_tag), key=tag_key)
    folder = reports[0].path.parent if reports else None

    cells: list[MatrixCell] = []
    for tag in tags:
        phases: dict[str, MatrixPhase] = {}
        for phase in MATRIX_PHASES:
            given = by_tag.get(tag, {}).get(phase)
            if given is not None:
                phases[phase] = phase_entry(given.doc, given.path, tag, phase)
            elif phase == "read" or judge_writes:
                phases[phase] = missing_phase(tag, phase, folder)
        cells.append(cell_entry(tag, phases))
    crashed_readers = {
        c["tag"]
        for c in cells
        if "read" not in c["phases"] or c["phases"]["read"]["status"] == "crashed"
    }

    written = {tag: {w["artifact"] for w in c.doc.get("written", [])} for tag, c in writes.items()}

    def stale_reason(artifact: str, writer: str) -> str:
        if not judge_writes:
            return ""
        if writer in written:
            if artifact in written[writer]:
                return ""
            status = next(c["phases"]["write"]["status"] for c in cells if c["tag"] == writer)
            return f"not rewritten by {writer}'s write phase in this run" + (
                f" (it {status})" if status != "ok" else ""
            )
        if writer in tags:
            return f"{writer}'s write phase wrote no report in this run"
        return f"written by {writer}, which is not a cell of this run"

    outcomes: dict[tuple[str, str, str], MatrixOutcome] = {}
    live: dict[tuple[str, str, str], MatrixOutcome] = {}
    found: list[tuple[dict[str, Any], str, str]] = []  # (record, reader, stale reason)
    for reader, cell in reads.items():
        for r in cell.records:
            key = (r["artifact"], r["writer"], reader)
            golden = r["kind"] == "golden"
            stale = stale_reason(r["artifact"], r["writer"]) if golden else ""
            row: MatrixOutcome = {
                "artifact": r["artifact"],
                "writer": r["writer"],
                "reader": reader,
                "outcome": r["outcome"],
                "blocked": list(r.get("blocked", [])),
                "missing": list(r.get("missing", [])),
                "message": r.get("message", ""),
                "test": r.get("test", ""),
                "stale": stale,
                "duration": float(r.get("duration", 0.0) or 0.0),
            }
            (outcomes if golden else live)[key] = row
            found.append((r, reader, stale))
    for key, row in live.items():
        # The reader's own golden is missing: what its code saves now stands in. A stale
        # one stays, marked: its square says what the reader does with that file.
        outcomes.setdefault(key, row)

    statuses: dict[str, dict[str, str]] = {}
    holders: dict[str, set[str]] = {}
    stale_only: dict[str, tuple[set[str], set[str]]] = {}
    for r, reader, stale in found:
        for name, status in r.get("globals", {}).items():
            if stale:  # a stale file blames nothing on the code of this run
                arts, writers_ = stale_only.setdefault(name, (set(), set()))
                arts.add(r["artifact"])
                writers_.add(r["writer"])
                continue
            have = statuses.setdefault(name, {}).get(reader)
            if have is None or status_rank(status) > status_rank(have):
                statuses[name][reader] = status
            holders.setdefault(name, set()).add(r["artifact"])

    readers = [_reader(by_tag.get(tag, {}), tag) for tag in tags]  # every cell reads
    rows = sorted(
        outcomes.values(), key=lambda o: (o["artifact"], tag_key(o["writer"]), tag_key(o["reader"]))
    )
    # A cell whose write phase wrote nothing is still a writer: its row says why it is empty.
    writers = sorted(
        {o["writer"] for o in rows} | (set(tags) if judge_writes else set()), key=tag_key
    )
    artifacts = sorted({o["artifact"] for o in rows})
    tests = test_rows({tag: {ph: c.doc for ph, c in p.items()} for tag, p in by_tag.items()})
    not_read = _not_read(
        artifacts,
        writers,
        [r["tag"] for r in readers],
        outcomes,
        written if judge_writes else None,
        crashed_readers,
        tests,
    )
    created = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    allowlist = list(dict.fromkeys(n for c in reads.values() for n in c.doc.get("allowlist", [])))
    merged: MatrixDoc = {
        "schema": schemas.MATRIX,
        "plugin": __version__,
        "created": created,
        "readers": readers,
        "writers": writers,
        "artifacts": artifacts,
        "outcomes": rows,
        "globals": [
            _global(name, sorted(holders[name]), statuses[name])
            for name in sorted(statuses, key=lambda n: (_global_rank(statuses[n]), n))
        ],
        "counts": {o: n for o, n in Counter(r["outcome"] for r in rows).items()},
        "cells": cells,
        "tests": tests,
        "load_sites": site_rows({tag: c.doc for tag, c in reads.items()}),
        "not_read": not_read,
        "stale_globals": [
            {"name": n, "artifacts": sorted(a), "writers": sorted(w, key=tag_key)}
            for n, (a, w) in sorted(stale_only.items())
            if n not in statuses
        ],
        "totals": {
            "expected": len(readers) * len(writers) * len(artifacts),
            "read": len(rows),
            "not_read": len(not_read),
            "stale": sum(1 for r in rows if r["stale"]),
        },
        "allowlist": allowlist,
        "fix": _fix_check_summary(statuses, allowlist, rows, readers, checks),
    }
    if goldens is not None:
        from .predicted import predict_columns

        # Each golden load's global statuses, as its cell recorded them.
        loads = {
            (r["artifact"], r["writer"], reader): dict(r.get("globals", {}))
            for r, reader, _ in found
            if r["kind"] == "golden"
        }
        merged["predicted"] = predict_columns(merged, goldens, loads)
    return merged


def _not_read(
    artifacts: list[str],
    writers: list[str],
    readers: list[str],
    outcomes: dict[tuple[str, str, str], MatrixOutcome],
    written: dict[str, set[str]] | None,
    crashed: set[str],
    tests: list[MatrixTest],
) -> list[MatrixNotRead]:
    """Every (artifact, writer, reader) of the grid without an outcome, and why.

    `written`: what each writer's write phase wrote in this run (None: unknown).
    """
    checked_by: dict[str, str] = {}  # artifact -> the test that checks it
    for o in outcomes.values():
        checked_by.setdefault(o["artifact"], o["test"])
    test_in = {(t["nodeid"], t["reader"]): t for t in tests}
    rows: list[MatrixNotRead] = []
    for artifact in artifacts:
        for writer in writers:
            for reader in readers:
                if (artifact, writer, reader) in outcomes:
                    continue
                test = checked_by.get(artifact, "")
                ran = test_in.get((test, reader))
                if reader in crashed:
                    why = f"{reader}'s read phase did not run to the end"
                elif written is not None and writer not in written:
                    why = f"{writer}'s write phase wrote no report in this run"
                elif written is not None and artifact not in written[writer]:
                    why = f"{writer} wrote no {artifact} golden in this run"
                elif test and ran is None:
                    why = f"{test}, which reads it, did not run in {reader}"
                elif (
                    ran is not None and test_state(ran["outcome"], ran["finding"]) in TEST_FAILURES
                ):
                    why = f"{test}, which reads it, {ran['outcome']} in {reader} first"
                else:
                    why = f"{reader} found no golden of {artifact} from {writer}"
                rows.append({"artifact": artifact, "writer": writer, "reader": reader, "why": why})
    return rows


def _reader(phases: dict[str, _Cell], tag: str) -> MatrixReader:
    cell = phases.get("read") or phases.get("write")
    if cell is None:  # a cell that reported nothing: what its tag says
        parts = parse_tag(tag) or {}
        return {
            "tag": tag,
            "torch": parts.get("torch"),
            "numpy": parts.get("numpy"),
            "python": parts.get("python", ""),
            "platform": "",
            "report": "",
            "rootdir": None,
        }
    r = cell.reader
    return {
        "tag": tag,
        "torch": r.get("torch"),
        "numpy": r.get("numpy"),
        "python": r.get("python", ""),
        "platform": r.get("platform", ""),
        "report": str(cell.path) if "read" in phases else "",
        "rootdir": next(
            (
                str(c.doc["rootdir"])
                for c in phases.values()
                if isinstance(c.doc.get("rootdir"), str)
            ),
            None,
        ),
    }


def _global(name: str, artifacts: list[str], status: dict[str, str]) -> MatrixGlobal:
    return {"name": name, "artifacts": artifacts, "status": status, "fix": _fix_json(name, status)}


def _global_rank(status: dict[str, str]) -> int:
    # Troubled globals first: the table is read top-down.
    return -max(status_rank(s) for s in status.values())


def _fix_json(name: str, status: dict[str, str]) -> MatrixFix | None:
    """The fix for a global that some reader refuses, right on numpy 1 and 2."""
    troubled = [r for r, s in status.items() if not is_allowed(s)]
    if not troubled:
        return None
    fix = fix_for_name(name)
    notes = [fix.warning] if fix.warning else []
    missing = sorted((r for r, s in status.items() if s == "missing"), key=tag_key)
    if missing:
        notes.append(_missing_note(name, missing))
    allowed_by = sorted((r for r, s in status.items() if s == "allowed"), key=tag_key)
    return {
        "change": fix.change,
        "entries": list(fix.entries),
        "code": list(fix.code),
        "imports": list(fix.imports),
        "notes": notes,
        "allowed_by_default_in": allowed_by,
    }


def matrix_snippet(statuses: dict[str, dict[str, str]], allowlist: list[str]) -> Fix | None:
    """The one allowlist every reader gets: what some reader refused, plus the project's own."""
    troubled = [n for n, st in statuses.items() if any(not is_allowed(s) for s in st.values())]
    fixes = [fix_for_name(n) for n in dict.fromkeys([*troubled, *allowlist])]
    code = snippet(fixes)
    if not code:
        return None
    entries = tuple(e for f in fixes for e in f.entries)
    return Fix("<matrix>", entries, (code,), (), None)


def _fix_check_summary(
    statuses: dict[str, dict[str, str]],
    allowlist: list[str],
    rows: list[MatrixOutcome],
    readers: list[MatrixReader],
    checks: list[FixCheckDoc],
) -> MatrixFixCheck:
    """What the matrix's snippet did in each reader: verified, failed, or not checked."""
    fix = matrix_snippet(statuses, allowlist)
    code = fix.code[0] if fix else ""
    sha = digest(code)
    covered = set(fix.entries) if fix else set()
    by_reader = {c["reader"]["tag"]: c for c in checks}
    verdicts: dict[str, str] = {}
    failures: list[str] = []
    for reader in readers:
        tag = reader["tag"]
        torch = reader.get("torch") or ""
        check = by_reader.get(tag)
        if releases.release_of(torch) < releases.USER_ALLOWLIST:
            verdicts[tag] = "no allowlist (torch < 2.4)"
            continue
        if check is None:
            verdicts[tag] = "not checked"
            continue
        if check["snippet_sha256"] != sha:
            verdicts[tag] = "stale (checked another snippet)"
            continue
        loads = {(r["artifact"], r["writer"]): r for r in check["results"]}
        before = len(failures)
        for row in rows:
            if row["reader"] != tag or not _fix_should_load(row, covered):
                continue
            got = loads.get((row["artifact"], row["writer"]))
            if got is None or not got["loads"]:
                why = got["error"] if got else "the golden was not there to load"
                failures.append(
                    f"{tag}: {row['artifact']} written by {row['writer']} still fails with the "
                    f"fix: {why}"
                )
        verdicts[tag] = "verified" if len(failures) == before else "failed"
    return {"snippet": code, "sha256": sha, "readers": verdicts, "failures": failures}


def _fix_should_load(row: MatrixOutcome, covered: set[str]) -> bool:
    """Whether a load must succeed once the snippet is applied: its names are all in it."""
    if row["outcome"] in LOADED:
        return True
    names = row["blocked"] + row["missing"]
    return row["outcome"] in ("blocked", "missing") and bool(names) and set(names) <= covered


def fix_verified_line(doc: MatrixDoc) -> str:
    """`fix verified on 3/4 readers (...)`: the one-line summary of the fix check."""
    fix = doc.get("fix")
    if not fix or not fix["snippet"]:
        return "no allowlist fix needed"
    verdicts = fix["readers"]
    checked = {t: v for t, v in verdicts.items() if not v.startswith("no allowlist")}
    if checked and set(checked.values()) == {"not checked"}:
        # Before the fix phase (`nox -s matrix` reports once, proves, reports again),
        # or without one: say what proves it rather than list every reader as failing.
        return (
            f"fix not proved yet: none of the {len(checked)} readers has applied it (the fix "
            "phase does: `nox -s matrix` runs it, or `ckptcompat check-fix` in each reader)"
        )
    ok = sum(v == "verified" for v in checked.values())
    line = f"fix verified on {ok}/{len(checked)} readers"
    others = sorted({v for v in checked.values() if v != "verified"})
    if others:
        line += (
            " ("
            + "; ".join(
                f"{v}: {', '.join(t for t, x in checked.items() if x == v)}" for v in others
            )
            + ")"
        )
    return line


def unproved_readers(doc: MatrixDoc) -> dict[str, str]:
    """The readers where the printed allowlist was not shown to work, and why (empty: proved).

    Every reader that can take an allowlist must have applied the very snippet the
    report prints and loaded what it should: `failed`, `not checked` (its fix phase
    did not run or wrote nothing) and `stale` (it checked another snippet) all count.
    A crashed cell is left to the cell's own failure, which says more.
    """
    fix = doc.get("fix")
    if not fix or not fix["snippet"]:
        return {}
    crashed = {c["tag"] for c in doc.get("cells", []) if c["status"] == "crashed"}
    return {
        tag: verdict
        for tag, verdict in fix["readers"].items()
        if verdict != "verified" and not verdict.startswith("no allowlist") and tag not in crashed
    }


def _missing_note(name: str, readers: list[str]) -> str:
    where = ", ".join(readers)
    if is_numpy_2_only(name) and fix_for_name(name).code:
        # Measured (torch 2.5.1 and 2.13): torch looks a global up in its
        # allowlist and never imports its module, so the snippet's alias
        # spelled `numpy._core...` loads these files even under numpy 1.25.
        return (
            f"{where}: numpy < 1.26.1 has no numpy._core; the allowlist code above registers "
            "this name anyway (an alias of numpy 1's object), and then these files load"
        )
    return f"{where}: {name} does not exist there"


def fix_of(entry: MatrixGlobal) -> Fix | None:
    """A global row's fix as a `Fix` again, for `fixes.render` (its notes are listed apart)."""
    fix = entry.get("fix")
    if not fix:
        return None
    return Fix(
        entry["name"],
        tuple(fix["entries"]),
        tuple(fix["code"]),
        tuple(fix["imports"]),
        fix["change"],
    )


def fix_notes(doc: MatrixDoc) -> list[str]:
    """Every distinct note of the matrix's fixes, in table order."""
    notes = (n for g in doc["globals"] if (fix := g["fix"]) for n in fix["notes"])
    return list(dict.fromkeys(notes))
