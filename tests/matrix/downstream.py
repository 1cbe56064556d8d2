"""A tiny downstream project, written into a folder for the matrix tests to run for real.

`ckptlib` saves what a training checkpoint holds (a state dict, SGD state, an
`argparse.Namespace`, a numpy float64, numpy RNG state, a `pathlib.Path`),
and its library loader calls `torch.load(path)` with no `weights_only`: fine
on torch 2.5, broken by torch 2.6's default. Its tests check the checkpoint
with `ckpt_compat.check` and run the loader, as a maintainer would.
"""

from __future__ import annotations

from pathlib import Path

LOADER_LINE = "    return torch.load(path)  # no weights_only: torch decides"

PACKAGE = f'''"""ckptlib: checkpoints of a tiny trainer."""

import argparse
import pathlib

import numpy as np
import torch


def make_checkpoint():
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 2)).sum().backward()
    optimizer.step()
    return {{
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "hparams": argparse.Namespace(lr=0.1, epochs=3),
        "best": np.float64(0.5),
        "rng": np.random.RandomState(0).get_state(),
        "out_dir": pathlib.Path("runs") / "1",
    }}


def save(checkpoint, path):
    torch.save(checkpoint, path)


def load(path):
{LOADER_LINE}
'''

TESTS = """import ckptlib


def test_checkpoint_is_portable(ckpt_compat):
    ckpt_compat.check("checkpoint", ckptlib.make_checkpoint(), compare="structure")


def test_loader_reads_what_save_writes(tmp_path):
    ckptlib.save(ckptlib.make_checkpoint(), tmp_path / "ckpt.pt")
    loaded = ckptlib.load(tmp_path / "ckpt.pt")
    assert loaded["hparams"].lr == 0.1
"""

PYPROJECT = """[project]
name = "ckptlib"
version = "0.1.0"
requires-python = ">=3.10"
dependencies = ["torch", "numpy"]

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["src/ckptlib"]

[tool.pytest.ini_options]
pythonpath = ["src"]
testpaths = ["tests"]
ckpt_compat_safe_globals = [
    "argparse.Namespace",
    "pathlib.PosixPath",
    "numpy.core.multiarray.scalar",
    "numpy._core.multiarray.scalar",
    "numpy.core.multiarray._reconstruct",
    "numpy._core.multiarray._reconstruct",
    "numpy.ndarray",
    "numpy.dtype",
    "numpy.dtypes.Float64DType",
    "numpy.dtypes.UInt32DType",
]
"""


def write_project(root: Path) -> Path:
    """Write ckptlib (package, tests, pytest configuration) under `root`; returns `root`."""
    (root / "src" / "ckptlib").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "src" / "ckptlib" / "__init__.py").write_text(PACKAGE, encoding="utf-8")
    (root / "tests" / "test_ckptlib.py").write_text(TESTS, encoding="utf-8")
    (root / "pyproject.toml").write_text(PYPROJECT, encoding="utf-8")
    return root


def loader_site() -> str:
    """`src/ckptlib/__init__.py:N`: the loader's `torch.load` call, as the gate must name it."""
    line = PACKAGE.splitlines().index(LOADER_LINE) + 1
    return f"src/ckptlib/__init__.py:{line}"


def loader_test() -> tuple[str, str]:
    """The loader test's node id and its `path:line`."""
    line = TESTS.splitlines().index("def test_loader_reads_what_save_writes(tmp_path):") + 1
    path = "tests/test_ckptlib.py"
    return f"{path}::test_loader_reads_what_save_writes", f"{path}:{line}"
