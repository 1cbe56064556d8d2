"""The nox matrix on a downstream project set up exactly as README says, for real.

Three lines of noxfile, a matrix file whose `[install] packages` lists only the
project itself, one cell (the local CPU torch 2.13.0): a bare `nox` must run
the matrix and nothing else, install pytest and this plugin in the cell by
itself, print one line per cell and phase, keep the logs in files, and end
with the globals table. Then the write phase crashes: the run, the report and
the gate must say so, the golden the crash left behind is stale, and the
baseline is not rewritten.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TAG = "torch2.13.0-numpy2.2.6-py3.11"

NOXFILE = """import nox
from pytest_ckptcompat.noxmatrix import add_matrix_sessions

nox.options.reuse_venv = "yes"
add_matrix_sessions()
"""

MATRIX = """[matrix]
python = ["3.11"]
torch = ["2.13.0"]
numpy = ["2.2.6"]

[install]
packages = ["-e ."]
find-links = ["$PIP_FIND_LINKS"]

[run]
tests = ["tests"]
"""

PYPROJECT = """[project]
name = "tinyproj"
version = "0.1.0"
dependencies = []

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/tinyproj"]

[tool.pytest.ini_options]
ckpt_compat_safe_globals = ["argparse.Namespace"]
"""

# OLD_CODE=1: the code of an earlier release also saved a datetime.date (blocked
# everywhere). BREAK_WRITE=1: the test module cannot be imported in the write phase.
# HANG_READ=<file>: the read phase writes <file> and hangs (the test kills it).
TESTS = """import argparse
import datetime
import os
import sys

if os.environ.get("BREAK_WRITE") and "--ckpt-compat-update" in sys.argv:
    raise RuntimeError("the write phase is broken on purpose")
if os.environ.get("HANG_READ") and "--ckpt-compat-update" not in sys.argv:
    import pathlib, time
    pathlib.Path(os.environ["HANG_READ"]).write_text("reading")
    time.sleep(600)  # until the test kills the whole nox run


def test_state(ckpt_compat):
    state = {"step": 3, "hparams": argparse.Namespace(lr=0.1)}
    if os.environ.get("OLD_CODE"):
        state["when"] = datetime.date(2024, 1, 2)
    ckpt_compat.check("state", state)
