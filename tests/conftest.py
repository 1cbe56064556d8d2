import os
import shutil
import subprocess
import sys
import warnings
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


def _process_state() -> dict[str, object]:
    """What an in-process pytest run could leave behind in this interpreter."""
    import torch
    import torch.serialization as ts

    return {
        "torch.load": torch.load,
        "torch.serialization.load": ts.load,
        # torch keeps them in a set: compare as one (the list's order is not meaningful)
        "safe globals": set(ts.get_safe_globals()) if hasattr(ts, "get_safe_globals") else set(),
        "crc32": ts.get_crc32_options() if hasattr(ts, "get_crc32_options") else None,
        "warning filters": list(warnings.filters),
        # pytest itself updates PYTEST_CURRENT_TEST at each phase
        "environment": {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"},
    }


@pytest.fixture(autouse=True)
def _pytester_runs_leave_nothing_behind(request):
    """Tests that run pytest in this process (pytester) must leave it as they found it.

    torch, numpy and hypothesis are imported first, before pytester snapshots
    `sys.modules`: otherwise every in-process run drops them again and the next
    one re-imports them (seconds each; numpy warns when imported twice;
    hypothesis's pytest plugin imports it at the end of every run). After the
    test, the audit's torch.load wrapper must be gone (the plugin uninstalls it
    in pytest_unconfigure), and torch's allowlist and crc32 option, the warning
    filters and the environment must be as they were.
    """
    if "pytester" not in request.fixturenames:
        yield
        return
    import hypothesis  # noqa: F401
    import numpy  # noqa: F401
    import torch  # noqa: F401

    before = _process_state()
    yield
    after = _process_state()
    leaked = [key for key in before if after[key] != before[key]]
    assert not leaked, f"a pytester run left {', '.join(leaked)} changed in this process"
