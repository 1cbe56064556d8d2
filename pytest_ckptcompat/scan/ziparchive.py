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

import mmap
import struct
import zlib
from typing import Any, Final, NamedTuple

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
_ENCRYPTED: Final = 0x1 | 0x40  # traditional or strong encryption
_MASKED_LOCAL_HEADER: Final = 0x2000  # miniz refuses the archive outright
STORED, DEFLATED, BZIP2, LZMA = 0, 8, 12, 14
#: What miniz, and so torch, can read.
TORCH_METHODS: Final = frozenset({STORED, DEFLATED})
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


class ZipArchive:
    """The central directory of a zip archive held in `data[start:start + size]`."""

    def __init__(self, data: Buffer, start: int = 0, size: int | None = None) -> None:
        self.data = data
        self.start = start
        self.size = len(data) - start if size is None else size
        #: Why torch's reader (miniz) refuses this archive although it can be read.
        self.refusals: list[str] = []
        self.entries: list[ZipEntry] = self._read_central_directory()
        self._sorted: list[int] | None = None

    # --- the central directory ---------------------------------------------------

    def _read_central_directory(self) -> list[ZipEntry]:
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
        elif (entry.method == STORED and usize != compressed) or (usize and not compressed):
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
        if entry.flags & _ENCRYPTED:
            raise ZipError(f"{_show(entry.name)}: encrypted")
        if entry.size > limit:
            raise ZipError(
                f"{_show(entry.name)}: declares {entry.size:,} bytes "
                f"(over {limit >> 30} GiB): refusing to inflate it"
            )
        begin, finish = self.data_span(entry)
        if entry.method == STORED:
            return bytes(self.data[begin:finish])
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
        if entry.method != STORED or entry.flags & _ENCRYPTED:
            return None
        begin, finish = self.data_span(entry)
        return self.data, begin, finish - begin

    def head(self, entry: ZipEntry, count: int) -> bytes:
        """The first `count` bytes of a member (inflated), cheaply; b"" when unreadable."""
        try:
            begin, finish = self.data_span(entry)
        except ZipError:
            return b""
        if entry.flags & _ENCRYPTED:
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
