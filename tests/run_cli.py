"""`ckptcompat ...` as a user runs it: a real process of this environment's Python."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def ckptcompat(*args: object, cwd: Path | str | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m pytest_ckptcompat ARGS` in `cwd`; its output is captured, never checked."""
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        check=False,
    )
