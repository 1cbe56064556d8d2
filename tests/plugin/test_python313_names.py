"""Allowlist and `expect_blocked` entries name objects, whatever this Python writes for them.

Python 3.13 moved pathlib's classes to `pathlib._local`: `pathlib.PurePosixPath`
pickles as `pathlib._local.PurePosixPath`. An entry `pathlib.PurePosixPath`
(marker, ini, `--safe-global`) must still let it load, and `expect_blocked`
must still see it blocked, as torch's own `safe_globals` with the class does.

The mechanism is checked on any Python with a package that re-exports a class
from a private module (what 3.13 does to pathlib); the real thing runs under a
real Python 3.13 with torch (an environment built once with uv under .venvs/).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_ckptcompat.scan.allowlist import spellings

ROOT = Path(__file__).resolve().parents[2]
PY313_DIR = ROOT / ".venvs" / "py313-torch2.13.0"


def test_spellings_are_the_entry_and_what_this_python_writes():
    import pathlib

    own = f"{pathlib.PurePosixPath.__module__}.PurePosixPath"  # pathlib._local on 3.13
    assert spellings("pathlib.PurePosixPath") == {"pathlib.PurePosixPath", own}
    assert spellings("argparse.Namespace") == {"argparse.Namespace"}
    assert spellings("nowhere.Nothing") == {"nowhere.Nothing"}  # names nothing: itself
    np = pytest.importorskip("numpy")
    scalar = spellings("numpy.core.multiarray.scalar")
    assert {"numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar"} <= scalar
    assert f"{np.float64.__module__}.float64" in spellings("numpy.float64")


# A package that does to its class what Python 3.13 does to pathlib's.
PACKAGE = {
    "mypkg/__init__.py": "from ._local import Point\n",
    "mypkg/_local.py": (
        "class Point:\n"
        "    def __init__(self, x=0):\n        self.x = x\n"
        "    def __eq__(self, other):\n        return type(other) is Point and other.x == self.x\n"
    ),
}


@pytest.fixture
def project(pytester):
    for rel, text in PACKAGE.items():
        (pytester.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (pytester.path / rel).write_text(text)
    pytester.syspathinsert()
    return pytester


def test_a_reexported_class_is_matched_by_its_public_name(project):
    project.makepyfile(
        """
        import pytest
        from mypkg import Point

        @pytest.mark.ckpt_compat(safe_globals=["mypkg.Point"])
        def test_marker(ckpt_compat):
            ckpt_compat.roundtrip({"p": Point(1)})

        @pytest.mark.ckpt_compat(expect_blocked=["mypkg.Point"])
        def test_still_blocked(ckpt_compat):
            ckpt_compat.roundtrip({"p": Point(1)})

        @pytest.mark.ckpt_compat(expect_blocked=["mypkg.Point"])
        def test_check_still_blocked(ckpt_compat):
            ckpt_compat.check("point", {"p": Point(1)})
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "-rxX")
    result.assert_outcomes(passed=1, xfailed=2)
    result.stdout.fnmatch_lines(["*blocked as expected: mypkg.Point*"])
    assert "now loads" not in result.stdout.str()


def _python313() -> str | None:
    pyenv = os.path.expanduser("~/.pyenv/versions/3.13.0/bin/python3.13")
    for candidate in (shutil.which("python3.13"), pyenv):
        if candidate and Path(candidate).exists():
            probe = subprocess.run(
                [candidate, "-c", "import sys; print(sys.version_info[:2])"],
                capture_output=True,
                text=True,
            )
            if probe.returncode == 0 and probe.stdout.strip() == "(3, 13)":
                return candidate
    return None


@pytest.fixture(scope="module")
def python313() -> Path:
    """A real Python 3.13 with torch 2.13.0 (PyPI's wheel) and this plugin."""
    interpreter = _python313()
    if interpreter is None:
        pytest.skip("no Python 3.13 interpreter on this machine")
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    python = PY313_DIR / "bin" / "python"
    env = {**os.environ, "VIRTUAL_ENV": str(PY313_DIR), "UV_PYTHON_DOWNLOADS": "never"}
    if not python.exists():
        subprocess.run([uv, "venv", "-q", "-p", interpreter, str(PY313_DIR)], check=True, env=env)
        subprocess.run(
            [uv, "pip", "install", "-q", "torch==2.13.0", "numpy", "pytest>=7.4"],
            check=True,
            env=env,
        )
    subprocess.run([uv, "pip", "install", "-q", "--no-deps", "-e", str(ROOT)], check=True, env=env)
    return python


@pytest.mark.slow
def test_under_a_real_python_313(python313, tmp_path):
    check = subprocess.run(
        [str(python313), "-c", "import pathlib, pickle; print(pathlib.PurePosixPath.__module__)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert check.stdout.strip() == "pathlib._local"  # what makes the entry need two names
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = -p no:cacheprovider -rxX\n"
        "ckpt_compat_safe_globals = pathlib.PureWindowsPath\n"
    )
    (tmp_path / "test_paths.py").write_text(
        "import pathlib\nimport pytest\n\n"
        "def test_ini(ckpt_compat):\n"
        "    ckpt_compat.roundtrip({'p': pathlib.PureWindowsPath('c:/data')})\n\n"
        "@pytest.mark.ckpt_compat(safe_globals=['pathlib.PurePosixPath'])\n"
        "def test_marker(ckpt_compat):\n"
        "    ckpt_compat.roundtrip({'p': pathlib.PurePosixPath('/data')})\n\n"
        "@pytest.mark.ckpt_compat(expect_blocked=['pathlib.PosixPath'])\n"
        "def test_expect_blocked(ckpt_compat):\n"
        "    ckpt_compat.roundtrip({'p': pathlib.PosixPath('/data')})\n"
    )
    proc = subprocess.run(
        [str(python313), "-m", "pytest"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 passed, 1 xfailed" in proc.stdout
    assert "blocked as expected: pathlib.PosixPath" in proc.stdout
    # The scan reads the same entry from the ini: a file written under 3.13 loads.
    save = "import pathlib, torch; torch.save({'p': pathlib.PureWindowsPath('c:/x')}, 'p.pt')"
    subprocess.run([str(python313), "-c", save], cwd=tmp_path, check=True)
    scan = subprocess.run(
        [str(python313), "-m", "pytest_ckptcompat", "scan", "p.pt"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert scan.returncode == 0, scan.stdout + scan.stderr
    assert "pathlib._local.PureWindowsPath" in scan.stdout
