"""Goldens written in one real environment, read in another: no mocks.

The second environment is created with uv (torch 2.5.1, numpy 1.25.2; the
shared uv cache makes it seconds once downloaded) next to this one (the
suite's torch, numpy 2). Both write their goldens of the same tests, then
both read all of them, and the outcomes must be the ones torch really gives:

- `{"s": {1, 2}}` is `blocked` (`builtins.set`) on torch 2.5, whoever wrote it,
  and `ok` on torch >= 2.6;
- a numpy 2 scalar read under numpy 1.25 is `missing` (`numpy._core` does not exist);
- a numpy 1 scalar read under numpy 2 with a plain allowlist (objects) is
  `blocked` on `numpy.core.multiarray.scalar`, and `ok` with the suggested
  allowlist (both spellings).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

PROJECT_TESTS = """
import numpy as np

def test_set(ckpt_compat):
    ckpt_compat.check("set_state", {"s": {1, 2}})

def _core():
    return np._core if int(np.__version__.split(".")[0]) >= 2 else np.core

def test_scalar_plain(ckpt_compat):
    plain = [_core().multiarray.scalar, np.dtype, type(np.dtype("float64"))]
    ckpt_compat.check("scalar_plain", {"m": np.float64(0.5)}, safe_globals=plain)

def test_scalar_fixed(ckpt_compat):
    # the allowlist the plugin suggests: both spellings (registered as (obj, name))
    fixed = ["numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.dtype",
             type(np.dtype("float64"))]
    ckpt_compat.check("scalar_fixed", {"m": np.float64(0.5)}, safe_globals=fixed)
"""

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        int(np.__version__.split(".")[0]) < 2
        or tuple(int(x) for x in torch.__version__.split("+")[0].split(".")[:2]) < (2, 6),
        reason="the reading side of this test is a torch >= 2.6, numpy 2 environment",
    ),
]


def _run(project: Path, *runs: tuple[Path, tuple[str, ...]]) -> None:
    """pytest in the project, one run per (python, args), all at once (as the matrix runs cells)."""
    procs = [
        subprocess.Popen(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
            cwd=project,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for python, args in runs
    ]
    for proc in procs:
        proc.wait()  # failing tests are the point; the report says what happened


def _outcomes(report: Path) -> dict[tuple[str, str], dict]:
    doc = json.loads(report.read_text())
    assert doc["schema"] == "ckptcompat.report/1"
    return {(r["artifact"], r["writer"][:11]): r for r in doc["records"] if r["kind"] == "golden"}


def test_two_real_environments_write_and_read_each_other(tmp_path, old_python):
    project = tmp_path / "downstream"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_ckpt.py").write_text(PROJECT_TESTS)
    new_python = Path(sys.executable)

    _run(project, *[(python, ("--ckpt-compat-update",)) for python in (old_python, new_python)])
    writers = sorted(p.stem for p in (project / "ckpt_goldens" / "set_state").glob("*.json"))
    assert len(writers) == 2
    assert any(w.startswith("torch2.5.1-numpy1.25.2") for w in writers)

    _run(
        project,
        *[
            (python, ("--ckpt-compat", f"--ckpt-compat-report={tmp_path / name}.json"))
            for name, python in (("old", old_python), ("new", new_python))
        ],
    )
    old = _outcomes(tmp_path / "old.json")
    new = _outcomes(tmp_path / "new.json")
    old_w, new_w = "torch2.5.1-", f"torch{torch.__version__.split('+')[0]}-"[:11]

    # builtins.set: blocked on torch 2.5 whoever wrote it, ok on the new torch
    for writer in (old_w, new_w):
        assert old[("set_state", writer)]["outcome"] == "blocked"
        assert "builtins.set" in old[("set_state", writer)]["blocked"]
        assert new[("set_state", writer)]["outcome"] == "ok"

    # a numpy 2 scalar under numpy 1.25: missing
    assert old[("scalar_plain", new_w)]["outcome"] == "missing"
    assert "numpy._core.multiarray.scalar" in old[("scalar_plain", new_w)]["missing"]
    assert old[("scalar_plain", old_w)]["outcome"] == "ok"

    # a numpy 1 scalar under numpy 2: blocked with plain objects, ok with the suggested fix
    plain = new[("scalar_plain", old_w)]
    assert plain["outcome"] == "blocked"
    assert "numpy.core.multiarray.scalar" in plain["blocked"]
    assert '"numpy.core.multiarray.scalar")' in plain["fix"]
    assert new[("scalar_fixed", old_w)]["outcome"] == "ok"
    assert new[("scalar_fixed", new_w)]["outcome"] == "ok"
