"""The project's own tests in a run, for the report: each one's outcome and why it failed.

The matrix needs more than the loads `ckpt_compat` checked: a project test
that fails in one environment (its own loader, a `torch.save` that raises) is
a finding too, and a crash of the whole run must not pass for a clean one.
The plugin records one `TestDoc` per test from pytest's own reports (the
xdist controller receives every worker's), only when a report is written.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, NoReturn

from .schemas import TestDoc
from .vocab import TEST_FAILURES, TEST_OUTCOMES

#: Set on the exception of every failure that is a compatibility finding (`fail_finding`).
_FINDING_MARK = "ckpt_compat_is_finding"
_MESSAGE_LIMIT = 300
#: The attributes `pytest_runtest_makereport` sets on a failed report (they travel through
#: xdist, which rebuilds the report's text differently on the controller).
WHERE_ATTR = "ckpt_compat_where"
FINDING_ATTR = "ckpt_compat_finding"
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def outcome_of(report: Any) -> str | None:
    """The outcome one phase of a test settles (None: it settles nothing, e.g. setup passed)."""
    xfail = hasattr(report, "wasxfail")
    if report.when == "call":
        if report.passed:
            return "xpassed" if xfail else "passed"
        if report.skipped:
            return "xfailed" if xfail else "skipped"
        return "failed"
    if report.failed:
        return "error"  # setup or teardown
    if report.skipped:
        return "xfailed" if xfail else "skipped"
    return None


def record(tests: dict[str, TestDoc], report: Any) -> None:
    """Fold one `TestReport` (setup, call or teardown) into `tests`: the worst phase wins.

    `duration` adds up the phases' seconds, whichever phase settles the outcome.
    """
    have = tests.get(report.nodeid)
    duration = round(float(getattr(report, "duration", 0.0) or 0.0), 4)
    if have is not None:
        have["duration"] = round(have.get("duration", 0.0) + duration, 4)
    outcome = outcome_of(report)
    if outcome is None:
        return
    if have is not None and TEST_OUTCOMES.index(have["outcome"]) >= TEST_OUTCOMES.index(outcome):  # type: ignore[arg-type,unused-ignore]
        return
    failed = outcome in TEST_FAILURES
    tests[report.nodeid] = {
        "nodeid": report.nodeid,
        "site": _site(report.location),
        "outcome": outcome,
        "finding": failed and bool(getattr(report, FINDING_ATTR, False)),
        "message": _message(report) if failed else "",
        "where": str(getattr(report, WHERE_ATTR, "")) if failed else "",
        "duration": have["duration"] if have is not None else duration,
    }


def record_collect_error(tests: dict[str, TestDoc], report: Any) -> None:
    """A module (or class) that failed to collect: its tests never ran."""
    if not report.failed:
        return
    tests[report.nodeid or "<collection>"] = {
        "nodeid": report.nodeid or "<collection>",
        "site": report.nodeid.split("::")[0],
        "outcome": "error",
        "finding": False,
        "message": _message(report),
        "where": "",
        "duration": round(float(getattr(report, "duration", 0.0) or 0.0), 4),
    }


def fail_finding(message: str, *, pytrace: bool = False) -> NoReturn:
    """`pytest.fail` for a compatibility finding, marked as such.

    A finding: a load refused, a value changed, an expected breakage gone (what the
    matrix's grids show). The fixture's other failures (no golden to compare with, a
    missing package, a misused marker) are the project's to fix: a cell with them is
    not ok.
    """
    import pytest

    exc = pytest.fail.Exception(message, pytrace=pytrace)
    setattr(exc, _FINDING_MARK, True)
    raise exc


def is_finding(excinfo: Any) -> bool:
    """Whether a failure is a compatibility finding `ckpt_compat` raised (`fail_finding`)."""
    return bool(getattr(excinfo.value, _FINDING_MARK, False))


def where(excinfo: Any, rootdir: Path) -> str:
    """`path:line` of the innermost traceback entry in the project's own code ("" if none)."""
    root = str(rootdir.resolve())
    for entry in reversed(excinfo.traceback):
        path = str(entry.path)
        if not path.startswith(root + os.sep) or "site-packages" in path[len(root) :]:
            continue
        return f"{os.path.relpath(path, root)}:{entry.lineno + 1}"
    return ""


def _site(location: tuple[str, int | None, str]) -> str:
    path, line, _ = location
    return f"{path}:{line + 1}" if line is not None else path


def _message(report: Any) -> str:
    """The failure in one line: the exception pytest shows last (`E   ...`), else the first."""
    crash = getattr(report.longrepr, "reprcrash", None)
    text = crash.message if crash is not None else report.longreprtext
    lines = [line.strip() for line in str(text).splitlines() if line.strip()]
    marked = [line[1:].strip() for line in lines if line.startswith("E ")]
    line = (marked or lines or [""])[-1 if marked else 0]
    line = _ANSI.sub("", line.removeprefix("Failed: "))
    return line if len(line) <= _MESSAGE_LIMIT else line[: _MESSAGE_LIMIT - 3] + "..."
