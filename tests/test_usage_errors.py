"""One clear line, not a traceback: what a user gets wrong, or lacks, is said once.

Real pytest runs (pytester, and a real environment without torch) and real
`ckptcompat` runs (subprocesses, a real shell pipe).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NO_TORCH_DIR = ROOT / ".venvs" / "no-torch"


@pytest.fixture(scope="module")
def no_torch_python() -> Path:
    """A real environment with pytest and this plugin, and no torch at all."""
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    python = NO_TORCH_DIR / "bin" / "python"
    env = {**os.environ, "VIRTUAL_ENV": str(NO_TORCH_DIR)}
    if not python.exists():
        subprocess.run([uv, "venv", "-q", "-p", "3.11", str(NO_TORCH_DIR)], check=True)
        subprocess.run([uv, "pip", "install", "-q", "pytest>=7.4"], check=True, env=env)
    subprocess.run([uv, "pip", "install", "-q", "--no-deps", "-e", str(ROOT)], check=True, env=env)
    probe = subprocess.run([str(python), "-c", "import torch"], capture_output=True)
    assert probe.returncode != 0, "the no-torch environment has torch"
    return python


def _project(path: Path) -> Path:
    (path / "pytest.ini").write_text("[pytest]\naddopts = -p no:cacheprovider\n")
    (path / "test_it.py").write_text(
        "def test_plain():\n    assert True\n\n"
        "def test_uses_fixture(ckpt_compat):\n    ckpt_compat.roundtrip({'a': 1})\n"
    )
    return path


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--ckpt-compat", "--ckpt-compat-update", "--ckpt-compat-audit"])
def test_a_mode_without_torch_is_one_usage_error(no_torch_python, tmp_path, flag):
    project = _project(tmp_path)
    proc = subprocess.run(
        [str(no_torch_python), "-m", "pytest", flag], cwd=project, capture_output=True, text=True
    )
    assert proc.returncode == 4, proc.stdout + proc.stderr
    assert "INTERNALERROR" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    assert proc.stderr.strip() == (
        f"ERROR: {flag} needs torch, which is not importable here (No module named 'torch'): "
        f"install torch in this environment, or run pytest without {flag}"
    )


@pytest.mark.slow
def test_the_fixture_without_torch_fails_its_test_in_one_line(no_torch_python, tmp_path):
    project = _project(tmp_path)
    proc = subprocess.run(
        [str(no_torch_python), "-m", "pytest", "-rA"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr
    # The test that does not use the fixture still passes: the plugin costs nothing.
    assert "PASSED test_it.py::test_plain" in proc.stdout
    assert "Traceback" not in proc.stdout
    assert (
        "ckpt_compat needs torch, which is not importable here (No module named 'torch'): "
        "install torch in this environment"
    ) in proc.stdout
    assert "ModuleNotFoundError" not in proc.stdout.replace("(No module named 'torch')", "")


@pytest.mark.parametrize(
    ("ini_name", "text"),
    [
        ("pytest.ini", "[pytest]\nckpt_compat_safe_globals =\n  argparse.Namespace\n  no dots\n"),
        ("pytest.toml", '[pytest]\nckpt_compat_safe_globals = ["argparse.Namespace", "no dots"]\n'),
    ],
)
def test_a_bad_ini_entry_is_one_usage_error_not_one_per_test(pytester, ini_name, text):
    pytester.makefile(Path(ini_name).suffix, **{Path(ini_name).stem: text})
    pytester.makepyfile(
        "def test_a(ckpt_compat):\n    pass\n\ndef test_b(ckpt_compat):\n    pass\n"
    )
    result = pytester.runpytest_subprocess()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    assert result.stderr.lines[0] == (
        f"ERROR: {pytester.path / ini_name} (ckpt_compat_safe_globals): 'no dots' is not a "
        "global name; expected `module.name`, e.g. `argparse.Namespace`"
    )
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
    assert "test_a" not in result.stdout.str()  # nothing ran


def test_a_bare_ckptcompat_prints_the_help():
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr == ""
    assert proc.stdout.startswith("usage: ckptcompat ")
    for command in ("scan", "lint", "report", "gate", "check-fix"):
        assert f"\n    {command} " in proc.stdout
    assert "Exit codes" in proc.stdout


def test_a_closed_pipe_ends_scan_quietly(tmp_path):
    torch = pytest.importorskip("torch")
    import argparse

    for i in range(200):  # enough output to outlast the pipe's buffer
        torch.save({"ns": argparse.Namespace(i=i)}, tmp_path / f"m{i:03}.pt")
    for fmt in ([], ["--json"]):
        proc = subprocess.run(
            [
                *("bash", "-c", 'set -o pipefail; "$@" | head -n 1', "bash"),
                *(sys.executable, "-m", "pytest_ckptcompat", "scan", *fmt),
                *sorted(map(str, tmp_path.glob("*.pt"))),
            ],
            capture_output=True,
            text=True,
        )
        assert proc.stderr == ""
        assert proc.stdout.count("\n") == 1
        # Quietly, and not 1 ("found") even under pipefail, though the files do not load.
        assert proc.returncode == 0
