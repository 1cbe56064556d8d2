"""Find the pickles inside a checkpoint file, whatever its container.

Formats, as `torch.load` tells them apart:

- `torch-zip`: what `torch.save` writes since 1.6. A zip whose members share
  one top folder (any name); torch reads `<folder>/data.pkl`, in any letter case.
- `torchscript`: a zip with `constants.pkl` (from `torch.jit.save`).
- `torch-legacy`: the pre-1.6 format, five pickles in a row (magic number,
  protocol, sys info, the object, storage keys) followed by raw storages.
- `pickle`: any other pickle (`pickle.dump`); torch rejects it as a checkpoint.

Nothing here unpickles anything; tensor data is never read. Large files are
memory-mapped so a 1 GiB checkpoint costs what its pickle costs, and a zip's
central directory is searched rather than parsed entry by entry (see
`_read_zip_fast`), so 100,000 tensor members cost milliseconds.

Pickles torch.load never reads are collected too, so that what they would
run is reported: every `.pkl` member, and the pickles inside a member that
is itself an archive or a pickle (`inner.pt`, `weights.zip`, ...; see
`NESTED_SUFFIXES`), to `_MAX_DEPTH` levels. (Pickles appended after a
pickle's STOP are found by `scan`, which walks the pickles.)
"""

from __future__ import annotations

import mmap
import os
import re
import stat
import struct
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import BinaryIO, Final, Literal, NamedTuple

from ..errors import PickleFormatError, UnreadableCheckpointError
from .machine import PickleFacts, analyze

Format = Literal["torch-zip", "torchscript", "torch-legacy", "pickle"]
Buffer = bytes | mmap.mmap

# torch's legacy format starts with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19."
_LEGACY_PICKLES = ("magic number", "protocol version", "sys info", "data", "storage keys")
# A pickle's first byte: PROTO, or an opcode that can start a protocol 0/1 pickle.
_PICKLE_START: Final = frozenset(b"\x80(]}).NIFLSVcdlpgtK")
# zipfile refuses entries that need a newer zip reader than 6.3 (`zipfile.MAX_EXTRACT_VERSION`).
_MAX_EXTRACT_VERSION = 63


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
    if _looks_like_onnx(head):
        raise UnreadableCheckpointError(
            shown, "an ONNX model, not a torch checkpoint: load it with onnx / onnxruntime"
        )


def _open_zip(shown: str, fh: BinaryIO) -> Checkpoint:
    try:
        data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        data = None  # not mappable (some special files): zipfile reads it with seeks
    found = None
    if data is not None:
        with data:
            found = _read_zip_fast(data)
    if found is None:
        found = _read_zip_slow(shown, fh)
    first, pickles = found
    prefix = first.split("/", 1)[0] if "/" in first else ""
    main_name = f"{prefix}/data.pkl" if prefix else "data.pkl"
    # torch's reader (miniz) looks records up case-insensitively, first match
    # wins: `archive/DATA.PKL` loads as `archive/data.pkl` (checked on 1.13-2.15).
    main = next((b for b in pickles if b.member.lower() == main_name.lower()), None)
    if main is not None:
        main.main = True
    torchscript = any(p.member.rsplit("/", 1)[-1] == "constants.pkl" for p in pickles)
    ckpt = Checkpoint(shown, "torchscript" if torchscript else "torch-zip", pickles)
    if not any(p.main for p in pickles):
        others = ", ".join(p.member for p in pickles)
        ckpt.problems.append(
            f"no {main_name} in the archive (torch reads only that name, in any letter case; "
            f"found {others})"
        )
    return ckpt


# Members that may hold a checkpoint of their own (a zip, or a raw pickle):
# their pickles are collected too, named `outer!/inner`. torch.save never
# writes such names (its members are `data.pkl`, `data/<n>`, `version`, ...),
# so for its files this costs one regex search of the central directory.
NESTED_SUFFIXES: Final = (
    ".zip", ".pt", ".pth", ".ckpt", ".bin", ".pickle", ".joblib", ".mar", ".tar",
)  # fmt: skip
_MAX_DEPTH: Final = 3  # archives inside archives inside archives: deeper ones are not opened
# A pickle member is read into memory whole; its declared size bounds that
# (both readers inflate at most the declared size), so a zip bomb is refused
# on its header. The largest data.pkl seen in practice is a few hundred MB.
MAX_PICKLE_BYTES: Final = 2 << 30
# zipfile's errors for one member. RuntimeError: encrypted; NotImplementedError:
# a compression zipfile lacks; OverflowError: an offset past 2**63 (seek).
_MEMBER_ERRORS = (
    zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError, NotImplementedError,
    zlib.error, OverflowError, struct.error,
)  # fmt: skip


