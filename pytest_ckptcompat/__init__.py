"""pytest-ckptcompat: do your PyTorch checkpoints load under `torch.load(weights_only=True)`?

The pytest plugin lives in `pytest_ckptcompat.plugin` (fixture `ckpt_compat`,
marker `ckpt_compat`, option `--ckpt-compat`); the `ckptcompat` command in
`pytest_ckptcompat.cli`. Nothing here imports torch or numpy.
"""

from __future__ import annotations

from ._version import __version__
from .errors import CkptCompatError, PickleFormatError, SafeGlobalError, UnreadableCheckpointError

__all__ = [
    "CkptCompatError",
    "PickleFormatError",
    "SafeGlobalError",
    "UnreadableCheckpointError",
    "__version__",
]
