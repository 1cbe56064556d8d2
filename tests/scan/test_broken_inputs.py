"""Broken and mistaken inputs: one line on stderr naming the file and the problem, exit 2.

Run for real in subprocesses, under an address-space limit (so a 2**63
length prefix that was believed would die with MemoryError and fail the test)
and a wall-clock bound.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest
import torch
from broken_corpus import build_broken, legacy_tar

# Importing torch maps ~650 MB here; 1.5 GiB leaves room for any honest scan
# and none for believing a length prefix.
MEMORY_LIMIT = 1536 << 20

# Sets the limit in the child itself (no preexec_fn in a threaded pytest
# worker), runs the command's main() per file and reports exit code, output,
# seconds and peak memory for each.
_DRIVER = textwrap.dedent(
    f"""
    import contextlib, io, json, resource, sys, time
    resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))
    from pytest_ckptcompat.cli import main
    main(["scan", "--no-project-config", "/dev/null"])  # warm up: torch imported once
    out = {{}}
    for path in sys.argv[1:]:
        stdout, stderr = io.StringIO(), io.StringIO()
        start = time.perf_counter()
        with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
            code = main(["scan", "--no-project-config", path])
        seconds = time.perf_counter() - start
        out[path] = [code, stdout.getvalue(), stderr.getvalue(), seconds]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({{"files": out, "peak": peak}}))
    """
)


@pytest.fixture(scope="module")
def broken(tmp_path_factory):
    return build_broken(tmp_path_factory.mktemp("broken"))


def _one_error_line(stderr: str, path: Path, problem: str) -> None:
    lines = stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith(f"ckptcompat: error: {path}: "), lines[0]
    assert problem in lines[0], (problem, lines[0])


def test_each_broken_input_alone(broken):
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, *(str(p) for _, p in broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json.loads(proc.stdout)
    for case, path in broken:
        code, stdout, stderr, seconds = doc["files"][str(path)]
        assert code == 2, (case.id, code, stdout, stderr)
        _one_error_line(stderr, path, case.problem)
        assert "Traceback" not in stdout + stderr
        assert seconds < 2.0, (case.id, seconds)
    assert doc["peak"] < 1 << 30, doc["peak"]


def test_all_broken_inputs_in_one_real_command(broken):
    code = (
        f"import resource, runpy, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({MEMORY_LIMIT}, {MEMORY_LIMIT}))\n"
        "sys.argv = ['ckptcompat', *sys.argv[1:]]\n"
        "runpy.run_module('pytest_ckptcompat', run_name='__main__')\n"
    )
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, "scan", "--no-project-config", *(str(p) for _, p in broken)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    elapsed = time.perf_counter() - start
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == len(broken)
    for (case, path), line in zip(broken, lines, strict=True):
        assert line.startswith(f"ckptcompat: error: {path}: "), line
        assert case.problem in line, (case.id, line)
    assert elapsed < 20, elapsed  # torch's import included


def test_no_permission():
    """A file the user may not read: one line, exit 2.

    As root, chmod 000 stops nothing, so the command runs as the unprivileged
    user `nobody` (util-linux `setpriv`), on a file in a folder nobody may enter.
    """
    folder = Path(tempfile.mkdtemp(prefix="ckptcompat-perm-"))
    try:
        folder.chmod(0o755)
        path = folder / "secret.pt"
        torch.save({"w": torch.ones(2)}, path)
        path.chmod(0)
        prefix: list[str] = []
        if os.geteuid() == 0:
            setpriv = shutil.which("setpriv")
            if setpriv is None:
                pytest.skip("running as root (chmod 000 cannot stop root) and no setpriv here")
            prefix = [setpriv, "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            probe = subprocess.run(
                [*prefix, sys.executable, "-c", "import pytest_ckptcompat"],
                capture_output=True,
                text=True,
                cwd="/",
            )
            if probe.returncode != 0:
                pytest.skip(
                    "running as root (chmod 000 cannot stop root), and user nobody cannot "
                    f"run this virtualenv's python: {probe.stderr[-200:]}"
                )
        proc = subprocess.run(
            [*prefix, sys.executable, "-m", "pytest_ckptcompat", "scan", str(path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd="/",
        )
        assert proc.returncode == 2, proc.stderr
        _one_error_line(proc.stderr, path, "Permission denied")
    finally:
        for p in folder.iterdir():
            p.chmod(0o600)
            p.unlink()
        folder.rmdir()


def test_legacy_tar_is_refused_by_torch_too(tmp_path):
    path = tmp_path / "legacy.tar"
    legacy_tar(path)
    with pytest.raises(RuntimeError, match=r"legacy \.tar format"):
        torch.load(path, weights_only=True)


@pytest.mark.parametrize("shape", ["marks", "lists"])
def test_100000_levels_deep_agrees_with_torch(tmp_path, rules, shape):
    """Valid but 100,000 levels deep: no RecursionError, and the same verdict as torch."""
    from pytest_ckptcompat.scan.scanner import scan_file

    n = 100_000
    body = b"(" * n + b"t" * n if shape == "marks" else b"]" * n + b"a" * (n - 1)
    path = tmp_path / f"deep_{shape}.pt"
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("archive/data.pkl", b"\x80\x02" + body + b".")
        zf.writestr("archive/version", b"3\n")
    path.write_bytes(buf.getvalue())
    torch.load(path, weights_only=True)  # torch loads it
    result = scan_file(path, rules)
    assert result.error is None
    assert result.loadable
