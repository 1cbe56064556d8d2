"""The golden store: one file per (artifact, writer environment), with its metadata.

Layout, under the golden directory (`--ckpt-compat-dir`, ini `ckpt_compat_dir`):

    <artifact>/<writer tag>.pt      # the bytes torch.save wrote, as written
    <artifact>/<writer tag>.json    # who wrote it, its sha256, the globals it holds

or, for `check(..., format="safetensors")`, `<writer tag>.safetensors` (the
metadata says `"format": "safetensors"`; without it a golden is a torch one).

A writer only ever writes its own two files, each to a temporary file first
and then `os.replace`, so a killed run never leaves half a file under a
golden's name (stray `.<name>.*.tmp` files are ignored, and the next write
of that golden removes them). The pair is kept consistent too:

1. the new metadata is written complete beside the old, as
   `.<writer tag>.json.pending`;
2. the checkpoint is replaced;
3. the pending metadata is renamed over the old (the commit).

A run killed after 2 leaves a new checkpoint with the old metadata, and the
pending file says what it is: the reader accepts a checkpoint whose sha256
is that of the metadata or of the pending metadata, nothing else. A golden
without metadata (a first write killed before 3) is ignored. The next write
of the golden settles a pending file before it writes its own: committed if
the checkpoint is the one it describes, removed if not. Writers of one
artifact folder take an exclusive lock on it (`flock` of the folder, where the
platform has it), readers a shared one, so concurrent runs (xdist workers,
two pytest processes) never interleave their steps.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import schemas
from ._version import __version__
from .errors import GoldenError
from .files import atomic_write, sha256

SCHEMA_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: A golden's format -> the suffix of its file.
SUFFIXES = {"torch": ".pt", "safetensors": ".safetensors"}


def check_artifact_name(name: str) -> str:
    """An artifact name must be a safe folder name (it is one)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"artifact name {name!r}: use letters, digits, '.', '_' and '-' (at most 128), "
            "e.g. 'train_state'"
        )
    return name


def glob_escape(name: str) -> str:
    """`name` as a literal in a glob pattern."""
    return re.sub(r"([*?\[])", r"[\1]", name)


@contextlib.contextmanager
def locked(folder: Path, *, exclusive: bool) -> Iterator[int | None]:
    """Hold a lock on `folder` (an artifact's folder); yields its fd (None: no locking here).

    `flock` on the folder itself: no lock file to commit, and the kernel
    releases it when a killed process dies. Platforms or file systems
    without it get no lock (the pending-metadata scheme still keeps a killed
    write consistent; only truly concurrent writers of one golden need this).
    """
    try:
        import fcntl
    except ImportError:  # Windows
        yield None
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        yield None
        return
    try:
        with contextlib.suppress(OSError):  # a file system without flock: carry on unlocked
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _pending(path: Path) -> Path:
    """Where the metadata of a golden being written waits for its checkpoint."""
    return path.with_name(f".{path.stem}.json.pending")


def _read_meta(path: Path) -> dict[str, Any]:
    meta = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise ValueError("not a JSON object")
    return meta


@dataclass(frozen=True)
class Golden:
    """One stored golden: its checkpoint path and its metadata."""

    artifact: str
    writer: str  # environment tag
    path: Path
    meta: dict[str, Any]

    @property
    def meta_path(self) -> Path:
        """Where the metadata lives."""
        return self.path.with_suffix(".json")

    @property
    def format(self) -> str:
        """`torch` (torch.save bytes) or `safetensors`."""
        return _format(self.meta)

    def read_verified(self) -> bytes:
        """The checkpoint bytes; `GoldenError` when they are not what was written.

        Read under the folder's shared lock, against the metadata as it is
        now (a writer may have committed since this golden was listed), or
        the pending metadata of a write that was killed before its commit.
        """
        with locked(self.path.parent, exclusive=False):
            meta = self.meta
            with contextlib.suppress(OSError, ValueError):
                meta = _read_meta(self.meta_path)
            schema = meta.get("schema_version", 0)
            if not isinstance(schema, int) or schema > SCHEMA_VERSION:
                raise GoldenError(
                    f"{self.meta_path}: written by a newer pytest-ckptcompat "
                    f"({meta.get('plugin', '?')}, golden schema {schema}); "
                    f"this is {__version__} (schema {SCHEMA_VERSION}): upgrade to read it"
                )
            try:
                data = self.path.read_bytes()
            except OSError as exc:
                raise GoldenError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
            digest = sha256(data)
            if digest == meta.get("sha256"):
                return data
            with contextlib.suppress(OSError, ValueError):
                if digest == _read_meta(_pending(self.path)).get("sha256"):
                    return data  # a write killed between its checkpoint and its commit
        raise GoldenError(
            f"{self.path}: modified since it was written (sha256 differs from "
            f"{self.meta_path.name}); re-write it with --ckpt-compat-update in "
            f"{self.writer}, or restore it"
        )


