"""pytest-ckptcompat: do your PyTorch checkpoints load under `torch.load(weights_only=True)`?

The public API is what `__all__` lists, plus the pytest plugin's options,
fixture and marker (`pytest_ckptcompat.plugin`), the `ckptcompat` command and
`pytest_ckptcompat.noxmatrix.add_matrix_sessions`. Everything else is
internal (docs/architecture.md shows the map).

Names are imported on first use (PEP 562), so `import pytest_ckptcompat`,
which pytest does to load the plugin, costs nothing and never imports torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._version import __version__

if TYPE_CHECKING:
    from .errors import (
        CkptCompatError,
        FileProblem,
        GoldenError,
        LintFileError,
        MatrixError,
        PickleFormatError,
        ReportError,
        SafeGlobalError,
        UnreadableCheckpointError,
    )
    from .fixture import CkptCompat
    from .lint import lint_paths
    from .matrix.config import load_matrix
    from .matrix.sessions import add_matrix_sessions
    from .scan.rules import TorchRules
    from .scan.scanner import FileScan, scan_file
    from .scan.verdict import Obstacle, Requirement, Verdict

__all__ = [
    "CkptCompat",
    "CkptCompatError",
    "FileProblem",
    "FileScan",
    "GoldenError",
    "LintFileError",
    "MatrixError",
    "Obstacle",
    "PickleFormatError",
    "ReportError",
    "Requirement",
    "SafeGlobalError",
    "TorchRules",
    "UnreadableCheckpointError",
    "Verdict",
    "__version__",
    "add_matrix_sessions",
    "lint_paths",
    "load_matrix",
    "scan_file",
]

_HOMES = {
    **dict.fromkeys(
        (
            "CkptCompatError",
            "FileProblem",
            "GoldenError",
            "LintFileError",
            "MatrixError",
            "PickleFormatError",
            "ReportError",
            "SafeGlobalError",
            "UnreadableCheckpointError",
        ),
        ".errors",
    ),
    "CkptCompat": ".fixture",
    "lint_paths": ".lint",
    "load_matrix": ".matrix.config",
    "add_matrix_sessions": ".matrix.sessions",
    "TorchRules": ".scan.rules",
    "FileScan": ".scan.scanner",
    "scan_file": ".scan.scanner",
    **dict.fromkeys(("Obstacle", "Requirement", "Verdict"), ".scan.verdict"),
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home, __name__), name)
    globals()[name] = value  # the next access is a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
