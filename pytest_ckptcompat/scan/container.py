"""Find the pickles inside a checkpoint file, whatever its container.

Formats, as `torch.load` tells them apart:

- `torch-zip`: what `torch.save` writes since 1.6. A zip whose members share
  one top folder (any name); torch reads `<folder>/data.pkl`, in any letter case.
- `torchscript`: a zip with `constants.pkl` (from `torch.jit.save`).
- `torch-legacy`: the pre-1.6 format, five pickles in a row (magic number,
  protocol, sys info, the object, storage keys) followed by raw storages.
- `pickle`: any other pickle (`pickle.dump`); torch rejects it as a checkpoint.
- `zip`, `npz`, `npy`, `tar`, `compressed` (gzip, bz2, xz): containers people
  scan (torch.load refuses them under weights_only): their pickles are
  collected for what they would run.
- `safetensors`: no pickle at all; its header is read and validated
  (`scan.safetensors`), its tensor bytes never.

Nothing here unpickles anything; tensor data is never read. Large files are
memory-mapped so a 1 GiB checkpoint costs what its pickle costs. Zip archives
are read by `ziparchive`, the one zip reader, which reads what torch reads.

Pickles torch.load never reads are collected too, so that what they would
run is reported: every `.pkl` member, and the pickles inside a member that
is itself an archive or a pickle (`inner.pt`, `weights.zip`, ...; see
`NESTED_SUFFIXES`), to `_MAX_DEPTH` levels. (Pickles appended after a
pickle's STOP are found by `scan`, which walks the pickles.)
"""

from __future__ import annotations

import contextlib
import functools
import io
import mmap
import os
import re
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Final, Literal

from ..errors import PickleFormatError, UnreadableCheckpointError
from . import releases
from .machine import PickleFacts, analyze
from .releases import Release
from .safetensors import Header, looks_like_safetensors, read_header
from .ziparchive import (
    LOCAL_SIG,
    MAX_MEMBER_BYTES,
    TORCH_READABLE,
    Buffer,
    ZipArchive,
    ZipEntry,
    ZipError,
    decompress_file,
    torch_refusal,
)

Format = Literal[
    "torch-zip",
    "torchscript",
    "torch-legacy",
    "pickle",
    "zip",
    "npz",
    "npy",
    "tar",
    "compressed",
    "safetensors",
]

# torch's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
_LEGACY_PICKLES = ("magic number", "protocol version", "sys info", "data", "storage keys")
# A pickle's first byte: PROTO, or an opcode that can start a protocol 0/1 pickle.
_PICKLE_START: Final = frozenset(b"\x80(]}).NIFLSVcdlpgtK")


@dataclass
class PickleBlob:
    """One pickle inside a checkpoint file."""

    member: str  # zip member name, or the role of a legacy pickle
    data: Buffer
    start: int = 0
    main: bool = False  # the pickle torch.load would unpickle
    facts: PickleFacts | None = None  # already walked (legacy files are walked to split them)
    # A member that may or may not be a pickle (a nested `inner.pt` holding a
    # raw pickle, or just data): a parse error means "not a pickle", not "corrupt".
    optional: bool = False

    def appended(self, end: int) -> PickleBlob:
        """The bytes after this pickle's STOP at `end`, to be walked as a pickle of their own.

        torch.load reads one pickle and ignores what follows; `pickle.load`
        called again on the same file reads the next. So whatever follows a STOP
        is walked like another member (optional: bytes that are no pickle are
        data nobody unpickles), and each appended pickle leads to the next.
        """
        base = self.member.split(" (appended", 1)[0]
        return PickleBlob(f"{base} (appended at byte {end})", self.data, start=end, optional=True)


