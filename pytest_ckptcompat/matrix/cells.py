"""How each cell's run went: its phases, the project's tests, the `torch.load` call sites.

A cell of the matrix runs pytest twice: the write phase
(`--ckpt-compat-update`, report `<cells>/<tag>.write.json`) and the read phase
(`--ckpt-compat`, report `<cells>/<tag>.json`). From those reports:

- each phase's status: `crashed` when it did not run to the end (the cell
  session's `cell.problem`: install failed, pytest wrote no report, the wrong
  versions got installed; or pytest's exit code other than 0 and 1, e.g. 2
  for collection errors), else `failed` when a test of the project failed or
  errored for a reason other than a compatibility finding, else `ok`;
- each test's outcome per reader (the worse of the two phases);
- each call site the audit saw per reader, and its state: `fails` (the real
  call raised), `at-risk` (it went through without `weights_only=True`, and
  the file would not load with it), `works`.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..environment import tag_key
from ..schemas import MatrixCell, MatrixLoadSite, MatrixPhase, MatrixTest
from ..vocab import CELL_STATUSES, SITE_STATES, TEST_FAILURES, TEST_OUTCOMES, test_state

#: The matrix's phases in the order they run; a report says which one wrote it.
MATRIX_PHASES = ("write", "read")

_EXIT = {
    2: "pytest was interrupted (exit 2): collection errors, or stopped",
    3: "pytest had an internal error (exit 3)",
    4: "pytest was called wrongly (exit 4: usage error)",
    5: "pytest collected no tests (exit 5): check [run] tests",
}
# The plugin's own loads, which the audit is to stop recording (issue 12, item 5):
# what they find is the grids' business, not a call site of the project.
_OWN_LOADS = re.compile(r"(^|[/\\])pytest_ckptcompat[/\\]")
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def _plain(text: object) -> str:
    """Text for a report: no terminal colour codes, no trailing space."""
    return _ANSI.sub("", str(text or "")).strip()


def phase_of(doc: Mapping[str, Any]) -> str:
    """Which phase wrote a cell report: the cell session says so, else pytest's options."""
    cell = doc.get("cell")
    if isinstance(cell, dict) and cell.get("phase") in MATRIX_PHASES:
        return str(cell["phase"])
    run = doc.get("run")
    if isinstance(run, dict) and run.get("update") and not run.get("compat"):
        return "write"
    return "read"


def log_file(cells: Path, tag: str, phase: str) -> Path:
    """Where the matrix run keeps a cell's phase's full output (`<cells>/logs/`)."""
    return cells / "logs" / f"{tag}.{phase}.log"


def log_of(cells: Path, tag: str, phase: str) -> str:
    """The phase's full output, if the matrix run kept it."""
    log = log_file(cells, tag, phase)
    return str(log) if log.is_file() else ""


def phase_entry(doc: Mapping[str, Any], report: Path, tag: str, phase: str) -> MatrixPhase:
    """One phase's status, why, its test counts and where to read more."""
    run = doc.get("run") if isinstance(doc.get("run"), dict) else {}
    tests = [t for t in doc.get("tests", []) if isinstance(t, dict)]
    cell = doc.get("cell") if isinstance(doc.get("cell"), dict) else {}
    exitstatus = run.get("exitstatus") if run else None
    problem = str(cell.get("problem") or "") if cell else ""
    if not problem and isinstance(exitstatus, int) and exitstatus not in (0, 1):
        problem = _EXIT.get(exitstatus, f"pytest exited {exitstatus}")
        errors = [t for t in tests if t.get("outcome") == "error" and "::" not in t["nodeid"]]
        if errors:
            problem += ": " + "; ".join(f"{t['nodeid']}: {t.get('message', '')}" for t in errors)
    status = "crashed" if problem else "ok"
    broken = [t for t in tests if t.get("outcome") in TEST_FAILURES and not t.get("finding")]
    if not problem and broken:
        status = "failed"
        problem = f"{len(broken)} test(s) of the project failed: " + "; ".join(
            _test_line(t) for t in broken[:3]
        )
        if len(broken) > 3:
            problem += f"; and {len(broken) - 3} more"
    if not problem and run and run.get("partial"):
        # What it did not run it did not check: green would hide the squares it skipped.
        status = "failed"
        problem = (
            "pytest ran part of the tests (a deselection, node ids, --lf, -x, or a crashed "
            "xdist worker): the loads of the tests it did not run are not checked"
        )
    return {
        "status": status,
        "problem": problem,
        "exitstatus": exitstatus if isinstance(exitstatus, int) else None,
        "duration": float(run.get("duration") or 0.0) if run else 0.0,
        "tests": test_counts(tests),
        "report": str(report),
        "log": log_of(report.parent, tag, phase),
    }


def test_counts(tests: list[dict[str, Any]]) -> dict[str, int]:
    """`{"passed": 6, "finding": 2}`: outcomes, a failure on a finding counted as `finding`."""
    counts = Counter(test_state(str(t["outcome"]), t.get("finding")) for t in tests)
    order = [*TEST_OUTCOMES[:4], "finding", *TEST_OUTCOMES[4:]]
    return {
        o: counts[o] for o in sorted(counts, key=lambda o: order.index(o) if o in order else 99)
    }


