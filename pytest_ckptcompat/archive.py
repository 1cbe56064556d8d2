"""Find the pickles inside a checkpoint file, whatever its container.

Formats, as `torch.load` tells them apart:

- `torch-zip`: what `torch.save` writes since 1.6. A zip whose members share
  one top folder (any name); torch reads exactly `<folder>/data.pkl`.
- `torchscript`: a zip with `constants.pkl` (from `torch.jit.save`).
- `torch-legacy`: the pre-1.6 format, five pickles in a row (magic number,
  protocol, sys info, the object, storage keys) followed by raw storages.
- `pickle`: any other pickle (`pickle.dump`); torch rejects it as a checkpoint.

Nothing here unpickles anything; tensor data is never read. Large files are
memory-mapped so a 1 GiB checkpoint costs what its pickle costs.
"""

from __future__ import annotations

import mmap
import os
import stat
import zipfile
from dataclasses import dataclass, field
from typing import BinaryIO, Literal

from .errors import PickleFormatError, UnreadableCheckpointError
from .pickle_vm import PickleFacts, analyze

Format = Literal["torch-zip", "torchscript", "torch-legacy", "pickle"]
Buffer = bytes | mmap.mmap

# torch's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
_LEGACY_PICKLES = ("magic number", "protocol version", "sys info", "data", "storage keys")
# A pickle's first byte: PROTO, or an opcode that can start a protocol 0/1 pickle.
_PICKLE_START = frozenset(b"\x80(]}).NIFLSVcdlpgtK")


@dataclass
class PickleBlob:
    """One pickle inside a checkpoint file."""

    member: str  # zip member name, or the role of a legacy pickle
    data: Buffer
    start: int = 0
    main: bool = False  # the pickle torch.load would unpickle
    facts: PickleFacts | None = None  # already walked (legacy files are walked to split them)


@dataclass
class Checkpoint:
    """A checkpoint file's container format and its pickles."""

    path: str
    format: Format
    pickles: list[PickleBlob] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why torch would refuse the container


def open_checkpoint(path: str | os.PathLike[str]) -> Checkpoint:
    """Identify `path`'s format and collect its pickles.

    Raises `UnreadableCheckpointError` (one line naming the file) when it is
    not a file, cannot be read, or is no checkpoint at all.
    """
    shown = os.fspath(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise UnreadableCheckpointError(shown, "no such file") from None
    except OSError as exc:
        raise UnreadableCheckpointError(shown, exc.strerror or str(exc)) from None
    if stat.S_ISDIR(info.st_mode):
        raise UnreadableCheckpointError(shown, "is a directory, not a checkpoint file")
    if info.st_size == 0:
        raise UnreadableCheckpointError(shown, "empty file (0 bytes)")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, or owned by the mmap
    except OSError as exc:
        raise UnreadableCheckpointError(shown, exc.strerror or str(exc)) from None
    with fh:
        head = fh.read(512)
        if head.startswith(b"PK"):
            return _open_zip(shown, fh)
        _reject_known_non_pickles(shown, head)
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if data[: len(_LEGACY_MAGIC)] == _LEGACY_MAGIC:
        return Checkpoint(shown, "torch-legacy", _legacy_pickles(shown, data))
    if data[0] not in _PICKLE_START:
        raise UnreadableCheckpointError(
            shown, f"not a checkpoint: starts with {bytes(data[:8])!r}, neither zip nor pickle"
        )
    return Checkpoint(
        shown,
        "pickle",
        [PickleBlob("<pickle>", data, main=True)],
        ["a plain pickle, not a torch.save file: torch.load fails with 'Invalid magic number'"],
    )


def _reject_known_non_pickles(shown: str, head: bytes) -> None:
    if head.startswith(b"version https://git-lfs"):
        raise UnreadableCheckpointError(
            shown, "a Git LFS pointer, not the checkpoint: run `git lfs pull`"
        )
    if len(head) > 262 and head[257:262] == b"ustar":
        raise UnreadableCheckpointError(
            shown,
            "a legacy .tar checkpoint (torch < 0.4): torch.load(weights_only=True) "
            "refuses this format; re-save it with a current torch",
        )
    if head[8:10] == b'{"' and head[4:8] == b"\0\0\0\0":  # u64 header size, then JSON
        raise UnreadableCheckpointError(shown, "a safetensors file: load it with safetensors")
    if head.startswith(b"\x93NUMPY"):
        raise UnreadableCheckpointError(shown, "a numpy .npy file: load it with numpy.load")
    if head[:1] == b"\x08" and b"onnx" in head[:64].lower():
        raise UnreadableCheckpointError(shown, "an ONNX model, not a torch checkpoint")


def _open_zip(shown: str, fh: BinaryIO) -> Checkpoint:
    fh.seek(0)
    try:
        archive = zipfile.ZipFile(fh)
        names = archive.namelist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnreadableCheckpointError(
            shown, f"corrupt or truncated zip archive ({exc})"
        ) from None
    with archive:
        if not names:
            raise UnreadableCheckpointError(shown, "an empty zip archive")
        prefix = names[0].split("/", 1)[0] if "/" in names[0] else ""
        main_name = f"{prefix}/data.pkl" if prefix else "data.pkl"
        pickles = []
        for info in archive.infolist():
            if not info.filename.lower().endswith(".pkl") or info.is_dir():
                continue
            try:
                data = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
                raise UnreadableCheckpointError(
                    shown, f"cannot read zip member {info.filename} ({exc})"
                ) from None
            pickles.append(PickleBlob(info.filename, data, main=info.filename == main_name))
    if not pickles:
        kind = "an npz archive" if any(n.endswith(".npy") for n in names) else "a zip archive"
        raise UnreadableCheckpointError(shown, f"{kind} without any pickle, not a torch checkpoint")
    torchscript = any(p.member.rsplit("/", 1)[-1] == "constants.pkl" for p in pickles)
    ckpt = Checkpoint(shown, "torchscript" if torchscript else "torch-zip", pickles)
    if not any(p.main for p in pickles):
        others = ", ".join(p.member for p in pickles)
        ckpt.problems.append(
            f"no {main_name} in the archive (torch reads only that exact, case-sensitive name; "
            f"found {others})"
        )
    return ckpt


def _legacy_pickles(shown: str, data: mmap.mmap) -> list[PickleBlob]:
    # Each pickle's end is only known by walking it; the storages after the
    # fifth pickle are never touched.
    blobs, pos = [], 0
    for role in _LEGACY_PICKLES:
        try:
            facts = analyze(data, pos)
        except PickleFormatError as exc:
            raise UnreadableCheckpointError(
                shown, f"legacy torch file, {role} pickle: {exc}"
            ) from None
        blobs.append(PickleBlob(role, data, start=pos, main=role == "data", facts=facts))
        pos = facts.end
    return blobs
