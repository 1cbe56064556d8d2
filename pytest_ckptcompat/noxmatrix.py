"""nox sessions for the version matrix: the documented import path for noxfiles.

A downstream `noxfile.py` needs three lines (and `pip install nox pytest-ckptcompat`):

    import nox
    from pytest_ckptcompat.noxmatrix import add_matrix_sessions
    add_matrix_sessions()          # reads matrix/matrix.toml (or $CKPTCOMPAT_MATRIX)

The sessions are built in `pytest_ckptcompat.matrix.sessions`.
"""

from __future__ import annotations

from .matrix.sessions import add_matrix_sessions

__all__ = ["add_matrix_sessions"]
