"""The one zip reader: the members of an archive, read the way torch reads them.

torch reads checkpoints with miniz (`caffe2/serialize/inline_container.cc`),
not with Python's `zipfile`, and the two disagree on real files:

- miniz never checks a CRC (torch builds it with
  `MINIZ_DISABLE_ZIP_READER_CRC32_CHECKS`): a checkpoint saved after
  `torch.serialization.set_crc32_options(False)` has all-zero CRCs and loads;
- miniz ignores the name in a member's local header (zipfile refuses the
  archive when it differs from the central directory's);
- miniz finds a member by a case-insensitive (ASCII) binary search over the
  central directory heap-sorted by name; when names repeat, which copy it
  finds depends on that sort, so `locate` replays the same heap sort and the
  same search instead of guessing "first" or "last";
- miniz refuses the whole archive on a few inconsistencies zipfile lets pass
  (a stored member whose two sizes differ, a local header past the end, ...),
  which `ZipArchive.refusals` lists.

Nothing here unpickles anything; member data is only read when asked for
(`read`), inflated to at most its declared size. An archive can be a window
of a larger buffer (a stored archive inside another one is read in place).
"""

from __future__ import annotations

import bisect
import functools
import itertools
import mmap
import operator
import re
import struct
import sys
import zlib
from array import array
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Final, NamedTuple, overload

from ..errors import CkptCompatError, one_line

Buffer = bytes | mmap.mmap

_EOCD = struct.Struct("<4s4H2LH")  # signature, disks, entry counts, cd size, cd offset, comment
_EOCD64_LOCATOR = struct.Struct("<4sLQL")  # signature, disk, offset of the zip64 record, disks
_EOCD64 = struct.Struct("<4sQ2H2L4Q")  # signature, size, versions, disks, counts, cd size/offset
_CENTRAL = struct.Struct("<4s4B4HL2L5H2L")  # the 46-byte central-directory entry header
_LOCAL = struct.Struct("<4s2B4HL2L2H")  # the 30-byte local file header
LOCAL_SIG: Final = b"PK\x03\x04"
_CENTRAL_SIG, _EOCD_SIG = b"PK\x01\x02", b"PK\x05\x06"
_EOCD64_SIG, _EOCD64_LOCATOR_SIG = b"PK\x06\x06", b"PK\x06\x07"
_UTF8_NAME: Final = 0x800
#: The general-purpose flags of an encrypted member (traditional or strong encryption).
ENCRYPTED: Final = 0x1 | 0x40
_MASKED_LOCAL_HEADER: Final = 0x2000  # miniz refuses the archive outright
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
#: What miniz, and so torch, can read.
TORCH_METHODS: Final = frozenset({STORED, DEFLATED})
#: What `torch_refusal` refuses, for the messages that name a refused member.
TORCH_READABLE: Final = "torch reads only stored or deflated, unencrypted members"