"""


def _project(root: Path) -> Path:
    (root / "src" / "tinyproj").mkdir(parents=True)
    (root / "src" / "tinyproj" / "__init__.py").write_text('"""tinyproj."""\n')
    (root / "tests").mkdir()
    (root / "tests" / "test_state.py").write_text(TESTS)
    (root / "matrix").mkdir()
    (root / "matrix" / "matrix.toml").write_text(MATRIX)
    (root / "pyproject.toml").write_text(PYPROJECT)
    (root / "noxfile.py").write_text(NOXFILE)
    return root


def _nox(project: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CKPTCOMPAT"))}
    clean.setdefault("PIP_FIND_LINKS", "/opt/wheels")
    return subprocess.run(
        [sys.executable, "-m", "nox", *args],
        cwd=project,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    if not any(Path(os.environ.get("PIP_FIND_LINKS", "/opt/wheels")).glob("torch-2.13.0*.whl")):
        pytest.skip("needs the local CPU build of torch 2.13.0 (PIP_FIND_LINKS)")
    return _project(tmp_path_factory.mktemp("nox") / "tinyproj")


def test_a_bare_nox_runs_only_the_matrix(project):
    proc = _nox(project, "-l")
    assert proc.returncode == 0, proc.stderr
    # nox marks the sessions a bare `nox` runs with `*`, the others with `-`
    default = re.findall(r"^\* (\S+)", proc.stdout, re.M)
    assert default == ["matrix"]
    assert re.search(r"^- baseline\b", proc.stdout, re.M)
    assert re.search(rf"^- {re.escape(TAG)}\b", proc.stdout, re.M)


def test_a_cold_run_installs_the_plugin_and_reports_as_it_goes(project):
    proc = _nox(project, OLD_CODE="1")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-4000:]
    # Before anything is installed: the cold cell and the disk it may take.
    assert f"cold run: 1 of 1 cell(s) have no venv yet ({TAG})" in out
    # One line per cell and phase, as it finishes.
    assert re.search(
        rf"^\[1/1\] write {re.escape(TAG)}  ok: 1 finding; 1 golden\(s\) written", out, re.M
    )
    assert re.search(
        rf"^\[1/1\] read  {re.escape(TAG)}  ok: 1 finding; loads: 1 blocked", out, re.M
    )
    logs = project / "matrix" / "cells" / "logs"
    assert "full output in matrix/cells/logs/" in out
    write_log = (logs / f"{TAG}.write.log").read_text()
    assert "pytest-ckptcompat" not in MATRIX  # not listed, yet installed:
    assert "--ckpt-compat-update" in write_log
    assert "plugins: ckptcompat" in write_log
    assert "test session starts" not in proc.stdout  # pytest's output stays in the log
    # It ends with the globals table (then the note that there is no baseline yet).
    table = out[out.index("global ") :]
    assert re.search(r"^datetime\.date +blocked$", table, re.M)
    assert re.search(r"^argparse\.Namespace +allowed-user$", table, re.M)
    assert not (project / "matrix" / "baseline.json").exists()  # only when asked
    cell = json.loads((project / "matrix" / "cells" / f"{TAG}.json").read_text())
    assert [(t["outcome"], t["finding"]) for t in cell["tests"]] == [("failed", True)]


def test_a_warm_cell_installs_nothing_until_what_it_installs_changes(project):
    venv = project / ".nox" / TAG.replace(".", "-")
    stamp = venv / ".ckptcompat-installed"
    assert stamp.is_file()  # the cold run above finished its installs
    # Bytecode for what every pytest process imports, written once (uv compiles none).
    site = next(venv.glob("lib/python*/site-packages"))
    assert any((site / "torch" / "__pycache__").glob("__init__.*.pyc"))
    log = project / "matrix" / "cells" / "logs" / f"{TAG}.write.log"

    proc = _nox(project, OLD_CODE="1")
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert "installs up to date" in log.read_text()
    assert "uv pip install" not in log.read_text()

    # The project's own build file changed (a new dependency, say): installed again.
    pyproject = project / "pyproject.toml"
    before = pyproject.read_text()
    pyproject.write_text(before.replace("dependencies = []", 'dependencies = ["packaging"]'))
    try:
        proc = _nox(project, OLD_CODE="1")
        assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
        assert "uv pip install" in log.read_text()
        assert "installs up to date" not in log.read_text()
        assert stamp.is_file()
    finally:
        pyproject.write_text(before)


def test_a_crashed_write_phase_fails_the_run_and_marks_the_golden_stale(project):
    proc = _nox(project, "-s", "baseline")
    assert proc.returncode == 0, proc.stderr
    baseline = project / "matrix" / "baseline.json"
    before = baseline.read_text()

    proc = _nox(project, BREAK_WRITE="1")  # a bare nox again
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert re.search(
        rf"^\[1/1\] write {re.escape(TAG)}  crashed: pytest was interrupted \(exit 2\).*"
        r"the write phase is broken on purpose",
        out,
        re.M,
    )
    assert "    | " in out  # the last lines of its log, under it
    assert f"cell {TAG} crashed: write phase: pytest was interrupted" in out  # the gate
    assert "gate: FAILED" in out
    assert baseline.read_text() == before  # a failed gate is not followed by `baseline`

    doc = json.loads((project / "matrix" / "report" / "matrix.json").read_text())
    (cell,) = doc["cells"]
    assert cell["status"] == "crashed"
    assert cell["phases"]["write"]["log"].endswith(f"logs/{TAG}.write.log")
    (golden,) = doc["outcomes"]
    # The golden the earlier code wrote (with its datetime.date) is read, and marked stale;
    # its global is no longer blamed on the code of this run.
    assert golden["stale"] == f"not rewritten by {TAG}'s write phase in this run (it crashed)"
    assert golden["blocked"] == ["datetime.date"]
    assert "datetime.date" not in {g["name"] for g in doc["globals"]}
    # (a date pickles its bytes through _codecs.encode: only the old code saved that too)
    assert [g["name"] for g in doc["stale_globals"]] == ["_codecs.encode", "datetime.date"]
    md = (project / "matrix" / "report" / "matrix.md").read_text()
    assert "| torch 2.13.0 numpy 2.2.6 py 3.11 | 💥 crashed |" in md
    assert "⌛ ❌ blocked [1]" in md
    assert f"1. stale: not rewritten by {TAG}'s write phase in this run (it crashed)" in md
    # No baseline from a crashed matrix.
    proc = _nox(project, "-s", "baseline")
    assert proc.returncode != 0
    assert "no baseline from a matrix with a crashed cell" in proc.stdout + proc.stderr
    assert baseline.read_text() == before


def test_a_cell_killed_while_reading_leaves_no_report_to_pass_for_it(project, tmp_path):
    """Killed mid-phase (Ctrl-C, a CI timeout), a cell must not keep its last run's report."""
    import signal
    import time

    report = project / "matrix" / "cells" / f"{TAG}.json"
    proc = _nox(project)  # a whole run: every phase's report is there
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    assert report.is_file()
    sentinel = tmp_path / "reading"
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "CKPTCOMPAT"))}
    clean.setdefault("PIP_FIND_LINKS", "/opt/wheels")
    cell = subprocess.Popen(
        [sys.executable, "-m", "nox", "-s", TAG, "--", "read"],
        cwd=project,
        env={**clean, "HANG_READ": str(sentinel)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 300
        while not sentinel.exists():
            assert cell.poll() is None, "the cell finished before it was killed"
            assert time.monotonic() < deadline, "the read phase never started"
            time.sleep(0.2)
        assert not report.exists()  # set aside while the phase runs
    finally:
        os.killpg(cell.pid, signal.SIGKILL)
        cell.wait(timeout=60)
    assert not report.exists()

    proc = _nox(project, "-s", "report")
    doc = json.loads((project / "matrix" / "report" / "matrix.json").read_text())
    (entry,) = doc["cells"]
    assert entry["status"] == "crashed", entry
    assert entry["phases"]["read"]["status"] == "crashed", entry
    assert entry["phases"]["write"]["status"] == "ok", entry


def test_a_fix_check_that_fails_leaves_no_earlier_verdict_behind(project):
    """check-fix failing (here: a snippet that does not run) must not keep an old "verified"."""
    fix = project / "matrix" / "cells" / f"{TAG}.fix.json"
    fix.parent.mkdir(parents=True, exist_ok=True)
    fix.write_text(json.dumps({"schema": "ckptcompat.fixcheck/1", "stale": True}))
    snippet = project / "matrix" / "report" / "safe_globals.py"
    snippet.parent.mkdir(parents=True, exist_ok=True)
    snippet.write_text("this is not python\n")
    proc = _nox(project, "-s", TAG, "--", "fix")
    assert not fix.exists(), (proc.stdout + proc.stderr)[-2000:]