def _read_zip_slow(shown: str, fh: BinaryIO) -> tuple[str, list[PickleBlob]]:
    """The first member's name and the `.pkl` members, by `zipfile` (every entry parsed).

    The reference behaviour: `_read_zip_fast` answers only where it agrees with
    this, and everything unusual (and every error message) comes from here.
    """
    fh.seek(0)
    try:
        archive = zipfile.ZipFile(fh)
        names = archive.namelist()
    except (
        zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError, OverflowError,
        struct.error,
    ) as exc:  # fmt: skip
        raise UnreadableCheckpointError(
            shown, f"corrupt or truncated zip archive ({exc})"
        ) from None
    with archive:
        if not names:
            raise UnreadableCheckpointError(shown, "an empty zip archive")
        pickles = _zip_pickles(shown, archive, "", 0)
    if not pickles:
        kind = "an npz archive" if any(n.endswith(".npy") for n in names) else "a zip archive"
        raise UnreadableCheckpointError(shown, f"{kind} without any pickle, not a torch checkpoint")
    return names[0], pickles


def _zip_pickles(shown: str, archive: zipfile.ZipFile, outer: str, depth: int) -> list[PickleBlob]:
    """The `.pkl` members of `archive` and the pickles of its nested members."""
    pickles = []
    for info in archive.infolist():
        if info.is_dir():
            continue
        lower = info.filename.lower()
        name = f"{outer}{info.filename}"
        if lower.endswith(".pkl"):
            if info.file_size > MAX_PICKLE_BYTES:
                if depth:
                    continue
                raise UnreadableCheckpointError(
                    shown,
                    f"zip member {info.filename} declares {info.file_size:,} bytes "
                    f"(over {MAX_PICKLE_BYTES >> 30} GiB): refusing to inflate it",
                )
            try:
                data = archive.read(info)
            except _MEMBER_ERRORS as exc:
                if depth:  # a broken nested archive is its own business, not this file's
                    continue
                raise UnreadableCheckpointError(
                    shown, f"cannot read zip member {info.filename} ({exc})"
                ) from None
            pickles.append(PickleBlob(name, data, optional=depth > 0))
        elif lower.endswith(NESTED_SUFFIXES) and depth < _MAX_DEPTH:
            pickles += _nested(shown, archive, info, name, depth + 1)
    return pickles


def _nested(
    shown: str, archive: zipfile.ZipFile, info: zipfile.ZipInfo, name: str, depth: int
) -> list[PickleBlob]:
    """The pickles in one member that may be an archive or a pickle itself."""
    try:
        with archive.open(info) as member:
            head = member.read(4)
            if head == _LOCAL_SIG:
                # ZipExtFile seeks, so a big nested archive is never read whole.
                member.seek(0)
                with zipfile.ZipFile(member) as inner:
                    return _zip_pickles(shown, inner, f"{name}!/", depth)
            if head[:1] and head[0] in _PICKLE_START:
                return [PickleBlob(name, head + member.read(), optional=True)]
    except (*_MEMBER_ERRORS, UnreadableCheckpointError):
        pass  # not an archive after all, or a broken one: data, as torch sees it
    return []


# --- The fast zip reader -----------------------------------------------------
#
# `zipfile.ZipFile` builds a ZipInfo (struct unpack, name decode, date parse)
# for every central-directory entry: 0.3 s for the 50,000 members of a
# checkpoint of many small tensors, longer than scanning its pickle. We need
# only the first entry (torch takes the archive's folder from it) and the
# `.pkl` entries, so `_read_zip_fast` reads the central directory as one
# bytes object, finds the `.pkl` names in it with `re` (C speed) and parses
# just those entries. It returns None whenever the archive is anything but
# plain (spanned, prepended data, encrypted, another compression, entries
# that do not add up), and the caller then uses zipfile, so
# results and error messages stay zipfile's.