_MAX_COMMENT: Final = 0xFFFF
_FULL32, _FULL16 = 0xFFFFFFFF, 0xFFFF
# What a member may inflate to before it is refused on its header: the
# largest data.pkl seen in practice is a few hundred MB.
MAX_MEMBER_BYTES: Final = 2 << 30
_LOWER = bytes.maketrans(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", b"abcdefghijklmnopqrstuvwxyz")


class ZipError(CkptCompatError):
    """The archive (or one member) cannot be read; the message says why, without the path."""


class ZipEntry(NamedTuple):
    """One central-directory entry (a tuple: archives hold 100,000 of them)."""

    position: int  # in the central directory
    raw: bytes  # the name's bytes, as miniz compares them
    flags: int
    method: int
    compressed: int
    size: int
    offset: int  # of the local header, from the archive's start

    @property
    def name(self) -> str:
        """The name for people: UTF-8 when the entry says so, else cp437 (as zipfile)."""
        return self.raw.decode("utf-8" if self.flags & _UTF8_NAME else "cp437", "replace")

    @property
    def is_dir(self) -> bool:
        """A folder entry (`name/`), which holds no data."""
        return self.raw.endswith(b"/")


def torch_refusal(entry: ZipEntry) -> str | None:
    """Why torch's reader (miniz) cannot read a member's data; None when it can.

    One rule for every member torch reads: `"encrypted"`, or `"compression method 12"`.
    """
    if entry.flags & ENCRYPTED:
        return "encrypted"
    if entry.method not in TORCH_METHODS:
        return f"compression method {entry.method}"
    return None


class ZipArchive:
    """The central directory of a zip archive held in `data[start:start + size]`."""

    def __init__(self, data: Buffer, start: int = 0, size: int | None = None) -> None:
        self.data = data
        self.start = start
        self.size = len(data) - start if size is None else size
        #: Why torch's reader (miniz) refuses this archive although it can be read.
        self.refusals: list[str] = []
        #: Every central-directory entry, in order (built on demand when the
        #: directory was read by the fast path: `names` answers most questions).
        self.entries: Sequence[ZipEntry] = self._read_central_directory()
        self._sorted: list[int] | None = None
        self._names: _Names | None = None
        self._index: dict[bytes, int] | None = None

    # --- the central directory ---------------------------------------------------

    def _read_central_directory(self) -> Sequence[ZipEntry]:
        data, base, size = self.data, self.start, self.size
        if size < _EOCD.size:
            raise ZipError("too short for a zip archive")
        # miniz and zipfile both take the last end record in the final 64 KiB.
        floor = base + max(0, size - _EOCD.size - _MAX_COMMENT)
        eocd = data.rfind(_EOCD_SIG, floor, base + size - _EOCD.size + 4)
        if eocd < 0:
            raise ZipError("no end of central directory (not a zip, or truncated)")
        _, disk, cd_disk, on_disk, total, cd_size, cd_offset, _ = _EOCD.unpack_from(data, eocd)
        locator = eocd - _EOCD64_LOCATOR.size
        if locator >= base and data[locator : locator + 4] == _EOCD64_LOCATOR_SIG:
            _, _, record, disks = _EOCD64_LOCATOR.unpack_from(data, locator)
            at = locator - _EOCD64.size
            if at < base or data[at : at + 4] != _EOCD64_SIG:
                at = base + record  # where the locator says, as miniz tries next
            if at + _EOCD64.size > base + size or data[at : at + 4] != _EOCD64_SIG:
                raise ZipError("a zip64 locator without its zip64 end record")
            fields = _EOCD64.unpack_from(data, at)
            if disks != 1:
                raise ZipError("a multi-disk (spanned) zip archive")
            disk, cd_disk, on_disk, total = fields[4], fields[5], fields[6], fields[7]
            cd_size, cd_offset = fields[8], fields[9]
        if on_disk != total or (disk | cd_disk and (disk, cd_disk) != (1, 1)):
            raise ZipError("a multi-disk (spanned) zip archive")
        if cd_size < total * _CENTRAL.size or cd_offset + cd_size > size:
            raise ZipError(f"corrupt central directory ({total} entries in {cd_size} bytes)")
        if base + cd_offset + cd_size > eocd:
            raise ZipError("the central directory overlaps its end record")
        fast = _Directory.read(data[base + cd_offset : base + cd_offset + cd_size], total, size)
        if fast is not None:
            return fast
        return self._entries(base + cd_offset, cd_size, total)

    def _entries(self, cd: int, cd_size: int, total: int) -> list[ZipEntry]:
        """Every entry, with miniz's checks on each (`_read_central_dir` in miniz_zip.c).

        The loop is the cost of a big archive (0.8 us an entry): it does only
        what every entry needs and leaves the rare cases to `_unusual`.
        """
        data, size = self.data, self.size
        unpack = _CENTRAL.unpack_from
        entries: list[ZipEntry] = []
        append = entries.append
        pos, end = cd, cd + cd_size
        for index in range(total):
            if pos + 46 > end:
                raise ZipError(f"corrupt central directory (entry {index})")
            f = unpack(data, pos)
            name_end = pos + 46 + f[12]
            next_pos = name_end + f[13] + f[14]
            compressed, usize, offset = f[10], f[11], f[18]
            entry = ZipEntry(
                index, data[pos + 46 : name_end], f[5], f[6], compressed, usize, offset
            )
            if (
                f[0] != _CENTRAL_SIG
                or next_pos > end
                or _FULL32 in (compressed, usize, offset)
                or f[15] > 1
                or f[5] & _MASKED_LOCAL_HEADER
                or (usize != compressed and (f[6] == STORED or not compressed))
                or offset + 30 + compressed > size
            ):
                entry = self._unusual(entry, f, data[name_end : name_end + f[13]], next_pos > end)
            append(entry)
            pos = next_pos
        return entries

    def _unusual(
        self, entry: ZipEntry, f: tuple[Any, ...], extra: bytes, overruns: bool
    ) -> ZipEntry:
        """The checks of `_entries` that fail (or need zip64 values), one by one."""
        index, raw = entry.position, entry.raw
        if f[0] != _CENTRAL_SIG:
            raise ZipError(f"corrupt central directory (entry {index})")
        if overruns:
            raise ZipError(f"corrupt central directory (entry {index} runs past its end)")
        usize, compressed, offset = entry.size, entry.compressed, entry.offset
        if _FULL32 in (compressed, usize, offset):
            usize, compressed, offset = _zip64_values(extra, usize, compressed, offset, index)
            entry = entry._replace(size=usize, compressed=compressed, offset=offset)
        elif (entry.method == STORED and not f[7] and usize != compressed) or (
            usize and not compressed
        ):
            # miniz reads the method as 32 bits, the modification time with it: a
            # stored member's two sizes are compared only when its time is 0 too
            # (measured on torch 1.13.1, 2.0.1, 2.1, 2.5.1 and 2.13).
            self.refuse(f"member {_show(raw)}: its sizes disagree ({compressed} vs {usize})")
        if f[15] == _FULL16 or f[15] not in (0, 1):
            raise ZipError("a multi-disk (spanned) zip archive")
        if offset + _LOCAL.size + compressed > self.size:
            raise ZipError(f"member {_show(raw)} lies past the end of the file (truncated?)")
        if entry.flags & _MASKED_LOCAL_HEADER:
            self.refuse(f"member {_show(raw)}: masked local headers (encryption)")
        return entry

    def refuse(self, reason: str) -> None:
        """Note a reason torch's reader refuses the archive (once)."""
        if reason not in self.refusals:
            self.refusals.append(reason)

    # --- finding a member as torch does -----------------------------------------

    def locate(self, name: bytes) -> ZipEntry | None:
        """The entry miniz's `mz_zip_reader_locate_file(name, flags=0)` returns, or None.

        Case-insensitive for ASCII letters only; a binary search over the
        entries heap-sorted by lowercased name, exactly as miniz sorts them, so
        that of several entries with the same name the same one is found.
        """
        wanted, length = name.translate(_LOWER), len(name)
        names = self.names()
        if names is not None and b"\n" not in wanted:
            found = names.lower_lines(wanted)
            if len(found) <= 1:  # the common case: any search finds the only one
                return self.entries[found[0]] if found else None
        same_length = [e for e in self.entries if len(e.raw) == length]  # cheap, then exact
        hits = [e for e in same_length if _lower(e.raw) == wanted]
        if len(hits) <= 1:  # the common case: any search finds the only one
            return hits[0] if hits else None
        order = self._heap_sorted()
        lo, hi = 0, len(order) - 1
        while lo <= hi:
            mid = lo + ((hi - lo) >> 1)
            entry = self.entries[order[mid]]
            comp = _compare(_lower(entry.raw), wanted)
            if comp == 0:
                return entry
            if comp < 0:
                lo = mid + 1
            else:
                hi = mid - 1
        return None  # pragma: no cover - the hits above exist, so the search finds one

    def names(self) -> _Names | None:
        """Every entry's name at once, for questions answered in one pass over them.

        None when some name holds a newline (the line-per-name text cannot
        hold it): ask `entries` instead.
        """
        if self._names is None:
            if isinstance(self.entries, _Directory):
                self._names = self.entries.names
            else:
                self._names = _Names.of([e.raw for e in self.entries])
        return self._names if self._names.usable else None

    def _heap_sorted(self) -> list[int]:
        """The order of miniz's `mz_zip_reader_sort_central_dir_offsets_by_filename`, replayed."""
        if self._sorted is not None:
            return self._sorted
        keys = [_lower(e.raw) for e in self.entries]
        order = list(range(len(keys)))
        size = len(order)

        def less(a: int, b: int) -> bool:
            return keys[a] < keys[b]  # bytes order: a shorter equal prefix sorts first

        def sift(root: int, end: int) -> None:
            while True:
                child = 2 * root + 1
                if child >= end:
                    return
                if child + 1 < end and less(order[child], order[child + 1]):
                    child += 1
                if not less(order[root], order[child]):
                    return
                order[root], order[child] = order[child], order[root]
                root = child

        if size > 1:
            for start in range((size - 2) >> 1, -1, -1):
                sift(start, size)
            for end in range(size - 1, 0, -1):
                order[end], order[0] = order[0], order[end]
                sift(0, end)
        self._sorted = order
        return order

    def name_index(self) -> dict[bytes, int]:
        """Every lowercased name -> the position of the entry `locate` finds for it.

        Built in C, once, for many lookups at once (a storage record per tensor).
        A name several entries share maps to the one miniz's binary search finds.
        """
        if self._index is None:
            names = self.names()
            if names is not None:
                lines = names.lower.split(b"\n")[1::2]  # "\n" + name + "\n" per entry
            else:
                lines = [_lower(e.raw) for e in self.entries]
            index = dict(zip(lines, range(len(lines)), strict=True))
            if len(index) != len(lines):
                for name in [n for n, k in Counter(lines).items() if k > 1]:
                    found = self.locate(name)
                    assert found is not None  # pragma: no cover - the name is there
                    index[name] = found.position
            self._index = index
        return self._index

    def column(self, field: str) -> Sequence[int]:
        """One directory field (`size`, `method`, ...) of every entry, by position."""
        if isinstance(self.entries, _Directory):
            return self.entries.fields[field]
        return [getattr(e, field) for e in self.entries]

    # --- member data --------------------------------------------------------------

    def data_span(self, entry: ZipEntry) -> tuple[int, int]:
        """Where a member's (possibly compressed) bytes lie in `data`: `(start, end)`."""
        at = self.start + entry.offset
        if self.data[at : at + 4] != LOCAL_SIG:
            raise ZipError(f"{_show(entry.name)}: no local header where the directory points")
        local = _LOCAL.unpack_from(self.data, at)
        # miniz skips the local name and extra field by their lengths and never
        # compares the name with the directory's (zipfile does, and refuses).
        begin = at + _LOCAL.size + local[10] + local[11]
        finish = begin + entry.compressed
        if finish > self.start + self.size:
            raise ZipError(f"{_show(entry.name)}: lies past the end of the file (truncated?)")
        return begin, finish

    def read(self, entry: ZipEntry, limit: int = MAX_MEMBER_BYTES) -> bytes:
        """A member's bytes, decompressed; no CRC check (torch makes none).

        bzip2 and LZMA members are read too, although torch cannot: what a
        pickle in one would run must still be reported.
        """
        if entry.flags & ENCRYPTED:
            raise ZipError(f"{_show(entry.name)}: encrypted")
        if entry.size > limit:
            raise ZipError(
                f"{_show(entry.name)}: declares {entry.size:,} bytes "
                f"(over {limit >> 30} GiB): refusing to inflate it"
            )
        begin, finish = self.data_span(entry)
        if entry.method == STORED:
            # miniz copies the uncompressed size (which a stored member's other
            # size may contradict when the archive was still accepted).
            if begin + entry.size > self.start + self.size:
                raise ZipError(f"{entry.name}: lies past the end of the file (truncated?)")
            return bytes(self.data[begin : begin + entry.size])
        try:
            # Bounded: never more than the declared size (plus one byte to notice a lie).
            out = _decompress(entry.method, self.data[begin:finish], entry.size + 1)
        except (zlib.error, OSError, EOFError, ValueError) as exc:
            raise ZipError(f"{_show(entry.name)}: corrupt compressed data ({exc})") from None
        if out is None:
            raise ZipError(
                f"{_show(entry.name)}: compression method {entry.method} is not supported"
            )
        if len(out) != entry.size:
            raise ZipError(
                f"{_show(entry.name)}: inflates to {len(out):,} bytes, not the {entry.size:,} "
                "its header declares"
            )
        return out

    def window(self, entry: ZipEntry) -> tuple[Buffer, int, int] | None:
        """A stored member as `(data, start, size)`, to be read in place; None if compressed."""
        if entry.method != STORED or entry.flags & ENCRYPTED:
            return None
        begin, finish = self.data_span(entry)
        return self.data, begin, finish - begin

    def head(self, entry: ZipEntry, count: int) -> bytes:
        """The first `count` bytes of a member (inflated), cheaply; b"" when unreadable."""
        try:
            begin, finish = self.data_span(entry)
        except ZipError:
            return b""
        if entry.flags & ENCRYPTED:
            return b""
        if entry.method == STORED:
            return bytes(self.data[begin : min(finish, begin + count)])
        try:
            return _decompress(entry.method, self.data[begin:finish], count) or b""
        except (zlib.error, OSError, EOFError, ValueError):
            return b""


def _decompress(method: int, data: bytes | mmap.mmap, limit: int) -> bytes | None:
    """At most `limit` bytes of a compressed member; None for a method not read here."""
    if method == DEFLATED:
        return zlib.decompressobj(-15).decompress(data, limit)
    if method == BZIP2:
        import bz2

        return bz2.BZ2Decompressor().decompress(bytes(data), limit)
    if method == LZMA:
        import lzma

        # The zip LZMA header: version (2 bytes), properties size (2), properties.
        size = int.from_bytes(data[2:4], "little")
        props = bytes(data[4 : 4 + size])
        decode = lzma._decode_filter_properties  # type: ignore[attr-defined]  # what zipfile uses
        filters = [decode(lzma.FILTER_LZMA1, props)]
        return lzma.LZMADecompressor(lzma.FORMAT_RAW, filters=filters).decompress(
            bytes(data[4 + size :]), limit
        )
    return None


def decompress_file(data: Buffer, kind: str, limit: int) -> bytes:
    """At most `limit` bytes of a whole gzip / bz2 / xz file's (first) stream.

    What precedes a corrupt byte is returned: an unpickler reading the stream
    would have run it. (Here beside the members' decompression: one module
    inflates anything.)
    """
    import bz2
    import lzma

    decoder: zlib._Decompress | bz2.BZ2Decompressor | lzma.LZMADecompressor
    if kind == "gzip":
        decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
    elif kind == "bz2":
        decoder = bz2.BZ2Decompressor()
    else:
        decoder = lzma.LZMADecompressor()
    out = bytearray()
    step = 1 << 20
    try:
        for at in range(0, len(data), step):
            out += decoder.decompress(bytes(data[at : at + step]), limit - len(out))
            if len(out) >= limit or decoder.eof:
                break
    except (zlib.error, OSError, EOFError, lzma.LZMAError, ValueError):
        pass
    return bytes(out)


def _lower(raw: bytes) -> bytes:
    return raw.translate(_LOWER)


def _compare(left: bytes, right: bytes) -> int:
    """Miniz's `mz_zip_filename_compare` on lowercased names: <0, 0, >0."""
    return (left > right) - (left < right)


def _show(raw: bytes | str) -> str:
    """A member name as a message shows it: on one line, control characters escaped.

    The name comes from the file, so it may hold a newline that would split an error line.
    """
    return one_line(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)


def _zip64_values(
    extra: bytes, size: int, compressed: int, offset: int, index: int
) -> tuple[int, int, int]:
    """The 64-bit values a zip64 extra field (id 1) holds for the saturated 32-bit ones."""
    pos = 0
    while pos + 4 <= len(extra):
        kind, length = struct.unpack_from("<HH", extra, pos)
        body = extra[pos + 4 : pos + 4 + length]
        if len(body) != length:
            raise ZipError(f"corrupt central directory (entry {index}: extra field)")
        if kind == 1:
            # The order of the zip spec (and miniz, and zipfile): size, compressed, offset.
            values = [size, compressed, offset]
            at = 0
            for i in range(3):
                if values[i] == _FULL32:
                    if at + 8 > length:
                        raise ZipError(f"corrupt central directory (entry {index}: zip64 field)")
                    values[i] = int.from_bytes(body[at : at + 8], "little")
                    at += 8
            return values[0], values[1], values[2]
        pos += 4 + length
    raise ZipError(f"corrupt central directory (entry {index}: sizes need a zip64 field)")


# --- the fast path: the central directory in a few passes over all of it ------------------
#
# `ZipArchive._entries` reads an entry at a time (0.8 us each: 80 ms for the
# 100,000 members of a pickle-heavy checkpoint). `_Directory.read` reads the
# same directory in passes over all of it (C loops: slicing, `bytes.split`,
# `re`, `array`), applies miniz's per-entry checks to whole columns, and
# makes an entry object only when one is asked for. It gives up (returns
# None, and the loop reads the directory, with its refusals and errors) on
# anything but the plain case: no extra field or comment, no zip64 value,
# disk 0 or 1, no masked local header, consistent sizes, data inside the file.

_HEADER: Final = _CENTRAL.size  # 46
_SPLIT: Final = re.compile(re.escape(_CENTRAL_SIG) + b"(.{42})", re.DOTALL)
# Bytes with bit 0x20 set: the masked-local-header flag (0x2000) in a flags field's high byte.
_NOT_0x20: Final = bytes(b for b in range(256) if not b & 0x20)
_MAX_RUNS: Final = 64  # more runs of same-length names than this: split at the signatures
_FIRST_WINDOW: Final = 64
# Header fields an entry holds: name -> (offset in the header, width).
_FIELDS: Final = {
    "flags": (8, 2), "method": (10, 2), "compressed": (20, 4), "size": (24, 4), "offset": (42, 4),
}  # fmt: skip


def _number(columns: list[bytes], count: int) -> array[int]:
    """Little-endian numbers from their byte columns (`columns[k]`: byte k of every number)."""
    width = len(columns)
    out = bytearray(count * width)
    for k, column in enumerate(columns):
        out[k::width] = column
    numbers = array("H" if width == 2 else "I")
    assert numbers.itemsize == width
    numbers.frombytes(bytes(out))
    if sys.byteorder != "little":  # pragma: no cover - the fields are little-endian
        numbers.byteswap()
    return numbers


class _Runs:
    """The directory as runs of entries whose names have one length (fixed stride each).

    torch.save names its records `<folder>/data/<n>` in order of `n`: a
    100,000-member archive is a handful of runs, and each field of every
    entry of a run is one strided slice of the directory.
    """

    def __init__(self, cd: bytes, runs: list[tuple[int, int, int]]) -> None:
        self.cd = cd
        self.runs = runs  # (offset in cd, name length, entries)
        self.starts = list(itertools.accumulate((r[2] for r in runs), initial=0))
        self._columns: dict[int, bytes] = {}

    @classmethod
    def find(cls, cd: bytes, total: int) -> _Runs | None:
        """The runs of the `total`-entry directory `cd`; None beyond `_MAX_RUNS` or if irregular."""
        runs: list[tuple[int, int, int]] = []
        pos, seen, end = 0, 0, len(cd)
        while seen < total:
            if len(runs) == _MAX_RUNS or pos + _HEADER > end:
                return None
            if cd[pos : pos + 4] != _CENTRAL_SIG or cd[pos + 30 : pos + 34] != b"\0\0\0\0":
                return None  # not an entry, or an extra field or comment: the loop reads it
            length = int.from_bytes(cd[pos + 28 : pos + 30], "little")
            stride = _HEADER + length
            fits = min(total - seen, (end - pos) // stride)
            # How many entries from `pos` look like this one (signature, name
            # length) at `stride`; `_Directory.read` then checks every header byte
            # that makes a run the directory's own chain of entries.
            expected = {0: _CENTRAL_SIG[0], 28: length & 0xFF}
            count, window = 0, _FIRST_WINDOW
            while count < fits:
                window = min(window, fits - count)
                base = pos + count * stride
                same = window
                for offset, byte in expected.items():
                    column = cd[base + offset : base + offset + window * stride : stride]
                    same = min(same, len(column) - len(column.lstrip(bytes((byte,)))))
                count += same
                if same < window:
                    break
                window *= 4
            if count == 0:
                return None  # pragma: no cover - the entry at `pos` has its own shape
            runs.append((pos, length, count))
            pos += count * stride
            seen += count
        return cls(cd, runs) if pos == end else None

    def chained(self) -> bool:
        """Whether every entry is a header with its run's name length, no extra, no comment.

        Then each entry is followed by the next at its run's stride: the runs
        are the directory's chain of entries, exactly as the loop walks it.
        """
        for offset, byte in enumerate(_CENTRAL_SIG):
            if self.column(offset).count(byte) != self.starts[-1]:
                return False
        zeros = bytes(self.starts[-1])
        if any(self.column(offset) != zeros for offset in range(30, 34)):
            return False
        for offset, shift in ((28, 0), (29, 8)):
            wanted = b"".join(bytes(((n >> shift) & 0xFF,)) * count for _, n, count in self.runs)
            if self.column(offset) != wanted:
                return False
        return True

    def column(self, offset: int) -> bytes:
        """Byte `offset` of every entry's header, in order."""
        found = self._columns.get(offset)
        if found is None:
            found = self._columns[offset] = b"".join(
                self.cd[at + offset : at + (_HEADER + n) * count : _HEADER + n]
                for at, n, count in self.runs
            )
        return found

    def text(self) -> bytes:
        """Every name framed by newlines (`_Names.text`)."""
        parts = []
        for at, n, count in self.runs:
            line = n + 2
            out = bytearray(b"\n" * (line * count))
            stride = _HEADER + n
            for k in range(n):
                start = at + _HEADER + k
                out[1 + k :: line] = self.cd[start : start + stride * count : stride]
            parts.append(bytes(out))
        return b"".join(parts)

    def segments(self) -> list[tuple[int, int, int]]:
        """Each run's place in `text()`: (offset, name length, first entry), in order."""
        out, at = [], 0
        for (_, n, count), first in zip(self.runs, self.starts, strict=False):
            out.append((at, n, first))
            at += (n + 2) * count
        return out

    def name(self, index: int) -> bytes:
        """The name of entry `index`."""
        run = bisect.bisect_right(self.starts, index) - 1
        at, n, _ = self.runs[run]
        start = at + (index - self.starts[run]) * (_HEADER + n) + _HEADER
        return self.cd[start : start + n]


class _Directory(Sequence[ZipEntry]):
    """A central directory read in whole-column passes, entries made on demand.

    `read` applies exactly the checks of `ZipArchive._entries` to every entry,
    to all of them at once, and gives up (None) where that loop would note or
    refuse anything.
    """

    def __init__(self, count: int, fields: dict[str, array[int]], names: _Names) -> None:
        self.total = count
        self.fields = fields
        self.names = names
        self._made: dict[int, ZipEntry] = {}  # one object per entry, as in a list

    @classmethod
    def read(cls, cd: bytes, total: int, size: int) -> _Directory | None:
        """The entries of the `total`-entry directory `cd` (in a file of `size` bytes), or None."""
        if total < 64:  # small directories: the loop is as fast, and says more
            return None
        runs = _Runs.find(cd, total)
        if runs is not None and runs.chained():
            byte = runs.column
            names = _Names(runs.text(), total, runs.name, runs.segments())
        else:
            parts = _SPLIT.split(cd)  # entry signatures, not inside their 42 header bytes
            if len(parts) != 2 * total + 1 or parts[0]:
                return None
            heads = b"".join(parts[1::2])
            raws = parts[2::2]

            def byte(offset: int) -> bytes:
                return heads[offset - 4 :: _HEADER - 4]

            # The name lengths must be the bytes up to the next signature: then the
            # split is the directory's chain of entries (a name holding a signature
            # or an entry with an extra field would break it).
            if byte(30) + byte(31) + byte(32) + byte(33) != bytes(4 * total):
                return None
            lengths = _number([byte(28), byte(29)], total)
            if lengths != array("H", map(len, raws)):
                return None
            names = _Names(b"\n" + b"\n\n".join(raws) + b"\n", total, raws.__getitem__)
        fields = {
            name: _number([byte(offset + k) for k in range(width)], total)
            for name, (offset, width) in _FIELDS.items()
        }
        return cls(total, fields, names) if _plain(fields, byte, total, size) else None

    def __len__(self) -> int:
        return self.total

    @overload
    def __getitem__(self, index: int) -> ZipEntry: ...

    @overload
    def __getitem__(self, index: slice) -> list[ZipEntry]: ...

    def __getitem__(self, index: int | slice) -> ZipEntry | list[ZipEntry]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.total))]
        if index < 0:
            index += self.total
        if not 0 <= index < self.total:
            raise IndexError(index)
        made = self._made.get(index)
        if made is None:
            f = self.fields
            made = self._made[index] = ZipEntry(
                index,
                self.names.raw(index),
                f["flags"][index],
                f["method"][index],
                f["compressed"][index],
                f["size"][index],
                f["offset"][index],
            )
        return made


