import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OLD = ("torch==2.5.1", "numpy==1.25.2")
OLD_DIR = ROOT / ".venvs" / "torch2.5.1-numpy1.25.2"


def _uv() -> str:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    assert Path(uv).exists() or shutil.which(uv), (
        "uv is a test dependency (scripts/test installs it)"
    )
    return uv


@pytest.fixture(scope="session")
def old_python() -> Path:
    """A real torch 2.5.1 / numpy 1.25.2 environment with this plugin installed."""
    python = OLD_DIR / "bin" / "python"
    if not python.exists():
        uv = _uv()
        subprocess.run([uv, "venv", "-q", "-p", "3.11", str(OLD_DIR)], check=True)
        env = {**os.environ, "VIRTUAL_ENV": str(OLD_DIR)}
        subprocess.run([uv, "pip", "install", "-q", *OLD, "pytest"], check=True, env=env)
    env = {**os.environ, "VIRTUAL_ENV": str(OLD_DIR)}
    subprocess.run(
        [_uv(), "pip", "install", "-q", "--no-deps", "-e", str(ROOT)], check=True, env=env
    )
    return python


@pytest.fixture(scope="session")
def rules():
    """The installed torch's weights_only rules (imports torch)."""
    from pytest_ckptcompat.scan.rules import TorchRules

    return TorchRules.from_installed()