_EOCD = struct.Struct("<4s4H2LH")  # signature, disks, entry counts, cd size, cd offset, comment
_EOCD64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the zip64 record, disks
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # signature, size, versions, disks, counts, cd size/offset
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # the 46-byte central-directory entry header
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # the 30-byte local file header
_CENTRAL_SIG, _LOCAL_SIG = b"PK\x01\x02", b"PK\x03\x04"
_EOCD_SIG, _EOCD64_SIG, _EOCD64_LOCATOR_SIG = b"PK\x05\x06", b"PK\x06\x06", b"PK\x06\x07"
_UTF8_NAME = 0x800
# Encrypted (bit 0), compressed patched data (bit 5), strong encryption (bit 6).
_UNSUPPORTED_FLAGS = 0x61
_STORED, _DEFLATED = 0, 8
# Candidates for names `str.lower()` ends in ".pkl": any ASCII case, and the
# Kelvin sign K (U+212A, UTF-8 e2 84 aa), the one non-ASCII character whose
# lower() is one of ".pkl" (checked over all of Unicode and cp437).
_PKL_HIT = re.compile(rb"\.[pP](?:[kK]|\xe2\x84\xaa)[lL]")
# Candidates for `NESTED_SUFFIXES` at the end of a name: not inside a folder
# name (`x.bin/data.pkl`, torch's prefix for a file saved as `x.bin.pt`), so
# that such a prefix does not send every entry to be parsed.
_NESTED_HIT = re.compile(rb"\.(?i:zip|pt|pth|ckpt|bin|pickle|joblib|mar|tar)(?![\w.-]*/)")


def _read_zip_fast(data: mmap.mmap) -> tuple[str, list[PickleBlob]] | None:
    """The first member's name and the `.pkl` members, or None to let zipfile decide."""
    size = len(data)
    # End of central directory: 22 bytes, then a comment of up to 64 KiB.
    eocd = data.rfind(_EOCD_SIG, max(0, size - _EOCD.size - 0xFFFF))
    if eocd < 0 or eocd + _EOCD.size > size:
        return None
    _, disk, cd_disk, _, entries, cd_size, cd_offset, comment = _EOCD.unpack_from(data, eocd)
    if eocd + _EOCD.size + comment != size or disk or cd_disk:
        return None
    cd_end = eocd
    # zipfile reads a zip64 record whenever its locator sits right before the
    # EOCD (torch always writes one), not only when the fields above are full.
    locator = eocd - _EOCD64_LOCATOR.size
    if locator >= _EOCD64.size and data[locator : locator + 4] == _EOCD64_LOCATOR_SIG:
        _, disk, record, disks = _EOCD64_LOCATOR.unpack_from(data, locator)
        cd_end = locator - _EOCD64.size
        if disk or disks > 1 or record != cd_end:
            return None
        fields = _EOCD64.unpack_from(data, cd_end)
        if fields[0] != _EOCD64_SIG or fields[1] != _EOCD64.size - 12 or fields[4] or fields[5]:
            return None  # no zip64 record there, an extensible data sector, or spanned
        entries, cd_size, cd_offset = fields[7], fields[8], fields[9]
    elif 0xFFFF in (entries, disk, cd_disk) or 0xFFFFFFFF in (cd_size, cd_offset):
        return None
    # Data before the archive (zipfile's "concat") shifts every offset: leave it to zipfile.
    if cd_offset + cd_size != cd_end or not entries:
        return None
    cd = data[cd_offset:cd_end]
    # Every entry starts with the signature; if no name, extra field or
    # comment contains it too, the last signature before any position is the
    # start of the entry holding it, which is what lets `rfind` replace a walk.
    if cd.count(_CENTRAL_SIG) != entries:
        return None
    first = _central_entry(cd, 0)
    if first is None:
        return None
    pickles: list[PickleBlob] = []
    # Hits before `parsed_end` lie in an entry already read: skipping them
    # without a `rfind` keeps this linear when a long name, extra field or
    # comment holds thousands of ".pkl" (an entry can be 192 KiB long).
    parsed_end = 0
    for hit in _PKL_HIT.finditer(cd):
        if hit.start() < parsed_end:
            continue
        at = cd.rfind(_CENTRAL_SIG, 0, hit.start())
        entry = _central_entry(cd, at)
        if entry is None:
            return None
        name, name_end, parsed_end, info = entry
        if hit.end() > name_end:
            continue  # in the extra field or the comment, not the name
        # zipfile's rule exactly (its names stop at a NUL byte).
        if not name.lower().endswith(".pkl"):
            continue
        blob = _member_data(data, info)
        if blob is None:
            return None
        pickles.append(PickleBlob(name, blob))
    if not pickles:
        return None  # zipfile names what the archive is instead
    parsed_end = 0
    for hit in _NESTED_HIT.finditer(cd):
        if hit.start() < parsed_end:
            continue
        entry = _central_entry(cd, cd.rfind(_CENTRAL_SIG, 0, hit.start()))
        if entry is None:
            return None
        parsed_end = entry[2]
        if entry[0].lower().endswith(NESTED_SUFFIXES):
            return None  # a member that may hold pickles of its own: zipfile opens it
    return first[0], pickles


class _Entry(NamedTuple):
    """What `_member_data` needs from a central-directory entry."""

    flags: int
    method: int
    compressed: int
    size: int
    offset: int
    raw_name: str  # decoded like zipfile's `orig_filename`: before cutting at a NUL