def _plain(
    fields: dict[str, array[int]], byte: Callable[[int], bytes], total: int, size: int
) -> bool:
    """Whether every entry passes the per-entry loop's checks without a note.

    (No extra field and no comment: checked by whoever found the entries.)
    """
    # Disk number 0 or 1; no masked local headers (flag 0x2000).
    if byte(35) != bytes(total) or byte(34).translate(None, b"\0\1"):
        return False
    if byte(9).translate(None, _NOT_0x20):
        return False
    compressed, sizes, offsets = fields["compressed"], fields["size"], fields["offset"]
    # zip64 values (0xFFFFFFFF): only where a field's top byte is 0xFF.
    for top, values in ((23, compressed), (27, sizes), (45, offsets)):
        if b"\xff" in byte(top) and _FULL32 in values:
            return False
    if compressed != sizes:
        # Differing sizes are fine for a compressed member with data, not otherwise.
        differ = list(map(operator.ne, compressed, sizes))
        if STORED in itertools.compress(fields["method"], differ):
            return False
        if 0 in itertools.compress(compressed, differ):
            return False
    # Every member's data inside the file: members under 64 KiB all are when the
    # largest offset leaves room; the others are checked one by one.
    room = size - _LOCAL.size
    if max(offsets) + 0xFFFF <= room:
        large = {m.start() for k in (22, 23) for m in re.finditer(b"[^\0]", byte(k))}
        return all(offsets[i] + compressed[i] <= room for i in large)
    return bool(max(map(operator.add, offsets, compressed)) <= room)


