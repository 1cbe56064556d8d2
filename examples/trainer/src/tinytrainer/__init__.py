"""tinytrainer: train a tiny model and checkpoint everything a real trainer does."""

from .train import Trainer, load_checkpoint, save_checkpoint

__all__ = ["Trainer", "load_checkpoint", "save_checkpoint"]
