"""Which files of a directory are checkpoints: what `scan`, `show` and `diff` read in a folder.

A Hugging Face or Trainer checkpoint folder holds weights (`model.safetensors`,
`pytorch_model-00001-of-00002.bin`, `optimizer.pt`, `rng_state.pth`) beside
configuration (`config.json`, `model.safetensors.index.json`,
`trainer_state.json`, `tokenizer.json`) and the odd README. A directory is
searched recursively; files with a checkpoint extension are taken (or those
matching `--include` globs, which replace the extensions), everything else is
skipped and counted: configuration files (JSON, TOML, YAML, ...) and others.
Hidden directories (`.git`, `.cache`) are not entered and symbolic links to
directories are not followed (no loops). A file named on the command line is
always read, whatever its name.
"""

from __future__ import annotations

import fnmatch
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

#: What `torch.save`, `safetensors`, `pickle`, `joblib` and numpy files are called.
CHECKPOINT_SUFFIXES: Final = (
    ".pt", ".pth", ".bin", ".ckpt", ".safetensors", ".pkl", ".pickle", ".joblib", ".mar",
    ".tar", ".npy", ".npz", ".zip",
)  # fmt: skip
#: Configuration and metadata that sit beside weights.
CONFIG_SUFFIXES: Final = (
    ".json", ".toml", ".yaml", ".yml", ".cfg", ".ini", ".txt", ".md", ".jsonl", ".model",
    ".vocab", ".tiktoken",
)  # fmt: skip


@dataclass
class Found:
    """The files to read, and what was skipped."""

    # In the order given: a file to read, or a directory without any and why (an error).
    entries: list[tuple[Path, str | None]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)  # "config" / "other" -> count
    directories: list[Path] = field(default_factory=list)  # directories searched

    @property
    def files(self) -> list[Path]:
        """The files to read."""
        return [path for path, error in self.entries if error is None]

    def skipped_text(self) -> str:
        """`skipped 3 configuration files and 1 other file`, or ''."""
        config, other = self.skipped["config"], self.skipped["other"]
        if not config and not other:
            return ""
        parts = []
        if config:
            parts.append(
                f"{config} configuration file{'s' if config != 1 else ''} (JSON, TOML, ...)"
            )
        if other:
            parts.append(f"{other} other file{'s' if other != 1 else ''}")
        return "skipped " + " and ".join(parts)


def is_checkpoint_name(name: str, include: Sequence[str] = ()) -> bool:
    """Whether a file in a searched directory is read: `--include` globs, else the extensions."""
    if include:
        return any(fnmatch.fnmatch(name, pattern) for pattern in include)
    return name.lower().endswith(CHECKPOINT_SUFFIXES)


def find_checkpoints(paths: Iterable[str | os.PathLike[str]], include: Sequence[str] = ()) -> Found:
    """Expand directories into their checkpoint files (sorted); files are kept as given."""
    found = Found()
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            found.entries.append((path, None))  # a missing or odd path is the reader's to report
            continue
        found.directories.append(path)
        before, skipped = len(found.entries), sum(found.skipped.values())
        for root, dirs, files in os.walk(path):  # does not follow symlinked directories
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
            for name in sorted(files):
                relative = os.path.relpath(os.path.join(root, name), path)
                if is_checkpoint_name(name, include) or (
                    include and any(fnmatch.fnmatch(relative, p) for p in include)
                ):
                    found.entries.append((Path(root) / name, None))
                elif name.lower().endswith(CONFIG_SUFFIXES):
                    found.skipped["config"] += 1
                else:
                    found.skipped["other"] += 1
        if len(found.entries) == before:
            here = sum(found.skipped.values()) - skipped
            why = f"{here} file(s) skipped by name" if here else "it is empty"
            found.entries.append((path, f"{path}: no checkpoint file in this directory ({why})"))
    return found
