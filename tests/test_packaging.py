"""Packaging promises: cheap import, version, entry points."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata

import pytest_ckptcompat


def test_importing_the_plugin_imports_neither_torch_nor_numpy():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import pytest_ckptcompat.plugin"],
        capture_output=True,
        text=True,
        check=True,
    )
    modules = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines()}
    assert "pytest_ckptcompat.plugin" in modules
    assert not {m for m in modules if m.split(".")[0] in ("torch", "numpy")}


def test_version_matches_metadata():
    assert pytest_ckptcompat.__version__ == metadata.version("pytest-ckptcompat")


def test_entry_points():
    eps = metadata.entry_points()
    assert any(ep.value == "pytest_ckptcompat.plugin" for ep in eps.select(group="pytest11"))
    assert any(ep.name == "ckptcompat" for ep in eps.select(group="console_scripts"))
