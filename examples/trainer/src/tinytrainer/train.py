"""A tiny trainer whose checkpoint holds what real ones do.

Model, optimizer and LR-scheduler state, torch and numpy RNG state, a numpy
scalar metric, `argparse.Namespace` hyperparameters, a `pathlib.Path` and a
`set` of tags: the usual suspects when `torch.load(weights_only=True)` refuses
a checkpoint written by another torch or numpy.
"""

from __future__ import annotations

import argparse
import codecs
import pathlib
from typing import Any

import numpy as np
import torch


def default_hparams() -> argparse.Namespace:
    """Hyperparameters as argparse gives them (and as many trainers save them)."""
    return argparse.Namespace(lr=0.05, batch_size=8, steps=5, seed=0, arch="mlp-4-8-2")


class Trainer:
    """Trains a 4-8-2 MLP on fixed random data with Adam and a StepLR schedule."""

    def __init__(self, hparams: argparse.Namespace | None = None) -> None:
        self.hparams = hparams or default_hparams()
        torch.manual_seed(self.hparams.seed)
        np.random.seed(self.hparams.seed)
        self.model = torch.nn.Sequential(
            torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2)
        )
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=self.hparams.lr)
        self.scheduler = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=2, gamma=0.5)
        self.data_dir = pathlib.Path("data") / "train"
        self.tags = {"baseline", "cpu"}
        self.step = 0
        self.losses: list[float] = []

    def train(self) -> Trainer:
        """Run `hparams.steps` optimizer steps; returns self."""
        x = torch.randn(32, 4)
        y = torch.randint(0, 2, (32,))
        for _ in range(self.hparams.steps):
            batch = torch.from_numpy(np.random.choice(32, self.hparams.batch_size, replace=False))
            loss = torch.nn.functional.cross_entropy(self.model(x[batch]), y[batch])
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            self.scheduler.step()
            self.losses.append(round(loss.item(), 4))
            self.step += 1
        return self

    def best_metric(self) -> np.float64:
        """A metric as numpy computes it: an `np.float64`, not a Python float."""
        # From the hyperparameters, not the losses: equal on every torch and numpy.
        return np.float64(self.hparams.lr) * np.float64(self.hparams.batch_size)

    def rng_state(self) -> dict[str, Any]:
        """Torch's generator state (a uint8 tensor) and numpy's legacy one (a tuple)."""
        return {"torch": torch.get_rng_state(), "numpy": np.random.get_state()}

    def checkpoint(self) -> dict[str, Any]:
        """Everything needed to resume training, as one dict."""
        return {
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.rng_state(),
            "best_metric": self.best_metric(),
            "hparams": self.hparams,
            "data_dir": self.data_dir,
            "tags": self.tags,
        }


# What tinytrainer registers before loading its own checkpoints; the pytest ini
# lists the same numpy and stdlib classes for the tests. The numpy names are
# registered under both spellings (numpy 1 writes numpy.core, numpy 2 numpy._core)
# where torch can. The loader also lets through what newer torch allows by default
# and older torch refuses: `set` (allowed from torch 2.6) and `_codecs.encode`
# (numpy arrays and scalars at pickle protocol 2, allowed from 2.5).
def safe_globals() -> list[Any]:
    """The allowlist tinytrainer's loader registers."""
    np_core = np._core if int(np.__version__.split(".")[0]) >= 2 else np.core
    entries: list[Any] = [
        argparse.Namespace,
        pathlib.PosixPath,
        np.ndarray,
        np.dtype,
        type(np.dtype("float64")),
        type(np.dtype("uint32")),
        set,
        codecs.encode,
    ]
    names = ("numpy.core", "numpy._core")
    for attr in ("scalar", "_reconstruct"):
        obj = getattr(np_core.multiarray, attr)
        if _has_tuple_form():
            entries += [(obj, f"{spelling}.multiarray.{attr}") for spelling in names]
        else:
            entries.append(obj)
    return entries


def _has_tuple_form() -> bool:
    major, minor = (int(p) for p in torch.__version__.split("+")[0].split(".")[:2])
    return (major, minor) >= (2, 6)


def save_checkpoint(trainer: Trainer, path: pathlib.Path) -> None:
    """Write the trainer's checkpoint with `torch.save`."""
    torch.save(trainer.checkpoint(), path)


def load_checkpoint(path: pathlib.Path) -> dict[str, Any]:
    """Load a checkpoint the safe way: `weights_only=True` with tinytrainer's allowlist.

    torch >= 2.5 scopes the allowlist to this load (`torch.serialization.safe_globals`);
    torch 2.4 has only `add_safe_globals`, which registers it for the whole process.
    """
    serialization = torch.serialization
    if hasattr(serialization, "safe_globals"):
        with serialization.safe_globals(safe_globals()):
            return torch.load(path, weights_only=True, map_location="cpu")
    serialization.add_safe_globals(safe_globals())
    return torch.load(path, weights_only=True, map_location="cpu")