class GoldenStore:
    """The goldens under one directory."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def artifacts(self) -> list[str]:
        """Every artifact name with at least one golden."""
        if not self.root.is_dir():
            return []
        return sorted(p.name for p in self.root.iterdir() if p.is_dir() and any(p.glob("*.json")))

    def goldens(self, artifact: str) -> list[Golden]:
        """Every golden of `artifact`, one per writer (unreadable metadata is an error golden)."""
        folder = self.root / artifact
        out = []
        # Only `<tag>.json` commits a golden: `.<tag>.json.pending` and
        # `.*.tmp` files are writes in progress, or left by killed ones.
        for meta_path in sorted(folder.glob("*.json")):
            writer = meta_path.stem
            if writer.startswith("."):
                continue
            try:
                meta = _read_meta(meta_path)
            except (OSError, ValueError) as exc:
                meta = {"error": f"{meta_path}: unreadable metadata ({exc})"}
            suffix = SUFFIXES.get(_format(meta), ".pt")
            out.append(Golden(artifact, writer, meta_path.with_suffix(suffix), meta))
        return out

    def write(self, artifact: str, data: bytes, meta: dict[str, Any]) -> Golden:
        """Write this environment's golden of `artifact` (checkpoint first, then metadata)."""
        writer = meta["writer"]["tag"]
        fmt = _format(meta)
        path = self.root / artifact / f"{writer}{SUFFIXES[fmt]}"
        full = {
            "schema": schemas.GOLDEN,
            "schema_version": SCHEMA_VERSION,
            "artifact": artifact,
            "plugin": __version__,
            "sha256": sha256(data),
            "bytes": len(data),
            **meta,
        }
        text = json.dumps(full, indent=2, sort_keys=True) + "\n"
        path.parent.mkdir(parents=True, exist_ok=True)
        with locked(path.parent, exclusive=True) as folder_fd:
            # Under the lock no other writer is mid-write here: temporary
            # files of this golden are left by killed runs.
            pending = _pending(path)
            for name in (path.name, path.with_suffix(".json").name, pending.name):
                for stray in path.parent.glob(f".{glob_escape(name)}.*.tmp"):
                    stray.unlink(missing_ok=True)
            _finish_killed_write(pending, path.with_suffix(".json"))
            atomic_write(pending, text.encode())
            atomic_write(path, data)
            _commit(pending, path)
            if folder_fd is not None:
                with contextlib.suppress(OSError):
                    os.fsync(folder_fd)  # the renames themselves survive a crash
        return Golden(artifact, writer, path, full)

    def delete(self, golden: Golden) -> list[Path]:
        """Remove one golden (both files); only `--ckpt-compat-prune` calls this.

        Returns the files it deleted, for the summary to name.
        """
        deleted: list[Path] = []
        folder = golden.path.parent
        with locked(folder, exclusive=True):
            for path in (golden.meta_path, golden.path, _pending(golden.path)):
                if path.exists():
                    path.unlink()
                    deleted.append(path)
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        return deleted


def _commit(pending: Path, path: Path) -> None:
    """Step 3: the pending metadata becomes the golden's; `path` is its checkpoint."""
    os.replace(pending, path.with_suffix(".json"))
    # This writer's golden in the other format (the test changed `format=`) is
    # replaced, not left beside the new one: the metadata names one file.
    for other in SUFFIXES.values():
        if other != path.suffix:
            path.with_suffix(other).unlink(missing_ok=True)


def _finish_killed_write(pending: Path, meta_path: Path) -> None:
    """Settle what a killed writer left, before this write replaces its pending metadata.

    A pending file that matches the checkpoint is a write killed between steps
    2 and 3: it is the only record of that checkpoint, so it is committed now
    (the next write could be killed after its own step 1 and overwrite it,
    leaving a checkpoint no metadata vouches for). Any other pending file is a
    write killed before step 2, and the committed pair is still whole.
    """
    try:
        meta = _read_meta(pending)
    except FileNotFoundError:
        return
    except (OSError, ValueError):
        pending.unlink(missing_ok=True)
        return
    checkpoint = meta_path.with_suffix(SUFFIXES[_format(meta)])
    try:
        matches = sha256(checkpoint.read_bytes()) == meta.get("sha256")
    except OSError:
        matches = False
    if matches:
        _commit(pending, checkpoint)
    else:
        pending.unlink(missing_ok=True)


def _format(meta: dict[str, Any]) -> str:
    fmt = meta.get("format", "torch")
    return fmt if fmt in SUFFIXES else "torch"