@dataclass
class Checkpoint:
    """A checkpoint file's container format and its pickles."""

    path: str
    format: Format
    pickles: list[PickleBlob] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why torch would refuse the container
    # Problems only some torch releases have: problem -> the first release that has it.
    since: dict[str, Release] = field(default_factory=dict)
    # Parts that could not be read. Fatal unless something read elsewhere in
    # the file can run code: a danger is reported whatever else is wrong.
    errors: list[str] = field(default_factory=list)
    # TorchScript code members that define `__setstate__`: torch.jit.load runs it
    # while it loads the archive (and torch < 2.6's torch.load calls torch.jit.load).
    load_code: list[str] = field(default_factory=list)
    # What `show` and `diff` read besides the pickles: the archive (its members'
    # sizes) and torch's view of it, or a safetensors file's validated header.
    archive: ZipArchive | None = None
    layout: ZipLayout | None = None
    header: Header | None = None


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
    if not stat.S_ISREG(info.st_mode):
        # A FIFO would block the open, a device (/dev/zero) never ends.
        raise UnreadableCheckpointError(shown, f"not a regular file ({_file_kind(info.st_mode)})")
    if info.st_size == 0:
        raise UnreadableCheckpointError(shown, "empty file (0 bytes)")
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below, or owned by the mmap
    except OSError as exc:
        raise UnreadableCheckpointError(shown, exc.strerror or str(exc)) from None
    with fh:
        head = fh.read(512)
        safetensors = looks_like_safetensors(head)
        if not head.startswith(b"PK") and not safetensors:
            _reject_known_non_pickles(shown, head)
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    if safetensors:
        return _safetensors(shown, data)
    return _checkpoint(shown, data)


def checkpoint_from_bytes(data: bytes, shown: str = "<torch.save output>") -> Checkpoint:
    """`open_checkpoint` for bytes held in memory (what `torch.save` wrote to a buffer)."""
    if not data:
        raise UnreadableCheckpointError(shown, "empty (0 bytes)")
    if looks_like_safetensors(data[:512]):
        return _safetensors(shown, data)
    if not data.startswith(b"PK"):
        _reject_known_non_pickles(shown, data[:512])
    return _checkpoint(shown, data)


def _safetensors(shown: str, data: Buffer) -> Checkpoint:
    """A safetensors file: no pickle; its header validated as safetensors validates it.

    The first 8 bytes are a length, and can also be the start of a pickle
    (`torch.load(weights_only=False)` would unpickle any file that is not a
    zip): then the bytes are walked as a pickle too, optionally, so that a
    file made to be both is reported for what it would run.
    """
    maybe_pickle = [PickleBlob("<pickle>", data, optional=True)] if data[0] in _PICKLE_START else []
    try:
        header = read_header(data, shown)
    except UnreadableCheckpointError as exc:
        if not maybe_pickle:
            raise
        return Checkpoint(shown, "safetensors", maybe_pickle, errors=[exc.problem])
    return Checkpoint(shown, "safetensors", maybe_pickle, header=header)


def _checkpoint(shown: str, data: Buffer) -> Checkpoint:
    if data[:2] == b"PK":
        ckpt = _open_zip(shown, data)
        if data[:4] != LOCAL_SIG:
            # torch tells a zip by its first four bytes (`_is_zipfile`).
            ckpt.problems.insert(0, "does not start with a zip local header: torch.load does "
                                    "not read it as a zip archive")  # fmt: skip
        return ckpt
    if data[: len(_LEGACY_MAGIC)] == _LEGACY_MAGIC:
        return _legacy(shown, data)
    if data[257:262] == b"ustar":
        return _tar(shown, data)
    for magic, kind in _COMPRESSED:
        if data[: len(magic)] == magic:
            return _compressed(shown, data, kind)
    if data[:6] == _NPY_MAGIC:
        start = _npy_pickle_start(data)
        if start is None:
            raise UnreadableCheckpointError(shown, "a numpy .npy file: load it with numpy.load")
        return Checkpoint(shown, "npy", [PickleBlob("<object array>", data, start)], [_NPY_NOTE])
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


