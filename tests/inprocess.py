"""Run a small downstream project's pytest in this process (pytester), as `runpytest` does.

A `runpytest_subprocess` run pays a fresh interpreter and a torch import
(1.5-2.5 s); in this process torch is already imported, and a run costs a
fraction of a second. Use it unless a separate process is the point of the
test: a process that is killed, two processes or xdist workers at once,
`-p` options that must not reach this process. The conftest fixture
`_pytester_runs_leave_nothing_behind` checks that the run left torch (its
`torch.load`, allowlist, crc32 option), the warning filters and the
environment as it found them.

Differences from a subprocess worth knowing: the run sees this process's
warning filters (the suite's `error` filter, stricter than a fresh
interpreter's) and `sys.stdout`-level capture only.
"""

from __future__ import annotations

import os

import pytest


def runpytest_inprocess(
    pytester: pytest.Pytester, *args: str | os.PathLike[str]
) -> pytest.RunResult:
    """`pytester.runpytest_inprocess(*args)`, the inner run's basetemp beside pytester's folder.

    As `pytester.runpytest` does: without it, the inner run's tmp_path would
    be made (and old ones cleaned up) in the machine-wide basetemp.
    """
    if not any(str(a).startswith("--basetemp") for a in args):
        args = (*args, f"--basetemp={pytester.path.parent / 'basetemp'}")
    return pytester.runpytest_inprocess(*args)
