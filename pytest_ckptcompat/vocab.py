"""The words of DESIGN.md, each defined once: statuses, outcomes, and their order.

- The *status* of a global in a reader: what that reader's
  `torch.load(weights_only=True)` does with it.
- The *outcome* of one (artifact, writer, reader): what loading that golden
  there came to.

Both tuples are ordered from good to bad: reports sort and pick "the worst"
by position, so a new word goes where it belongs in that order.
"""

from __future__ import annotations

from typing import Final, Literal, get_args

Status = Literal["allowed", "allowed-user", "blocked", "missing"]
#: Good to bad: allowed by torch's defaults, by the user's allowlist, refused, absent here.
STATUSES: Final[tuple[Status, ...]] = get_args(Status)
ALLOWED: Final[frozenset[Status]] = frozenset({"allowed", "allowed-user"})

Outcome = Literal["ok", "blocked", "missing", "mismatch", "error"]
#: Good to bad, as reports list them.
OUTCOMES: Final[tuple[Outcome, ...]] = get_args(Outcome)

TestOutcome = Literal["passed", "skipped", "xfailed", "xpassed", "failed", "error"]
#: A test's outcome in one run, good to bad (`error`: setup, teardown or collection failed).
TEST_OUTCOMES: Final[tuple[TestOutcome, ...]] = get_args(TestOutcome)
#: The test outcomes that make a run red.
TEST_FAILURES: Final[frozenset[TestOutcome]] = frozenset({"failed", "error"})
#: The outcomes of a golden load in which the file loaded (a `mismatch` loaded, then differed).
LOADED: Final[frozenset[Outcome]] = frozenset({"ok", "mismatch"})

CellStatus = Literal["ok", "failed", "crashed"]
#: A matrix cell, good to bad: `ok`; `failed`: its phases ran to the end but tests of the
#: project failed for reasons other than a compatibility finding; `crashed`: a phase did not
#: run to the end (install failed, pytest stopped early or wrote no report).
CELL_STATUSES: Final[tuple[CellStatus, ...]] = get_args(CellStatus)

SiteState = Literal["works", "at-risk", "fails"]
#: A `torch.load` call site in one reader, good to bad: `works`; `at-risk`: the call went
#: through without `weights_only=True` and the file would not load with it; `fails`: the
#: real call raised.
SITE_STATES: Final[tuple[SiteState, ...]] = get_args(SiteState)

#: How a reader meets a name: as a GLOBAL, or as a type BUILD / NEWOBJ checks;
#: "setitem": what a file writes into (a tensor, a storage: always dangerous).
Kind = Literal["global", "build", "newobj", "setitem"]


def is_allowed(status: str) -> bool:
    """True for the statuses under which a load goes through."""
    return status in ALLOWED


def test_state(outcome: str, finding: object) -> str:
    """A test's outcome as reports show and gates compare it.

    A failure on a finding (a compatibility finding, not the project's own bug) is `finding`.
    """
    return "finding" if finding and outcome in TEST_FAILURES else outcome


def status_rank(status: str) -> int:
    """Position of `status` in `STATUSES` (0 for unknown words): higher is worse."""
    try:
        return STATUSES.index(status)  # type: ignore[arg-type,unused-ignore]
    except ValueError:
        return 0