def _file_kind(mode: int) -> str:
    kinds = (
        (stat.S_ISFIFO, "a named pipe"), (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
    )  # fmt: skip
    return next((kind for test, kind in kinds if test(mode)), "not a file")


def _looks_like_onnx(head: bytes) -> bool:
    """An ONNX ModelProto: field 1 (ir_version, a small varint), then another known field.

    torch.onnx writes ir_version, producer_name ("pytorch"), producer_version,
    graph and opset_import; the bytes carry no magic number, so this reads the
    first two protobuf field tags. A pickle never starts with 0x08.
    """
    return (
        len(head) >= 3
        and head[0] == 0x08
        and 1 <= head[1] <= 0x7F
        and head[2] in (0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72)
    )


def _reject_known_non_pickles(shown: str, head: bytes) -> None:
    if head.startswith(b"version https://git-lfs"):
        raise UnreadableCheckpointError(
            shown, "a Git LFS pointer, not the checkpoint: run `git lfs pull`"
        )
    if _looks_like_onnx(head):
        raise UnreadableCheckpointError(
            shown, "an ONNX model, not a torch checkpoint: load it with onnx / onnxruntime"
        )


def _open_zip(shown: str, data: Buffer) -> Checkpoint:
    try:
        archive = ZipArchive(data)
    except ZipError as exc:
        problem = f"corrupt or truncated zip archive ({exc})"
        raise UnreadableCheckpointError(shown, problem) from None
    if not archive.entries:
        raise UnreadableCheckpointError(shown, "an empty zip archive")
    layout = zip_layout(archive)
    ckpt = Checkpoint(shown, _zip_format(archive, layout), problems=[*archive.refusals])
    ckpt.archive, ckpt.layout = archive, layout
    ckpt.pickles = _zip_pickles(archive, "", 0, layout, ckpt.errors)
    if not ckpt.pickles and not ckpt.errors:
        kind = "an npz archive" if ckpt.format == "npz" else "a zip archive"
        raise UnreadableCheckpointError(shown, f"{kind} without any pickle, not a torch checkpoint")
    if ckpt.format == "torchscript":
        ckpt.load_code = _load_time_code(archive)
    if ckpt.format in ("torch-zip", "torchscript"):
        ckpt.problems += layout.problems
        if ckpt.format == "torch-zip" and layout.main is not None:
            _check_read_records(archive, layout, ckpt)
    elif ckpt.format == "npz":
        ckpt.problems.append(_NPY_NOTE)
    else:
        ckpt.problems.append(
            "a zip archive that is not a torch checkpoint (no <folder>/data.pkl): torch.load "
            "refuses it; its pickles are scanned for what they would run"
        )
    return ckpt


def _byteorder_problem(shown: str, content: bytes | None) -> str | None:
    if content in (b"little", b"big"):
        return None
    held = "unreadable" if content is None else f"holds {content[:20]!r}"
    return (
        f"{shown} {held}, neither little nor big: torch >= 2.1 refuses the archive "
        "(Unknown endianness type)"
    )


def _alignment_problem(shown: str, content: bytes | None) -> str | None:
    try:
        int(content if content is not None else b"")  # what torch calls on it
    except ValueError:
        held = "unreadable" if content is None else f"holds {content[:20]!r}"
        return f"{shown} {held}, not an integer: torch >= 2.7 refuses the archive"
    return None


#: The small records torch.load reads when they are there: from which release, and
#: what it refuses in their content (None: it reads any content).
_READ_WHEN_PRESENT: Final[
    tuple[tuple[bytes, Release, Callable[[str, bytes | None], str | None] | None], ...]
] = (
    (b"byteorder", releases.BYTEORDER_CHECKED, _byteorder_problem),
    (b".data/serialization_id", releases.SERIALIZATION_ID_READ, None),
    (b".format_version", releases.STORAGE_LAYOUT_READ, None),
    (b".storage_alignment", releases.STORAGE_LAYOUT_READ, _alignment_problem),
)


def _check_read_records(archive: ZipArchive, layout: ZipLayout, ckpt: Checkpoint) -> None:
    """The small records torch reads besides the pickle: readable, and what it expects.

    Measured (tests/scan/test_container.py): miniz fails on a bzip2 or LZMA
    member only when torch reads it, so each is judged from the release that
    reads it; torch >= 2.1 refuses a `byteorder` that is neither little nor big,
    torch >= 2.7 a `.storage_alignment` that is no integer (`int(record)`).
    """
    for name, since, content_problem in _READ_WHEN_PRESENT:
        entry = archive.locate(layout.prefix + b"/" + name)
        if entry is None:
            continue
        problem: str | None = None
        if why := torch_refusal(entry):
            problem = (
                f"{entry.name}: {why}; torch >= {since[0]}.{since[1]} reads this record, "
                f"and {TORCH_READABLE}"
            )
        elif content_problem is not None:
            try:
                content: bytes | None = archive.read(entry, limit=1 << 20)
            except ZipError:
                content = None
            problem = content_problem(entry.name, content)
        if problem:
            ckpt.problems.append(problem)
            ckpt.since[problem] = since


def _zip_format(archive: ZipArchive, layout: ZipLayout) -> Format:
    if (every := archive.names()) is not None:
        # One pass over every name at once (100,000 members take milliseconds).
        lower = every.lower
        if b"\nconstants.pkl\n" in lower or every.ending_with((b"/constants.pkl",), lower=True):
            return "torchscript"
        if layout.main is not None:
            return "torch-zip"
    names = [e.raw.lower() for e in archive.entries if not e.is_dir]
    if any(n.rsplit(b"/", 1)[-1] == b"constants.pkl" for n in names):
        return "torchscript"
    if layout.main is not None or any(n.rsplit(b"/", 1)[-1] == b"data.pkl" for n in names):
        return "torch-zip"
    if names and all(n.endswith(b".npy") for n in names):
        return "npz"
    return "zip"


def _load_time_code(archive: ZipArchive) -> list[str]:
    """The TorchScript source members that define `__setstate__`.

    torch.jit.load compiles every `code/**.py` member and calls the
    `__setstate__` of each scripted object it unpickles: that method is the
    archive's own code, run while loading (torch <= 2.5.1 does this even for
    `torch.load(weights_only=True)`: CVE-2025-32434). Any `.py` member is read,
    in any letter case, as miniz finds records case-insensitively.
    """
    found = []
    for entry in archive.entries:
        if entry.is_dir or not entry.raw.lower().endswith(b".py"):
            continue
        try:
            source = archive.read(entry)
        except ZipError:
            continue  # unreadable code cannot be compiled either
        if b"__setstate__" in source:
            found.append(entry.name)
    return found


@dataclass(frozen=True)
class ZipLayout:
    """How torch's `PyTorchFileReader` sees an archive: its folder and its main pickle."""

    prefix: bytes  # the folder every record is looked up in (from the first entry's name)
    main: ZipEntry | None  # `<prefix>/data.pkl`, found as torch finds it
    problems: tuple[str, ...]  # why torch refuses the layout


def zip_layout(archive: ZipArchive) -> ZipLayout:
    """The folder, the main pickle and the layout problems, as torch's reader decides them.

    Measured on torch 2.5.1 and 2.13 (tests/scan/test_ziparchive.py): the
    first entry names the folder and must be inside one; every entry must
    be inside that same folder; a `version` (or `.data/version`) record must
    exist and hold a file format version torch reads (`version_problem`); the
    main pickle is `<folder>/data.pkl`, found case-insensitively.
    """
    first = archive.entries[0].raw if archive.entries else b""
    if b"/" not in first:
        return ZipLayout(
            b"",
            None,
            (f"file in archive is not in a subdirectory: {_text(first)} (torch reads only "
             "archives whose members share one top folder)",),
        )  # fmt: skip
    prefix = first.split(b"/", 1)[0]
    problems = []
    every = archive.names()
    if every is not None and every.all_start_with(prefix + b"/"):
        outside = []
    else:
        outside = [e for e in archive.entries if not e.raw.startswith(prefix + b"/")]
    if outside:
        names = ", ".join(_text(e.raw) for e in outside[:3]) + (", ..." if len(outside) > 3 else "")
        problems.append(
            f"members outside the archive's folder {_text(prefix)}/: {names} "
            "(torch refuses the archive)"
        )
    main = archive.locate(prefix + b"/data.pkl")
    if main is None:
        found = ", ".join(e.name for e in archive.entries if e.name.lower().endswith(".pkl"))
        problems.append(
            f"no {_text(prefix)}/data.pkl in the archive (torch reads only that name, in any "
            f"letter case; found {found or 'no pickle'})"
        )
    # torch reads `.data/version` when there is one, and `version` only otherwise.
    version = archive.locate(prefix + b"/.data/version") or archive.locate(prefix + b"/version")
    if version is None:
        problems.append(f"no {_text(prefix)}/version record (torch refuses the archive)")
    for entry in (main, version):
        if entry is not None and (why := torch_refusal(entry)):
            problems.append(f"{entry.name}: {why}; {TORCH_READABLE}")
    if version is not None and not torch_refusal(version):
        try:
            problem = version_problem(version.name, _deciding_bytes(archive, version))
        except ZipError as exc:
            # torch does not stop at a failed inflate: it parses whatever the buffer
            # holds (measured, 200 loads each: torch 2.13 loaded it 43 times, 2.5.1 never).
            problem = (
                f"{exc}: torch parses whatever its failed inflate left in memory as the file "
                "format version, so it refuses or loads the archive at random"
            )
        if problem:
            problems.append(problem)
    return ZipLayout(prefix, main, tuple(problems))


#: The file format versions torch's zip reader accepts (caffe2/serialize/versions.h:
#: kMinSupportedFileFormatVersion, kMaxSupportedFileFormatVersion). 10 since February
#: 2022, before torch 1.12, so every release of the rules table has the same bounds;
#: measured on 2.4.1, 2.5.1, 2.13.0 and 2.15.0 (tests/scan/test_version_record.py).
FILE_FORMAT_VERSIONS: Final = range(1, 11)
# `std::stoull` skips C's white space (isspace in the C locale)...
_C_SPACE: Final = b" \t\n\v\f\r"
# ...then reads one optional sign and the decimal digits up to the first other byte.
_STOULL: Final = re.compile(rb"([+-]?)([0-9]*)")
_U64: Final = 1 << 64


_VERSION_HEAD: Final = 1 << 16


def _deciding_bytes(archive: ZipArchive, entry: ZipEntry) -> bytes:
    """A version record's bytes, as far as they decide its number.

    torch reads the whole record; its head decides unless it is all white space or
    digits (a record of 1 GiB of zeros then `3` is 3), and only then is it all read.
    """
    if entry.size <= _VERSION_HEAD:
        return archive.read(entry)
    head = archive.head(entry, _VERSION_HEAD)
    rest = head.lstrip(_C_SPACE)
    number = _STOULL.match(rest)
    if rest and number is not None and number.end() < len(rest):
        return head
    return archive.read(entry)


def version_problem(name: str, content: bytes) -> str | None:
    r"""Why torch refuses an archive whose version record `name` holds `content`, or None.

    `PyTorchStreamReader` parses the record with `std::stoull` and keeps the
    result as a signed 64-bit number: white space first, one optional sign,
    the digits up to any other byte (`3\n` and `3abc` are 3; `abc`, an empty
    record and a NUL first are no number); a `-` negates modulo 2**64 and more
    than 64 bits is out of range. Only 1 to 10 is read (`FILE_FORMAT_VERSIONS`).
    """
    shown = repr(content[:24]) + ("..." if len(content) > 24 else "")
    match = _STOULL.match(content.lstrip(_C_SPACE))
    sign, digits = (match.group(1), match.group(2)) if match else (b"", b"")
    if not digits:
        return (
            f"{name} holds {shown}, not a number: torch refuses the archive "
            "(Couldn't parse the version)"
        )
    significant = digits.lstrip(b"0") or b"0"
    if len(significant) > 20 or int(significant) >= _U64:  # never int() a million digits
        return f"{name} holds {shown}, a number past 64 bits: torch refuses the archive (stoull)"
    value = (-int(significant) if sign == b"-" else int(significant)) % _U64
    if value >= _U64 >> 1:
        value -= _U64  # torch keeps it signed: -1 is 2**64-1, refused as too old
    if value in FILE_FORMAT_VERSIONS:
        return None
    lowest, highest = FILE_FORMAT_VERSIONS[0], FILE_FORMAT_VERSIONS[-1]
    side = "newer" if value > highest else "older"
    return (
        f"{name} holds {shown}: file format version {value}, {side} than torch reads "
        f"({lowest} to {highest}): torch refuses the archive"
    )


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", "replace")


# Members that may hold a checkpoint of their own (a zip, or a raw pickle):
# their pickles are collected too, named `outer!/inner`. torch.save never
# writes such names (its members are `data.pkl`, `data/<n>`, `version`, ...).
NESTED_SUFFIXES: Final = (
    ".zip", ".pt", ".pth", ".ckpt", ".bin", ".pickle", ".joblib", ".mar", ".tar",
)  # fmt: skip
_NESTED_BYTES: Final = tuple(suffix.encode() for suffix in NESTED_SUFFIXES)
_MAX_DEPTH: Final = 3  # archives inside archives inside archives: deeper ones are not opened


def _is_pickle_name(entry: ZipEntry) -> bool:
    # zipfile's old rule, `name.lower().endswith(".pkl")`, also matches the
    # Kelvin sign (U+212A lowers to "k"): a reader using it finds such a member.
    return entry.name.lower().endswith(".pkl")


# Records torch.save writes that are never pickles: not sniffed (a checkpoint
# of 100,000 tensors has 100,000 `data/<n>` storages of raw bytes).
_TORCH_RECORD = re.compile(
    rb"[^/]+/(?:data/\d+|version|byteorder|\.format_version|\.storage_alignment|"
    rb"\.data/version|\.data/serialization_id)"
)


@functools.lru_cache(maxsize=8)
def _record_line(prefix: bytes) -> re.Pattern[bytes]:
    """`_TORCH_RECORD` for names searched one a line (never across a newline).

    The archive's own folder `prefix` is tried first as a literal, and nothing
    backtracks: twice as fast on 100,000 names, and the same names match.
    """
    literal = re.escape(prefix) + b"|" if prefix else b""
    return re.compile(
        b"(?:" + literal + rb"[^/\n]++)/(?:data/\d++|version|byteorder|"
        rb"\.format_version|\.storage_alignment|\.data/version|\.data/serialization_id)"
    )


def _zip_pickles(
    archive: ZipArchive, outer: str, depth: int, layout: ZipLayout | None, errors: list[str]
) -> list[PickleBlob]:
    """Every pickle in the archive.

    The main one, `.pkl` members, object arrays of `.npy` members, nested
    archives, and any other member that starts like a pickle.
    """
    main = layout.main if layout else None
    pickles = []
    names = archive.names()
    entries: Iterable[ZipEntry] = archive.entries
    if names is not None:
        # Only the members that are not torch's own records can be pickles: the
        # records are skipped in one pass over every name (as the test below skips them).
        prefix = layout.prefix if layout else b""
        numbered = prefix + b"/data/" if prefix else b""  # storage records, passed over whole
        entries = [archive.entries[i] for i in names.not_matching(_record_line(prefix), numbered)]
    for entry in entries:
        if entry.is_dir:
            continue
        low = entry.raw.lower()  # bytes: ASCII only, and fast; `_is_pickle_name` does the rest
        name = f"{outer}{entry.name}"
        try:
            if (
                entry is main
                or low.endswith(b".pkl")
                or (b"\xe2" in low and _is_pickle_name(entry))
            ):
                data = archive.read(entry)
                pickles.append(PickleBlob(name, data, main=entry is main, optional=depth > 0))
            elif low.endswith(b".npy"):
                pickles += _npy_member(archive, entry, name)
            elif low.endswith(_NESTED_BYTES) and depth < _MAX_DEPTH:
                pickles += _nested(archive, entry, name, depth + 1)
            elif not _TORCH_RECORD.fullmatch(entry.raw):
                head = archive.head(entry, len(_NPY_MAGIC))
                if head and head[0] in _PICKLE_START:
                    # Under another name (`data.txt`), a pickle is still a pickle
                    # to whoever calls pickle.load on it.
                    pickles.append(PickleBlob(name, archive.read(entry), optional=True))
                elif head == _NPY_MAGIC:  # and a .npy is a .npy (numpy.load sniffs it)
                    pickles += _npy_member(archive, entry, name)
        except ZipError as exc:
            if not depth:  # a broken nested archive is its own business, not this file's
                errors.append(f"cannot read zip member {exc}")
    return pickles


def _nested(archive: ZipArchive, entry: ZipEntry, name: str, depth: int) -> list[PickleBlob]:
    """The pickles in one member that may be an archive or a pickle itself."""
    head = archive.head(entry, len(_NPY_MAGIC))
    try:
        if head == _NPY_MAGIC:  # `weights.bin` may well be a .npy
            return _npy_member(archive, entry, name)
        if head[:4] == LOCAL_SIG:
            window = archive.window(entry)
            # A stored archive is read in place; a deflated one is inflated (bounded).
            inner = ZipArchive(*window) if window else ZipArchive(archive.read(entry))
            return _zip_pickles(inner, f"{name}!/", depth, None, [])
        if head[:1] and head[0] in _PICKLE_START:
            return [PickleBlob(name, archive.read(entry), optional=True)]
    except ZipError:
        pass  # not an archive after all, or a broken one: data, as torch sees it
    return []


# --- numpy .npy / .npz: object arrays are pickles -------------------------------------

_NPY_MAGIC: Final = b"\x93NUMPY"
_NPY_NOTE: Final = (
    "numpy data, not a torch checkpoint: torch.load refuses it, and "
    "numpy.load(allow_pickle=True) unpickles its object arrays"
)
_MAX_NPY_HEADER: Final = 1 << 20


def _npy_pickle_start(data: Buffer, start: int = 0) -> int | None:
    """Where the pickle of an object-dtype .npy starts; None for any other array.

    The header is a Python literal (`{'descr': '|O', ...}`), read with
    `ast.literal_eval` as numpy itself reads it: literals only, nothing runs.
    """
    major = data[start + 6] if len(data) > start + 6 else 0
    width = 2 if major == 1 else 4
    at = start + 8
    size = int.from_bytes(data[at : at + width], "little")
    if size > _MAX_NPY_HEADER or at + width + size > len(data):
        return None
    text = bytes(data[at + width : at + width + size]).decode("latin-1")
    try:
        import ast  # here: only object arrays need it

        header = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(header, dict) or not _has_object(header.get("descr")):
        return None
    return at + width + size


def _has_object(descr: object) -> bool:
    if isinstance(descr, str):
        return descr.lstrip("<>|=").startswith("O")
    if isinstance(descr, (list, tuple)):
        return any(_has_object(part) for part in descr)
    return False


def _npy_member(archive: ZipArchive, entry: ZipEntry, name: str) -> list[PickleBlob]:
    if archive.head(entry, 6) != _NPY_MAGIC:
        return []
    data = archive.read(entry)
    start = _npy_pickle_start(data)
    return [] if start is None else [PickleBlob(f"{name} (object array)", data, start)]


# --- tar archives: torch < 0.4's format, or any tarball of checkpoints -----------------------

_LEGACY_TAR: Final = (
    "a legacy .tar checkpoint (torch < 0.4): torch.load(weights_only=True) refuses this format; "
    "re-save it with a current torch"
)


def _tar(shown: str, data: Buffer) -> Checkpoint:
    """The pickles in a tar archive (its members are read, never extracted).

    torch < 0.4 wrote `sys_info`, `pickle`, `tensors` and `storages` members,
    all pickles; torch.load(weights_only=True) refuses the format, and
    weights_only=False unpickles them. So the archive is unreadable to the scan
    (one line, exit 2) unless one of its pickles, or of the archives in it,
    can run code.
    """
    import tarfile  # here: only a legacy tar needs it (the scan path starts without it)

    ckpt = Checkpoint(shown, "tar", errors=[_LEGACY_TAR])
    try:
        if isinstance(data, mmap.mmap):
            data.seek(0)
        source = data if isinstance(data, mmap.mmap) else io.BytesIO(data)
        with tarfile.open(fileobj=source, mode="r:") as tar:
            for member in tar:
                if not member.isfile() or member.size > MAX_MEMBER_BYTES:
                    continue
                fh = tar.extractfile(member)
                body = fh.read() if fh is not None else b""
                name = member.name
                if body[:4] == LOCAL_SIG:
                    try:
                        inner = ZipArchive(body)
                    except ZipError:
                        continue
                    ckpt.pickles += _zip_pickles(inner, f"{name}!/", 1, None, [])
                elif body[:6] == _NPY_MAGIC:
                    start = _npy_pickle_start(body)
                    if start is not None:
                        ckpt.pickles.append(PickleBlob(f"{name} (object array)", body, start))
                elif body[:1] and body[0] in _PICKLE_START:
                    ckpt.pickles.append(PickleBlob(name, body, optional=True))
    except (tarfile.TarError, EOFError, OSError):
        pass  # what was read so far is judged; the rest is not a tar torch could read either
    return ckpt


# --- compressed files: `model.pkl.gz`, joblib's compressed pickles -------------------------

_COMPRESSED: Final = ((b"\x1f\x8b", "gzip"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))
#: At most this much is decompressed: a pickle runs from its first byte, so
#: what a longer file hides past it is read only as far as this.
MAX_DECOMPRESSED: Final = 256 << 20


def _decompressed(data: Buffer, kind: str) -> bytes:
    """Up to `MAX_DECOMPRESSED` bytes of the (first) compressed stream; what precedes an error."""
    return decompress_file(data, kind, MAX_DECOMPRESSED)


def _compressed(shown: str, data: Buffer, kind: str) -> Checkpoint:
    """The pickles of a gzip / bz2 / xz file (torch.load reads none; pickle.load of it does).

    Unreadable to the scan (one line, exit 2), unless the pickle or archive
    inside can run code.
    """
    what = f"a {kind}-compressed file: torch.load does not read it; decompress it first"
    ckpt = Checkpoint(shown, "compressed", errors=[what])
    inner = _decompressed(data, kind)
    name = f"<{kind}-decompressed>"
    if inner[:4] == LOCAL_SIG:
        with contextlib.suppress(ZipError):
            ckpt.pickles = _zip_pickles(ZipArchive(inner), f"{name}!/", 1, None, [])
    elif inner[:6] == _NPY_MAGIC:
        start = _npy_pickle_start(inner)
        if start is not None:
            ckpt.pickles.append(PickleBlob(f"{name} (object array)", inner, start))
    elif inner[:1] and inner[0] in _PICKLE_START:
        ckpt.pickles.append(PickleBlob(name, inner, optional=True))
    return ckpt


# --- torch's legacy format -----------------------------------------------------------------


def _legacy(shown: str, data: Buffer) -> Checkpoint:
    """The five pickles of a pre-1.6 file, as far as they can be read.

    Each pickle's end is only known by walking it; the storages after the
    fifth pickle are never touched. A pickle that cannot be read ends the
    list: what came before is still judged (and reported if it runs code).
    """
    ckpt = Checkpoint(shown, "torch-legacy")
    pos = 0
    for role in _LEGACY_PICKLES:
        try:
            facts = analyze(data, pos)
        except PickleFormatError as exc:
            partial = exc.partial
            if isinstance(partial, PickleFacts) and partial.globals:
                # What it named before the bad byte may run code: `scan`
                # walks it again and judges that.
                ckpt.pickles.append(PickleBlob(role, data, start=pos, main=role == "data"))
            else:
                ckpt.errors.append(f"legacy torch file, {role} pickle: {exc}")
            break
        ckpt.pickles.append(PickleBlob(role, data, start=pos, main=role == "data", facts=facts))
        pos = facts.end
    if not ckpt.pickles:
        raise UnreadableCheckpointError(shown, ckpt.errors[0])
    return ckpt