def missing_phase(tag: str, phase: str, folder: Path | None) -> MatrixPhase:
    """A phase whose report the merge expected and did not get."""
    log = log_of(folder, tag, phase) if folder else ""
    return {
        "status": "crashed",
        "problem": f"no report from its {phase} phase"
        + (f" (see {log})" if log else ": it did not run, or stopped before pytest wrote one"),
        "exitstatus": None,
        "duration": 0.0,
        "tests": {},
        "report": "",
        "log": log,
    }


def cell_entry(tag: str, phases: dict[str, MatrixPhase]) -> MatrixCell:
    """A cell and its status: the worse of its phases."""
    worst = max((CELL_STATUSES.index(p["status"]) for p in phases.values()), default=0)  # type: ignore[arg-type,unused-ignore]
    return {"tag": tag, "status": CELL_STATUSES[worst], "phases": phases}


def test_rows(reports: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[MatrixTest]:
    """One row per (test, reader): the worse outcome of the cell's phases."""
    rows: dict[tuple[str, str], MatrixTest] = {}
    for tag, phases in reports.items():
        for phase in MATRIX_PHASES:
            doc = phases.get(phase)
            if doc is None:
                continue
            for t in doc.get("tests", []):
                if not isinstance(t, dict) or t.get("outcome") not in TEST_OUTCOMES:
                    continue
                key = (t["nodeid"], tag)
                have = rows.get(key)
                if have is not None and _rank(have["outcome"]) >= _rank(t["outcome"]):
                    continue
                rows[key] = {
                    "nodeid": t["nodeid"],
                    "site": t.get("site", ""),
                    "reader": tag,
                    "outcome": t["outcome"],
                    "phase": phase,
                    "finding": bool(t.get("finding")),
                    "message": t.get("message", ""),
                    "where": t.get("where", ""),
                    "duration": float(t.get("duration", 0.0) or 0.0),
                }
    return sorted(rows.values(), key=lambda r: (r["nodeid"], tag_key(r["reader"])))


def site_state(site: Mapping[str, Any]) -> str:
    """`fails`, `at-risk` or `works` for one audited call site in one reader."""
    if site.get("error"):
        return "fails"
    unsafe = site.get("weights_only") != "True" and not site.get("effective")
    if unsafe and site.get("loadable") is False:
        return "at-risk"
    return "works"


def site_name(site: str) -> str:
    """A call site as every reader names it: from `site-packages/` on for installed code."""
    marker = "site-packages/"
    return site[site.index(marker) + len(marker) :] if marker in site else site


def site_rows(reads: Mapping[str, Mapping[str, Any]]) -> list[MatrixLoadSite]:
    """One row per (call site, reader), the audit's records of one site merged (worst state)."""
    rows: dict[tuple[str, str, str], MatrixLoadSite] = {}
    for tag, doc in reads.items():
        for s in doc.get("load_sites", []):
            if not isinstance(s, dict) or not isinstance(s.get("site"), str):
                continue
            if _OWN_LOADS.search(s["site"]):
                continue
            site, project = site_name(s["site"]), str(s.get("project_site") or "")
            state = site_state(s)
            key = (site, project, tag)
            have = rows.get(key)
            if have is None:
                rows[key] = {
                    "site": site,
                    "project_site": project,
                    "reader": tag,
                    "state": state,
                    "weights_only": str(s.get("weights_only", "")),
                    "calls": int(s.get("calls") or 0),
                    "blocked": list(s.get("blocked") or []),
                    "error": _plain(s.get("error")),
                    "fix": str(s.get("fix") or ""),
                    "tests": sorted(s.get("tests") or []),
                }
                continue
            have["calls"] += int(s.get("calls") or 0)
            have["tests"] = sorted(set(have["tests"]) | set(s.get("tests") or []))
            if SITE_STATES.index(state) > SITE_STATES.index(have["state"]):  # type: ignore[arg-type,unused-ignore]
                have["state"] = state
                have["weights_only"] = str(s.get("weights_only", ""))
                have["blocked"] = list(s.get("blocked") or [])
                have["error"] = _plain(s.get("error"))
                have["fix"] = str(s.get("fix") or "")
    return sorted(rows.values(), key=lambda r: (r["site"], r["project_site"], tag_key(r["reader"])))


def site_label(row: Mapping[str, Any]) -> str:
    """`src/lib/io.py:12`, or `pkg/io.py:80 (via src/lib/train.py:40)` for a site in a package."""
    via = f" (via {row['project_site']})" if row.get("project_site") else ""
    return f"{row['site']}{via}"


def _test_line(t: Mapping[str, Any]) -> str:
    at = f" (at {t['where']})" if t.get("where") else ""
    return f"{t['nodeid']} {t['outcome']}: {t.get('message', '')}{at}"


def _rank(outcome: str) -> int:
    return TEST_OUTCOMES.index(outcome)  # type: ignore[arg-type,unused-ignore]
