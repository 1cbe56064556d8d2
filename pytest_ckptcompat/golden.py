"""The golden store: one file per (artifact, writer environment), with its metadata.

Layout, under the golden directory (`--ckpt-compat-dir`, ini `ckpt_compat_dir`):

    <artifact>/<writer tag>.pt      # the bytes torch.save wrote, as written
    <artifact>/<writer tag>.json    # who wrote it, its sha256, the globals it holds

A writer only ever writes its own two files, always to a temporary file
first and then `os.replace`, so a killed run leaves the previous golden (or
none), never half of one. The metadata is written after the checkpoint: a
golden without metadata is ignored until both exist.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._version import __version__

SCHEMA = "ckptcompat.golden/1"
SCHEMA_VERSION = 1
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


def check_artifact_name(name: str) -> str:
    """An artifact name must be a safe folder name (it is one)."""
    if not isinstance(name, str) or not _NAME.match(name) or ".." in name:
        raise ValueError(
            f"artifact name {name!r}: use letters, digits, '.', '_' and '-' (at most 128), "
            "e.g. 'train_state'"
        )
    return name


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def sha256(data: bytes) -> str:
    """Hex sha256 of `data`."""
    return hashlib.sha256(data).hexdigest()


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

    def read_verified(self) -> bytes:
        """The checkpoint bytes; `GoldenError` when they are not what was written."""
        schema = self.meta.get("schema_version", 0)
        if not isinstance(schema, int) or schema > SCHEMA_VERSION:
            raise GoldenError(
                f"{self.meta_path}: written by a newer pytest-ckptcompat "
                f"({self.meta.get('plugin', '?')}, golden schema {schema}); "
                f"this is {__version__} (schema {SCHEMA_VERSION}): upgrade to read it"
            )
        try:
            data = self.path.read_bytes()
        except OSError as exc:
            raise GoldenError(f"{self.path}: cannot read ({exc.strerror or exc})") from None
        if sha256(data) != self.meta.get("sha256"):
            raise GoldenError(
                f"{self.path}: modified since it was written (sha256 differs from "
                f"{self.meta_path.name}); re-write it with --ckpt-compat-update in "
                f"{self.writer}, or restore it"
            )
        return data


class GoldenError(Exception):
    """A golden that cannot be trusted or read (outcome `error`)."""


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
        for meta_path in sorted(folder.glob("*.json")):
            writer = meta_path.stem
            try:
                meta = json.loads(meta_path.read_text(encoding="utf-8"))
                if not isinstance(meta, dict):
                    raise ValueError("not a JSON object")
            except (OSError, ValueError) as exc:
                meta = {"error": f"{meta_path}: unreadable metadata ({exc})"}
            out.append(Golden(artifact, writer, meta_path.with_suffix(".pt"), meta))
        return out

    def write(self, artifact: str, data: bytes, meta: dict[str, Any]) -> Golden:
        """Write this environment's golden of `artifact` (checkpoint first, then metadata)."""
        writer = meta["writer"]["tag"]
        path = self.root / artifact / f"{writer}.pt"
        full = {
            "schema": SCHEMA,
            "schema_version": SCHEMA_VERSION,
            "artifact": artifact,
            "plugin": __version__,
            "sha256": sha256(data),
            "bytes": len(data),
            **meta,
        }
        atomic_write(path, data)
        text = json.dumps(full, indent=2, sort_keys=True) + "\n"
        atomic_write(path.with_suffix(".json"), text.encode())
        return Golden(artifact, writer, path, full)

    def delete(self, golden: Golden) -> None:
        """Remove one golden (both files); only `--ckpt-compat-prune` calls this."""
        golden.meta_path.unlink(missing_ok=True)
        golden.path.unlink(missing_ok=True)
        folder = golden.path.parent
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
