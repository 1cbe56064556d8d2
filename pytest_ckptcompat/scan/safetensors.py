"""The header of a `.safetensors` file, read and validated as the safetensors library does.

A safetensors file is an 8-byte little-endian header length `N`, `N` bytes of
UTF-8 JSON, then the tensor bytes. The JSON maps each tensor name to
`{"dtype", "shape", "data_offsets": [begin, end]}` (offsets into the bytes
after the header), plus an optional `"__metadata__"` map of strings. There is
no pickle and nothing to execute: this module reads the header only (the
tensor bytes are never touched) and refuses what `safetensors.safe_open`
refuses, with the reason, checked against safetensors 0.8.0 by
`tests/scan/test_safetensors_header.py`:

- `N` at most 100,000,000, and the header inside the file;
- valid UTF-8, valid JSON (no NaN or Infinity), an object; unknown fields of a
  tensor are ignored, a duplicate field is an error, a duplicate tensor name
  keeps the last one (serde's behaviour, and `json`'s);
- every shape entry and offset an integer in `[0, 2**64)`;
- the tensors, sorted by offsets, cover the data exactly: each one begins
  where the previous ended (no gap, no overlap), its size is
  `numel x dtype bits / 8` (a whole number of bytes for 4- and 6-bit types),
  and the last one ends at the end of the file.
"""

from __future__ import annotations

import json
import mmap
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from ..errors import UnreadableCheckpointError

Buffer = bytes | mmap.mmap
Fail = Callable[[str], UnreadableCheckpointError]

MAX_HEADER: Final = 100_000_000
_U64: Final = 1 << 64
#: safetensors dtype -> (the torch dtype's name, bits per element). The names
#: are torch's (`float8_e4m3fn`) so that a `.pt` and its export compare; the
#: 4- and 6-bit types have no torch dtype of the same shape and keep theirs.
DTYPES: Final[dict[str, tuple[str, int]]] = {
    "BOOL": ("bool", 8),
    "F4": ("float4_e2m1", 4),
    "F6_E2M3": ("float6_e2m3", 6),
    "F6_E3M2": ("float6_e3m2", 6),
    "U8": ("uint8", 8),
    "I8": ("int8", 8),
    "F8_E5M2": ("float8_e5m2", 8),
    "F8_E4M3": ("float8_e4m3fn", 8),
    "F8_E8M0": ("float8_e8m0fnu", 8),
    "F8_E4M3FNUZ": ("float8_e4m3fnuz", 8),
    "F8_E5M2FNUZ": ("float8_e5m2fnuz", 8),
    "I16": ("int16", 16),
    "U16": ("uint16", 16),
    "F16": ("float16", 16),
    "BF16": ("bfloat16", 16),
    "I32": ("int32", 32),
    "U32": ("uint32", 32),
    "F32": ("float32", 32),
    "C64": ("complex64", 64),
    "F64": ("float64", 64),
    "I64": ("int64", 64),
    "U64": ("uint64", 64),
}
_FIELDS: Final = ("dtype", "shape", "data_offsets")
_MAX_DEPTH: Final = 127  # serde_json's recursion limit, measured: the header object counts 1
_STRINGS: Final = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS: Final = re.compile(r"[\[\]{}]")
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class TensorInfo:
    """One tensor of the header."""

    name: str
    dtype: str  # as the file spells it: F32, BF16, ...
    shape: tuple[int, ...]
    begin: int  # offsets into the data after the header
    end: int

    @property
    def torch_dtype(self) -> str:
        """The torch dtype's name (`float32` for F32)."""
        return DTYPES[self.dtype][0]

    @property
    def numel(self) -> int:
        """The number of elements."""
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        """Its bytes in the file."""
        return self.end - self.begin


@dataclass
class Header:
    """A validated header: the tensors in file order, the metadata, the sizes."""

    header_size: int  # N: the JSON's length in bytes
    data_size: int  # the bytes after the header
    tensors: list[TensorInfo] = field(default_factory=list)  # in the order of their offsets
    metadata: dict[str, str] | None = None

    @property
    def file_size(self) -> int:
        """The size of a file that holds exactly this header and its data."""
        return 8 + self.header_size + self.data_size


