"""The version matrix of pytest-ckptcompat's bundled example (examples/trainer).

    nox -s matrix                    # every cell writes, every cell reads, report, gate
    nox -l                           # one session per cell, named after its environment tag
    nox -s torch2.5.1-numpy1.25.2-py3.11 -- write     # one cell, one phase (CI fan-out)
    CKPTCOMPAT_MATRIX=matrix/ci.toml nox -s matrix     # another matrix file

The matrix is data (matrix/matrix.toml); the sessions come from the same helper
a downstream project uses (pytest_ckptcompat.noxmatrix).
"""

from __future__ import annotations

import sys
from pathlib import Path

import nox

# The helper ships in this repository's package: import it from the checkout,
# whichever environment nox itself runs in.
sys.path.insert(0, str(Path(__file__).parent))

from pytest_ckptcompat.noxmatrix import add_matrix_sessions

nox.needs_version = ">=2025.10.14"
nox.options.default_venv_backend = "uv"
nox.options.reuse_venv = "yes"
nox.options.sessions = ["matrix"]

add_matrix_sessions()
