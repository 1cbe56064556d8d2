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
    """A real torch 2.5.1 / numpy 1.25.2 environment with this plugin installed.

    Built once per machine (uv's cache makes a rebuild quick), with its
    bytecode compiled at install time: uv does not compile by default, and
    where PYTHONDONTWRITEBYTECODE is set every process would compile torch's
    sources again (~1 s each). Each xdist worker that needs it takes a file
    lock, so one builds and the others wait instead of building over each
    other. `.ready` is written last (an interrupted build is started over);
    the editable install of this plugin is redone when pyproject.toml or the
    version changed (its code is read from the checkout anyway).
    """
    import fcntl
    import hashlib

    python = OLD_DIR / "bin" / "python"
    ready, editable = OLD_DIR / ".ready", OLD_DIR / ".editable"
    recipe = f"{' '.join(OLD)} pytest, bytecode compiled\n"
    project = hashlib.sha256(
        b"".join(
            (ROOT / name).read_bytes()
            for name in ("pyproject.toml", "pytest_ckptcompat/_version.py")
        )
    ).hexdigest()
    env = {**os.environ, "VIRTUAL_ENV": str(OLD_DIR)}
    OLD_DIR.parent.mkdir(exist_ok=True)
    with open(OLD_DIR.parent / f"{OLD_DIR.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (ready.exists() and ready.read_text() == recipe):
            uv = _uv()
            shutil.rmtree(OLD_DIR, ignore_errors=True)
            subprocess.run([uv, "venv", "-q", "-p", "3.11", str(OLD_DIR)], check=True)
            install = [uv, "pip", "install", "-q", "--compile-bytecode", *OLD, "pytest"]
            subprocess.run(install, check=True, env=env)
            ready.write_text(recipe)
        if not (editable.exists() and editable.read_text() == project):
            subprocess.run(
                [_uv(), "pip", "install", "-q", "--no-deps", "-e", str(ROOT)], check=True, env=env
            )
            editable.write_text(project)
    return python


@pytest.hookimpl(optionalhook=True, tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """`-n N` (xdist's default `--dist load`): whole files per worker, in collection order.

    One worker runs each file, so a module-scoped environment (the matrix
    report's cells) is built once, never once per worker that got one of its
    tests; and tests/matrix/ goes out first, so its long chain of real
    environments starts at once instead of holding up the end. (`loadgroup`
    would do for the first, but groups nothing on pytest 9.2 with
    pytest-xdist 3.8: pytest-dev/pytest-xdist#1386.) Any other `--dist` is
    left as given.
    """
    if config.getoption("dist") != "load":
        return None
    from xdist.scheduler import LoadFileScheduling

    config.option.loadscopereorder = False  # keep collection order (pytest-xdist >= 3.8)
    return LoadFileScheduling(config, log)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses another real environment is `slow`: `-m "not slow"` never builds one."""
    unmarked = [
        item.nodeid
        for item in items
        if "old_python" in getattr(item, "fixturenames", ())
        and item.get_closest_marker("slow") is None
    ]
    if unmarked:
        raise pytest.UsageError(
            "these tests use old_python but are not marked slow: " + ", ".join(unmarked)
        )


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
