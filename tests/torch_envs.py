"""The other real torch installs the tests may use: the version matrix's cell environments.

`nox -s <tag>` builds each under `.nox/<tag>` of the checkout; a `git worktree`
of this repository has none of its own, so the main work tree's are found too.
A test that needs one and finds none is skipped, saying which and how to build it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Real torch releases other than this environment's (2.13), with numpy 2.2.6.
OTHER_TORCHES = (
    "torch2-4-1-numpy2-2-6-py3-11",
    "torch2-5-1-numpy2-2-6-py3-11",
    "torch2-15-0-numpy2-2-6-py3-11",
)


def _main_checkout() -> Path | None:
    """The main work tree of this repository (ROOT itself, unless ROOT is a `git worktree`)."""
    try:
        common = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--path-format=absolute", "--git-common-dir"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return Path(common).parent


def nox_python(tag: str, request: pytest.FixtureRequest) -> Path:
    """The python of the cell environment `tag`, or skip the test saying how to build it.

    torch 2.5.1 falls back to the suite's own `old_python` environment (torch
    2.5.1, numpy 1.25.2), which the suite builds itself: CI runs the tests
    before any matrix cell exists, and still checks that torch.
    """
    roots = dict.fromkeys(r for r in (ROOT, _main_checkout()) if r is not None)
    for root in roots:
        python = root / ".nox" / tag / "bin" / "python"
        if python.exists():
            return python
    if tag.startswith("torch2-5-1-"):
        return Path(request.getfixturevalue("old_python"))
    looked = ", ".join(str(r / ".nox" / tag) for r in roots)
    pytest.skip(f"no {tag} environment (looked in {looked}); build it with `nox -s {tag}`")


_REAL_LOADS = """
import json, sys, torch
out = {}
for path in sys.argv[1:]:
    try:
        torch.load(path, weights_only=True)
        out[path] = True
    except Exception:
        out[path] = False
print(json.dumps(out))
"""


def real_loads(python: Path, paths: list[str]) -> dict[str, bool]:
    """Whether each `torch.load(path, weights_only=True)` succeeds in `python`'s torch."""
    proc = subprocess.run(
        [str(python), "-c", _REAL_LOADS, *paths],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    loads: dict[str, bool] = json.loads(proc.stdout)
    return loads


def this_checkout_env() -> dict[str, str]:
    """The environment for a process of another venv that must run this checkout's code."""
    return {**os.environ, "PYTHONPATH": str(ROOT)}