def looks_like_safetensors(head: bytes) -> bool:
    """Whether the first bytes read as a safetensors header (a length, then JSON's `{`).

    Headers under 4 GiB (all: at most 100 MB is allowed) leave bytes 4-7 zero;
    JSON may start with whitespace.
    """
    return len(head) >= 9 and head[4:8] == b"\0\0\0\0" and head[8:].lstrip(b" \t\r\n")[:1] == b"{"


def read_header(data: Buffer, shown: str) -> Header:
    """The validated header of the safetensors bytes `data`.

    Raises `UnreadableCheckpointError` naming `shown` and the first problem,
    in the terms of safetensors' own errors.
    """

    def bad(problem: str) -> UnreadableCheckpointError:
        return UnreadableCheckpointError(shown, f"invalid safetensors file: {problem}")

    total = len(data)
    if total < 8:
        raise bad(f"{total} bytes, too short for the 8-byte header length")
    n = int.from_bytes(data[:8], "little")
    if n > MAX_HEADER:
        raise bad(f"the header declares {n:,} bytes (safetensors allows at most {MAX_HEADER:,})")
    if 8 + n > total:
        raise bad(
            f"the header declares {n:,} bytes, but the file has {total - 8:,} after the length"
        )
    raw = bytes(data[8 : 8 + n])
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad(f"the header is not valid UTF-8 (byte {exc.start})") from None
    depth = _nesting(text)
    if depth > _MAX_DEPTH:
        raise bad(f"the header is not valid JSON (nested {depth} levels deep; serde allows 127)")
    try:
        doc = json.loads(
            text, object_pairs_hook=_pairs, parse_constant=_no_constant, parse_int=_parse_int
        )
    except (ValueError, RecursionError) as exc:
        raise bad(f"the header is not valid JSON ({_short(exc)})") from None
    if not isinstance(doc, _Pairs):
        raise bad(f"the header is JSON {type(doc).__name__}, not an object")
    header = Header(n, total - 8 - n)
    seen: dict[str, TensorInfo] = {}
    for key, value in doc.items:
        if key == "__metadata__":
            if "__metadata__" in doc.dupes:
                raise bad("duplicate field `__metadata__`")
            header.metadata = _metadata(value, bad)
            continue
        seen[key] = _tensor(key, value, bad)  # a repeated name: the last one counts
    tensors = sorted(seen.values(), key=lambda t: (t.begin, t.end))
    start = 0
    for info in tensors:
        if info.begin != start or info.end < info.begin:
            if info.begin < start:
                where = "overlaps the tensor before it"
            elif info.begin > start:
                where = "leaves a gap after the tensor before it"
            else:
                where = "ends before it begins"
            raise bad(
                f"invalid offset for tensor `{info.name}`: data_offsets [{info.begin}, {info.end}] "
                f"{where} (expected it to begin at {start})"
            )
        start = info.end
        _check_size(info, bad)
    if start != header.data_size:
        raise bad(
            f"incomplete metadata, file not fully covered: the tensors cover {start:,} bytes, "
            f"the file holds {header.data_size:,} after the header"
        )
    header.tensors = tensors
    return header


def _nesting(text: str) -> int:
    """How deep arrays and objects nest (outside strings), as serde_json counts it."""
    depth = deepest = 0
    for bracket in _BRACKETS.findall(_STRINGS.sub("", text)):
        if bracket in "[{":
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


class _Negative(int):
    """An integer written with a minus sign (`-0` too): never a size or an offset."""


def _parse_int(text: str) -> int:
    value = int(text)
    return _Negative(value) if text.startswith("-") else value