def _central_entry(cd: bytes, at: int) -> tuple[str, int, int, _Entry] | None:
    """Parse the entry at `at`: (zipfile's name, end of the name, end of the entry, fields).

    None if inconsistent.
    """
    if at < 0 or at + _CENTRAL.size > len(cd):
        return None
    fields = _CENTRAL.unpack_from(cd, at)
    if fields[0] != _CENTRAL_SIG or fields[3] > _MAX_EXTRACT_VERSION:
        return None
    flags, method, compressed, size = fields[5], fields[6], fields[10], fields[11]
    name_len, extra_len, comment_len, offset = fields[12], fields[13], fields[14], fields[18]
    name_start = at + _CENTRAL.size
    name_end = name_start + name_len
    end = name_end + extra_len + comment_len
    # The entry must end where the next one starts (or the directory ends).
    if end > len(cd) or (end < len(cd) and cd[end : end + 4] != _CENTRAL_SIG):
        return None
    try:
        raw = cd[name_start:name_end].decode("utf-8" if flags & _UTF8_NAME else "cp437")
    except UnicodeDecodeError:
        return None
    if 0xFFFFFFFF in (size, compressed, offset):
        extra = cd[name_end : name_end + extra_len]
        wide = _zip64_sizes(extra, size, compressed, offset)
        if wide is None:
            return None
        size, compressed, offset = wide
    name = raw.split("\0", 1)[0]
    return name, name_end, end, _Entry(flags, method, compressed, size, offset, raw)


def _zip64_sizes(
    extra: bytes, size: int, compressed: int, offset: int
) -> tuple[int, int, int] | None:
    """The 64-bit values a zip64 extra field (id 1) holds for the saturated 32-bit ones."""
    pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if len(body) != length:
            return None
        if kind == 1:
            # zipfile's order and test: file size, compressed size, local header offset.
            values = [size, compressed, offset]
            at = 0
            for i in range(3):
                if values[i] == 0xFFFFFFFF:
                    if at + 8 > length:
                        return None
                    values[i] = int.from_bytes(body[at : at + 8], "little")
                    at += 8
            size, compressed, offset = values
        pos += 4 + length
    return size, compressed, offset


def _member_data(data: mmap.mmap, info: _Entry) -> bytes | None:
    """One member's bytes via its local header; None for anything zipfile should judge."""
    if info.flags & _UNSUPPORTED_FLAGS or info.method not in (_STORED, _DEFLATED):
        return None
    if info.size > MAX_PICKLE_BYTES:
        return None  # zipfile's reader refuses it with the message
    if info.offset + _LOCAL.size > len(data):
        return None
    local = _LOCAL.unpack_from(data, info.offset)
    if local[0] != _LOCAL_SIG:
        return None
    name_start = info.offset + _LOCAL.size
    raw_name = data[name_start : name_start + local[10]]
    try:
        local_name = raw_name.decode("utf-8" if local[3] & _UTF8_NAME else "cp437")
    except UnicodeDecodeError:
        return None
    if local_name != info.raw_name:
        return None  # zipfile: "File name in directory ... and header ... differ"
    start = name_start + local[10] + local[11]
    end = start + info.compressed
    if end > len(data):
        return None
    if info.method == _STORED:
        if info.compressed != info.size:
            return None
        out = data[start:end]
    else:
        inflate = zlib.decompressobj(-15)
        try:
            # Bounded: never more than the declared size (plus one byte to notice a lie).
            out = inflate.decompress(data[start:end], info.size + 1)
        except zlib.error:
            return None
        if len(out) != info.size or not inflate.eof:
            return None
    # No CRC check, unlike zipfile: torch's reader never checks one, and
    # `torch.serialization.set_crc32_options(False)` writes files whose CRC
    # fields are all 0 and which load fine.
    return out


def _legacy_pickles(shown: str, data: mmap.mmap) -> list[PickleBlob]:
    # Each pickle's end is only known by walking it; the storages after the
    # fifth pickle are never touched.
    blobs, pos = [], 0
    for role in _LEGACY_PICKLES:
        try:
            facts = analyze(data, pos)
        except PickleFormatError as exc:
            partial = exc.partial
            if isinstance(partial, PickleFacts) and partial.globals:
                # What it named before the bad byte may run code: `scan`
                # walks it again and judges that (it stops the file there).
                blobs.append(PickleBlob(role, data, start=pos, main=role == "data"))
                return blobs
            raise UnreadableCheckpointError(
                shown, f"legacy torch file, {role} pickle: {exc}"
            ) from None
        blobs.append(PickleBlob(role, data, start=pos, main=role == "data", facts=facts))
        pos = facts.end
    return blobs