class _Names:
    """Every name of an archive as one text, one name a line, to be searched in one pass.

    Usable only when no name holds a newline (then each line is one name,
    in order, and a line's number is its entry's position).
    """

    def __init__(
        self,
        text: bytes,
        count: int,
        raw: Callable[[int], bytes],
        segments: Sequence[tuple[int, int, int]] = (),
    ) -> None:
        # "\n" + name + "\n" per entry: every name is framed by its own newlines.
        self.text = text
        self.count = count
        self.raw = raw  # the name of one entry
        self.usable = text.count(b"\n") == 2 * count
        self._lower: bytes | None = None
        self._pair_starts: list[int] | None = None
        # Where names of one length follow each other (from `_Runs`): (offset in the
        # text, name length, first entry), the whole text in order. There a name's
        # place is arithmetic, and a search for a name of length n looks only where
        # names have length n. Empty: unknown (the text is searched whole).
        self.segments = [(at, n, first, end) for (at, n, first), end in _ends(segments, text)]
        self._starts = [seg[0] for seg in self.segments]

    @classmethod
    def of(cls, raws: Sequence[bytes]) -> _Names:
        """The names `raws`, in order."""
        return cls(b"\n" + b"\n\n".join(raws) + b"\n" if raws else b"", len(raws), raws.__getitem__)

    @property
    def lower(self) -> bytes:
        """The text with ASCII letters lowercased (as miniz compares names)."""
        if self._lower is None:
            self._lower = self.text.translate(_LOWER)
        return self._lower

    def position(self, offset: int) -> int:
        """The entry whose name holds `offset` of the text (or ends right before it)."""
        if self.segments:
            at, n, first, _ = self.segments[bisect.bisect_right(self._starts, offset) - 1]
            return first + (offset - at) // (n + 2)
        # The "\n\n" pairs before `offset`, as `text.count(b"\n\n", 0, offset)` counts them
        # (greedy, left to right), found once: counting from the start for every member
        # asked about made a search over many differently named members quadratic.
        return bisect.bisect_right(self._pairs(), offset - 2)

    def _pairs(self) -> list[int]:
        """Where each pair of newlines in the text starts (non-overlapping, left to right)."""
        if self._pair_starts is None:
            self._pair_starts = [m.start() for m in _PAIR.finditer(self.text)]
        return self._pair_starts

    def _spans(self, length: int) -> list[tuple[int, int]]:
        """The parts of the text that can hold a name of `length` bytes."""
        if not self.segments:
            return [(0, len(self.text))]
        return [(at, end) for at, n, _, end in self.segments if n == length]

    def lower_lines(self, wanted: bytes) -> list[int]:
        """The positions of the entries whose lowercased name is `wanted`."""
        needle = b"\n" + wanted + b"\n"
        found: list[int] = []
        lower = self.lower
        for at, end in self._spans(len(wanted)):
            while (at := lower.find(needle, at, end)) >= 0:
                found.append(self.position(at + 1))  # `at` is the newline before the name
                at += len(needle)
        return found

    def all_start_with(self, prefix: bytes) -> bool:
        """Whether every name starts with `prefix`."""
        if self.segments:
            return all(self._column_is(seg, 0, prefix) for seg in self.segments)
        return self.text.count(b"\n\n" + prefix) == self.count - 1 and self.text.startswith(
            b"\n" + prefix
        )

    def _column_is(self, segment: tuple[int, int, int, int], k: int, wanted: bytes) -> bool:
        """Whether every name of `segment` holds `wanted` from its byte `k` on."""
        at, n, _, end = segment
        if k + len(wanted) > n:
            return at == end  # no name there is long enough (fine only if there is none)
        rows = (end - at) // (n + 2)
        return all(
            self.text[at + 1 + k + i : end : n + 2] == bytes((byte,)) * rows
            for i, byte in enumerate(wanted)
        )

    def _numbered(self, segment: tuple[int, int, int, int], prefix: bytes) -> bool:
        """Whether every name of `segment` is `prefix` then digits only."""
        at, n, _, end = segment
        if n <= len(prefix) or not self._column_is(segment, 0, prefix):
            return False
        return not any(
            self.text[at + 1 + k : end : n + 2].translate(None, b"0123456789")
            for k in range(len(prefix), n)
        )

    def ending_with(self, suffixes: tuple[bytes, ...], *, lower: bool = False) -> list[int]:
        """The positions of the entries whose name ends with one of `suffixes`."""
        text = self.lower if lower else self.text
        found = set()
        for suffix in suffixes:
            needle, at = suffix + b"\n", 0
            while (at := text.find(needle, at)) >= 0:
                found.add(self.position(at))
                at += len(needle)
        return sorted(found)

    def not_matching(self, pattern: re.Pattern[bytes], numbered: bytes = b"") -> list[int]:
        """The positions of the entries whose name does not fully match `pattern`.

        `pattern` must not match a newline. A possessive run of matching lines
        is consumed in C; Python sees only the lines that do not match.
        `numbered`: a prefix that, followed by digits only, always matches
        `pattern` (torch's `<folder>/data/<n>`): a run of names all so spelled
        is passed over whole, its columns checked instead of its lines.
        """
        run = _line_run(pattern)
        text = self.text
        spans = [(0, len(text))]
        if numbered and self.segments:
            spans = [(seg[0], seg[3]) for seg in self.segments if not self._numbered(seg, numbered)]
        out: list[int] = []
        for pos, end in spans:
            while True:
                pos = run.match(text, pos, end).end()  # type: ignore[union-attr]  # `*+` matches
                if pos >= end - 1:
                    break
                out.append(self.position(pos + 1))
                pos = text.index(b"\n", pos + 1) + 1  # to the next name's framing newline
        return out


def _ends(
    segments: Sequence[tuple[int, int, int]], text: bytes
) -> list[tuple[tuple[int, int, int], int]]:
    """Each segment with the offset where it ends (the next one's start, or the text's end)."""
    if not segments:
        return []
    ends = [seg[0] for seg in segments[1:]] + [len(text)]
    return list(zip(segments, ends, strict=True))


_PAIR: Final = re.compile(b"\n\n")


@functools.lru_cache(maxsize=8)
def _line_run(pattern: re.Pattern[bytes]) -> re.Pattern[bytes]:
    return re.compile(b"(?:\n(?:" + pattern.pattern + b")\n)*+", pattern.flags)