class _Pairs:
    """A JSON object as its pairs in order (duplicates kept, to judge them as serde does)."""

    __slots__ = ("dupes", "items")

    def __init__(self, items: list[tuple[str, object]]) -> None:
        for key, value in items:  # JSON escapes can spell lone surrogates; UTF-8 cannot
            if _has_surrogate(key) or _has_surrogate(value):
                raise ValueError("lone surrogate in a \\u escape")
        self.items = items
        keys: set[str] = set()
        self.dupes: set[str] = set()
        for key, _ in items:
            (self.dupes if key in keys else keys).add(key)


def _has_surrogate(value: object) -> bool:
    if isinstance(value, str):
        return _SURROGATE.search(value) is not None
    if isinstance(value, list):  # objects inside were checked when they were made
        return any(_has_surrogate(v) for v in value)
    return False


def _pairs(items: list[tuple[str, object]]) -> _Pairs:
    return _Pairs(items)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def _short(exc: BaseException) -> str:
    return str(exc).splitlines()[0][:120] if str(exc) else type(exc).__name__


def _metadata(value: object, bad: Fail) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, _Pairs):
        raise bad(f"`__metadata__` is {_json_type(value)}, not a map of strings")
    out = {}
    for key, item in value.items:
        if not isinstance(item, str):
            raise bad(f"`__metadata__[{key!r}]` is {_json_type(item)}, not a string")
        out[key] = item
    return out


def _tensor(name: str, value: object, bad: Fail) -> TensorInfo:
    if not isinstance(value, _Pairs):
        raise bad(f"tensor `{name}` is {_json_type(value)}, not an object")
    if value.dupes & set(_FIELDS):
        dupe = sorted(value.dupes & set(_FIELDS))[0]
        raise bad(f"tensor `{name}`: duplicate field `{dupe}`")
    fields = dict(value.items)
    for key in _FIELDS:
        if key not in fields:
            raise bad(f"tensor `{name}`: missing field `{key}`")
    dtype = fields["dtype"]
    if not isinstance(dtype, str) or dtype not in DTYPES:
        known = ", ".join(DTYPES)
        raise bad(f"tensor `{name}`: unknown dtype {dtype!r} (safetensors knows {known})")
    shape = _usizes(fields["shape"], None)
    if shape is None:
        raise bad(f"tensor `{name}`: shape {_json_short(fields['shape'])} is not a list of sizes")
    offsets = _usizes(fields["data_offsets"], 2)
    if offsets is None:
        raise bad(
            f"tensor `{name}`: data_offsets {_json_short(fields['data_offsets'])} is not "
            "[begin, end]"
        )
    return TensorInfo(name, dtype, shape, offsets[0], offsets[1])


def _usizes(value: object, length: int | None) -> tuple[int, ...] | None:
    """`value` as a tuple of unsigned 64-bit integers (of `length` items), else None."""
    if not isinstance(value, list) or (length is not None and len(value) != length):
        return None
    if not all(type(v) is int and 0 <= v < _U64 for v in value):  # _Negative is no `int`
        return None
    return tuple(value)


def _check_size(info: TensorInfo, bad: Fail) -> None:
    numel = 1
    for d in info.shape:
        numel *= d
        if numel >= _U64:
            raise bad(
                f"tensor `{info.name}`: shape {list(info.shape)} overflows (2**64 elements or more)"
            )
    bits = numel * DTYPES[info.dtype][1]
    if bits >= _U64:
        raise bad(f"tensor `{info.name}`: shape {list(info.shape)} overflows")
    if bits % 8:
        raise bad(
            f"tensor `{info.name}`: {numel:,} elements of {info.dtype} do not end on a byte "
            "boundary"
        )
    if bits // 8 != info.nbytes:
        raise bad(
            f"invalid shape, data type, or offset for tensor `{info.name}`: {info.dtype} "
            f"{list(info.shape)} is {bits // 8:,} bytes, data_offsets [{info.begin}, {info.end}] "
            f"hold {info.nbytes:,}"
        )


def _json_type(value: object) -> str:
    if isinstance(value, _Pairs):
        return "an object"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list"


def _json_short(value: object) -> str:
    if isinstance(value, _Pairs):
        return "{...}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
