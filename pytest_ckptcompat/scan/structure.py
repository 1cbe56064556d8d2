"""What a pickle holds, as a tree, without executing any of it.

`scan.machine` walks a pickle for what it would *do* (its globals, calls and
BUILDs) and forgets the values, which is what makes the scan fast. `show` and
`diff` need the values: the keys of a state dict, each tensor's dtype, shape
and storage, a short value for the constants. `build_tree` is a second walk of
the same opcodes that keeps them, as a tree of plain nodes:

- constants stay Python values (`int`, `float`, `str`, `bool`, `None`) and
  tuples stay tuples; bytes become a `Blob` (their size; the bytes themselves
  only when short);
- `Mapping`, `Sequence` and `SetNode` are the containers (dict, OrderedDict,
  defaultdict; list; set, frozenset);
- `Tensor` and `Storage` come from torch's own rebuild functions, read from
  their arguments (`_rebuild_tensor_v2(storage, offset, size, stride, ...)`)
  and the persistent ids of the storages (`('storage', torch.FloatStorage,
  key, location, numel)`); `NdArray` and numpy scalars likewise;
- anything else a call or a class would make is an `Object`: the global that
  makes it (as the pickle names it), its arguments, and its BUILD state.

Nothing is imported, called or looked up: a global is a name (`GlobalName`),
and a "call" records the name and the arguments. Every global the pickle
names is counted in `Tree.globals`, by the same rules as the machine (which
`tests/scan/test_structure.py` checks on every corpus and hostile file), so
that `show` can mark the dangerous ones. Malformed input raises
`PickleFormatError`; memory is linear in the pickle's size and nothing
recurses. Memo references make a DAG (and cycles, through BUILD or SETITEMS):
a node may appear in several places; whoever renders the tree follows each
node once.
"""

from __future__ import annotations

import codecs
import contextlib
import gc
import mmap
import struct
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from ..errors import PickleFormatError
from .dtypes import dtype_itemsize, storage_dtype, torch_dtype_name
from .machine import (
    ADDITEMS,
    APPEND,
    APPENDS,
    BINBYTES,
    BINBYTES8,
    BINFLOAT,
    BINGET,
    BININT,
    BININT1,
    BININT2,
    BINPERSID,
    BINPUT,
    BINSTRING,
    BINUNICODE,
    BINUNICODE8,
    BUILD,
    BYTEARRAY8,
    DICT,
    DUP,
    EMPTY_DICT,
    EMPTY_LIST,
    EMPTY_SET,
    EMPTY_TUPLE,
    EXT1,
    EXT2,
    EXT4,
    FLOAT,
    FRAME,
    FROZENSET,
    GET,
    GLOBAL,
    INST,
    INT,
    LIST,
    LONG,
    LONG1,
    LONG4,
    LONG_BINGET,
    LONG_BINPUT,
    MARK,
    MEMOIZE,
    NEWFALSE,
    NEWOBJ,
    NEWOBJ_EX,
    NEWTRUE,
    NEXT_BUFFER,
    NONE,
    OBJ,
    PERSID,
    POP,
    POP_MARK,
    PROTO,
    PUT,
    READONLY_BUFFER,
    REDUCE,
    SETITEM,
    SETITEMS,
    SHORT_BINBYTES,
    SHORT_BINSTRING,
    SHORT_BINUNICODE,
    STACK_GLOBAL,
    STOP,
    STRIDED_REBUILDERS,
    STRING,
    TUPLE,
    TUPLE1,
    TUPLE2,
    TUPLE3,
    UNICODE,
)
from .names import DYNAMIC_GLOBAL, numpy_core_rest

# Strings longer than this are kept as their location (decoded on demand).
_KEEP_STR: Final = 4096
# Bytes up to this size are kept (numpy scalars, short blobs); longer ones by size only.
_KEEP_BYTES: Final = 64
# Integers wider than this many bytes are kept as their width only.
_KEEP_INT_BYTES: Final = 64


class Node:
    """A value the pickle would make (constants are plain Python values instead)."""

    __slots__ = ()


class GlobalName(Node):
    """A global pushed as a value: a class, a function, `torch.float32`."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class LongStr(Node):
    """A string longer than `_KEEP_STR` characters: where it lies in the pickle."""

    __slots__ = ("data", "encoding", "end", "start")

    def __init__(self, data: bytes | mmap.mmap, start: int, end: int, encoding: str) -> None:
        self.data, self.start, self.end, self.encoding = data, start, end, encoding

    def text(self, limit: int | None = None) -> str:
        """The string (its first `limit` bytes' worth); ValueError when malformed."""
        end = self.end if limit is None else min(self.end, self.start + limit)
        return _decode(self.data[self.start : end], self.encoding, strict=limit is None)

    @property
    def size(self) -> int:
        """Its size in the pickle, in bytes."""
        return self.end - self.start


class BigInt(Node):
    """An integer too wide to keep (its width in bytes)."""

    __slots__ = ("width",)

    def __init__(self, width: int) -> None:
        self.width = width


class Blob(Node):
    """`bytes` or `bytearray` (also `_codecs.encode(text, 'latin1')`, protocol 2's bytes)."""

    __slots__ = ("head", "kind", "size")

    def __init__(self, kind: str, size: int, head: bytes | None) -> None:
        self.kind, self.size, self.head = kind, size, head  # head: the bytes, when short


class Opaque(Node):
    """A value nothing is known about (a text persistent id, an out-of-band buffer)."""

    __slots__ = ("what",)

    def __init__(self, what: str) -> None:
        self.what = what


class Sequence(Node):
    """A list (or what APPENDs extend)."""

    __slots__ = ("items", "type_name")

    def __init__(self, type_name: str = "builtins.list") -> None:
        self.type_name = type_name
        self.items: list[object] = []


class SetNode(Node):
    """A set or frozenset."""

    __slots__ = ("items", "type_name")

    def __init__(self, type_name: str, items: list[object] | None = None) -> None:
        self.type_name = type_name
        self.items = items or []


class Mapping(Node):
    """A dict, OrderedDict, defaultdict or Counter: its items in order, its BUILD state."""

    __slots__ = ("_index", "items", "state", "type_name")

    def __init__(self, type_name: str = "builtins.dict") -> None:
        self.type_name = type_name
        self.items: list[list[object]] = []  # [key, value], insertion order
        self._index: dict[object, int] = {}
        self.state: object = None  # an OrderedDict's `_metadata`, from BUILD

    def set(self, key: object, value: object) -> None:
        """`d[key] = value`: a key seen before keeps its place and takes the new value."""
        try:
            at = self._index.get(key)
        except TypeError:  # an unhashable key (a list): only a real dict would say
            at = None
        if at is None:
            with contextlib.suppress(TypeError):
                self._index[key] = len(self.items)
            self.items.append([key, value])
        else:
            self.items[at][1] = value

    def get(self, key: object, default: object = None) -> object:
        """The value of `key` (a constant key), or `default`."""
        try:
            at = self._index.get(key)
        except TypeError:
            return default
        return default if at is None else self.items[at][1]


class Storage(Node):
    """A tensor storage, from its persistent id: `('storage', type, key, location, numel)`."""

    __slots__ = ("dtype", "itemsize", "key", "location", "numel", "type_name")

    def __init__(
        self, key: str, type_name: str, dtype: str, itemsize: int | None, location: str, numel: int
    ) -> None:
        self.key, self.type_name, self.dtype = key, type_name, dtype
        self.itemsize, self.location, self.numel = itemsize, location, numel

    @property
    def nbytes(self) -> int | None:
        """Its size in bytes (None when its dtype's size is unknown)."""
        return None if self.itemsize is None else self.numel * self.itemsize


class Tensor(Node):
    """A tensor torch would rebuild, as its rebuild function's arguments describe it."""

    __slots__ = (
        "dtype", "layout", "location", "offset", "parts", "rebuild", "requires_grad",
        "shape", "state", "storage", "stride", "type_name",
    )  # fmt: skip

    def __init__(self, rebuild: str) -> None:
        self.rebuild = rebuild  # the torch._utils function's name
        self.type_name = "torch.Tensor"
        self.dtype: str | None = None  # torch's name: float32, bfloat16, ...
        self.shape: tuple[int, ...] | None = None
        self.stride: tuple[int, ...] | None = None
        self.offset: int | None = None
        self.storage: Storage | None = None
        self.requires_grad: bool | None = None
        self.layout = "strided"  # strided, sparse, quantized, meta, nested, ...
        self.location: str | None = None
        self.parts: list[object] = []  # the tensors a sparse or nested tensor is made of
        self.state: object = None

    def copy(self, rebuild: str, type_name: str) -> Tensor:
        """The same tensor, made by `rebuild` as `type_name` (a Parameter, a subclass)."""
        out = Tensor(rebuild)
        for name in Tensor.__slots__:
            setattr(out, name, getattr(self, name))
        out.rebuild, out.type_name = rebuild, type_name
        return out

    @property
    def numel(self) -> int | None:
        """Its number of elements (None when the shape is unknown)."""
        if self.shape is None:
            return None
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def itemsize(self) -> int | None:
        """Bytes per element of its dtype (None when unknown)."""
        return dtype_itemsize(self.dtype)

    @property
    def nbytes(self) -> int | None:
        """The number of elements x the element size: the bytes its view covers."""
        numel, size = self.numel, self.itemsize
        return None if numel is None or size is None else numel * size


class NdArray(Node):
    """A numpy array (`_reconstruct`, then BUILD with shape, dtype and data)."""

    __slots__ = ("dtype", "shape", "type_name")

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name
        self.dtype: str | None = None
        self.shape: tuple[int, ...] | None = None


class NpDtype(Node):
    """`numpy.dtype(code)`."""

    __slots__ = ("code", "order")

    def __init__(self, code: str) -> None:
        self.code, self.order = code, "="


class Object(Node):
    """What a call or a class would make: `maker(*args)`, then BUILD with `state`.

    `maker` is the global's name as the pickle spells it (None when the
    callable is not a global: the pickle calls something it made).
    """

    __slots__ = ("args", "how", "items", "maker", "state")

    def __init__(self, maker: str | None, args: object, how: str) -> None:
        self.maker, self.args, self.how = maker, args, how
        self.state: object = None
        self.items: list[object] = []  # APPENDs/SETITEMs on it (list and dict subclasses)


class _Absent:
    __slots__ = ()


_ABSENT: Final = _Absent()


@dataclass
class Tree:
    """One pickle's value tree and the globals it names."""

    root: object = None
    end: int = 0
    protocol: int = 0
    # (module, name) -> how many opcodes name it (GLOBAL, STACK_GLOBAL, INST, EXT), as the machine
    globals: Counter[tuple[str, str]] = field(default_factory=Counter)
    storages: dict[str, Storage] = field(default_factory=dict)  # by key, in order of appearance
    tensors: list[Tensor] = field(default_factory=list)  # every tensor a rebuild call makes


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    """The cyclic garbage collector paused: a tree of a million nodes is built, not garbage.

    Each collection of the youngest generation would otherwise walk the
    growing tree again (measured: a third of the time of `show` on a
    100,000-entry pickle). Reference counting still frees what dies.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


# --- dtypes ------------------------------------------------------------------------------


def _torch_dtype(value: object) -> str | None:
    """`float32` for the global `torch.float32` (as `torch.save` pickles a dtype)."""
    return torch_dtype_name(value.name) if isinstance(value, GlobalName) else None


# numpy type codes -> (name, struct format for a scalar's bytes)
_NP_CODES: Final[dict[str, tuple[str, str]]] = {
    "f2": ("float16", "e"), "f4": ("float32", "f"), "f8": ("float64", "d"),
    "i1": ("int8", "b"), "i2": ("int16", "h"), "i4": ("int32", "i"), "i8": ("int64", "q"),
    "u1": ("uint8", "B"), "u2": ("uint16", "H"), "u4": ("uint32", "I"), "u8": ("uint64", "Q"),
    "b1": ("bool", "?"), "c8": ("complex64", "ff"), "c16": ("complex128", "dd"),
}  # fmt: skip


def numpy_dtype_name(code: str) -> str:
    """`float64` for `'f8'` (or `'<f8'`); the code itself when it is no plain number type."""
    bare = code.lstrip("<>|=")
    return _NP_CODES[bare][0] if bare in _NP_CODES else code


def numpy_scalar_value(dtype: object, raw: object) -> object:
    """The value of `numpy.core.multiarray.scalar(dtype, raw)` when it is a plain number."""
    if not isinstance(dtype, NpDtype) or not isinstance(raw, Blob) or raw.head is None:
        return _ABSENT
    bare = dtype.code.lstrip("<>|=")
    if bare not in _NP_CODES:
        return _ABSENT
    fmt = _NP_CODES[bare][1]
    order = ">" if dtype.order == ">" else "<"
    try:
        values = struct.unpack(order + fmt, raw.head)
    except struct.error:
        return _ABSENT
    return complex(*values) if len(values) == 2 else values[0]


# --- the walk ----------------------------------------------------------------------------

_MAPPING_TYPES: Final = frozenset(
    {"builtins.dict", "__builtin__.dict", "collections.OrderedDict", "collections.defaultdict",
     "collections.Counter"}
)  # fmt: skip
_SET_TYPES: Final = {
    "builtins.set": "builtins.set",
    "__builtin__.set": "builtins.set",
    "builtins.frozenset": "builtins.frozenset",
    "__builtin__.frozenset": "builtins.frozenset",
}


def _decode(raw: bytes, encoding: str, *, strict: bool = True) -> str:
    errors = "strict" if strict else "replace"
    if encoding == "escape":  # the quoted text of a protocol 0 STRING
        escaped: bytes = codecs.escape_decode(raw)[0]
        return escaped.decode("latin-1")
    return codecs.decode(raw, encoding, errors)


def build_tree(data: bytes | mmap.mmap, start: int = 0) -> Tree:
    """Walk one pickle starting at `start` and return its value tree.

    Raises `PickleFormatError` (with the byte offset) when it is not a
    complete, well-formed pickle.
    """
    with no_gc():
        return _build_tree(data, start)


def _build_tree(data: bytes | mmap.mmap, start: int) -> Tree:
    tree = Tree()
    n = len(data)
    pos = start
    stack: list[object] = []
    metastack: list[list[object]] = []
    memo: dict[int, object] = {}
    globals_ = tree.globals
    storages = tree.storages

    def fail(message: str) -> PickleFormatError:
        tree.end = pos
        return PickleFormatError(f"{message} at byte {pos}", partial=tree)

    def need(k: int) -> None:
        if pos + k > n:
            raise fail("pickle data was truncated")

    def line() -> bytes:
        end = data.find(b"\n", pos)
        if end < 0:
            raise fail("pickle data was truncated (no end of line)")
        return bytes(data[pos:end])

    def pop() -> object:
        if not stack:
            raise fail("stack underflow")
        return stack.pop()

    def top() -> object:
        if not stack:
            raise fail("stack underflow")
        return stack[-1]

    def pop_mark() -> list[object]:
        nonlocal stack
        if not metastack:
            raise fail("no MARK on the stack")
        items = stack
        stack = metastack.pop()
        return items

    def push_global(module: str, attr: str) -> None:
        globals_[(module, attr)] += 1
        stack.append(GlobalName(f"{module}.{attr}"))

    def string(at: int, size: int, encoding: str) -> object:
        if size > _KEEP_STR:
            return LongStr(data, at, at + size, encoding)
        try:
            return _decode(bytes(data[at : at + size]), encoding)
        except ValueError:
            raise fail("invalid string data") from None

    def name_of(value: object) -> str | None:
        if isinstance(value, str):
            return value
        if isinstance(value, LongStr):
            try:
                return value.text()
            except ValueError:
                raise fail("invalid string data") from None
        return None

    def persistent(pid: object) -> object:
        if isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage":
            kind, key, location, numel = pid[1], pid[2], pid[3], pid[4]
            if type(key) is int:
                key = str(key)  # torch reads `f"data/{key}"`, as `machine.note_storage` keys it
            if isinstance(key, str) and isinstance(numel, int) and not isinstance(numel, bool):
                found = storages.get(key)
                if found is not None:
                    return found
                type_name = kind.name if isinstance(kind, GlobalName) else "?"
                dtype = storage_dtype(type_name) or "?"
                storage = Storage(
                    key,
                    type_name,
                    dtype,
                    dtype_itemsize(dtype),
                    location if isinstance(location, str) else "?",
                    numel,
                )
                storages[key] = storage
                return storage
        return Opaque("persistent id")

    while True:
        if pos >= n:
            raise fail("pickle data was truncated (no STOP)")
        op = data[pos]
        pos += 1
        if op == LONG_BINPUT or op == BINPUT or op == PUT or op == MEMOIZE:
            if op == LONG_BINPUT:
                need(4)
                idx = int.from_bytes(data[pos : pos + 4], "little")
                pos += 4
            elif op == BINPUT:
                need(1)
                idx = data[pos]
                pos += 1
            elif op == PUT:
                raw = line()
                pos += len(raw) + 1
                try:
                    idx = int(raw)
                except ValueError:
                    raise fail("bad PUT index") from None
            else:
                idx = len(memo)
            memo[idx] = top()
        elif op == BINGET or op == LONG_BINGET or op == GET:
            if op == BINGET:
                need(1)
                idx = data[pos]
                pos += 1
            elif op == LONG_BINGET:
                need(4)
                idx = int.from_bytes(data[pos : pos + 4], "little")
                pos += 4
            else:
                raw = line()
                pos += len(raw) + 1
                try:
                    idx = int(raw)
                except ValueError:
                    raise fail("bad GET index") from None
            try:
                stack.append(memo[idx])
            except KeyError:
                raise fail(f"memo key {idx} was never stored") from None
        elif op == BINUNICODE or op == SHORT_BINUNICODE or op == BINUNICODE8:
            width = 4 if op == BINUNICODE else 1 if op == SHORT_BINUNICODE else 8
            need(width)
            size = int.from_bytes(data[pos : pos + width], "little")
            pos += width
            need(size)
            stack.append(string(pos, size, "utf-8"))
            pos += size
        elif op == BININT1:
            need(1)
            stack.append(data[pos])
            pos += 1
        elif op == REDUCE:
            args = pop()
            func = pop()
            made = _call(func, args, "REDUCE")
            if type(made) is Tensor:
                tree.tensors.append(made)
            stack.append(made)
        elif op == MARK:
            metastack.append(stack)
            stack = []
        elif op == TUPLE:
            items = pop_mark()
            stack.append(tuple(items))
        elif op == TUPLE1:
            stack.append((pop(),))
        elif op == TUPLE2:
            b = pop()
            stack.append((pop(), b))
        elif op == TUPLE3:
            c = pop()
            b = pop()
            stack.append((pop(), b, c))
        elif op == EMPTY_TUPLE:
            stack.append(())
        elif op == NEWFALSE or op == NEWTRUE:
            stack.append(op == NEWTRUE)
        elif op == NONE:
            stack.append(None)
        elif op == BINPERSID:
            stack.append(persistent(pop()))
        elif op == PERSID:
            raw = line()
            pos += len(raw) + 1
            stack.append(Opaque("text persistent id"))
        elif op == BININT:
            need(4)
            stack.append(int.from_bytes(data[pos : pos + 4], "little", signed=True))
            pos += 4
        elif op == BININT2:
            need(2)
            stack.append(int.from_bytes(data[pos : pos + 2], "little"))
            pos += 2
        elif op == BINFLOAT:
            need(8)
            stack.append(struct.unpack(">d", data[pos : pos + 8])[0])
            pos += 8
        elif op == LONG1 or op == LONG4:
            width = 1 if op == LONG1 else 4
            need(width)
            size = int.from_bytes(data[pos : pos + width], "little")
            pos += width
            need(size)
            if size > _KEEP_INT_BYTES:
                stack.append(BigInt(size))
            else:
                stack.append(int.from_bytes(data[pos : pos + size], "little", signed=True))
            pos += size
        elif op == SETITEMS or op == SETITEM:
            if op == SETITEMS:
                items = pop_mark()
                if len(items) % 2:
                    raise fail("SETITEMS with an odd number of items")
            else:
                value = pop()
                items = [pop(), value]
            target = top()
            if isinstance(target, Mapping):
                for i in range(0, len(items), 2):
                    target.set(items[i], items[i + 1])
            elif isinstance(target, Object):
                target.items.extend(zip(items[::2], items[1::2], strict=True))
        elif op == APPENDS or op == APPEND:
            items = pop_mark() if op == APPENDS else [pop()]
            target = top()
            if isinstance(target, (Sequence, Object)):
                target.items.extend(items)
        elif op == EMPTY_DICT:
            stack.append(Mapping())
        elif op == EMPTY_LIST:
            stack.append(Sequence())
        elif op == EMPTY_SET:
            stack.append(SetNode("builtins.set"))
        elif op == BUILD:
            state = pop()
            _build(top(), state)
        elif op == NEWOBJ:
            args = pop()
            cls = pop()
            stack.append(_call(cls, args, "NEWOBJ"))
        elif op == NEWOBJ_EX:
            pop()
            args = pop()
            cls = pop()
            stack.append(_call(cls, args, "NEWOBJ_EX"))
        elif op == GLOBAL or op == INST:
            module_raw = line()
            pos += len(module_raw) + 1
            attr_raw = line()
            pos += len(attr_raw) + 1
            try:
                module, attr = module_raw.decode("utf-8"), attr_raw.decode("utf-8")
            except UnicodeDecodeError:
                raise fail("global name is not valid UTF-8") from None
            if op == GLOBAL:
                push_global(module, attr)
            else:
                args = tuple(pop_mark())
                push_global(module, attr)
                stack.append(_call(stack.pop(), args, "INST"))
        elif op == STACK_GLOBAL:
            attr_v = pop()
            module_v = pop()
            module_s, attr_s = name_of(module_v), name_of(attr_v)
            if module_s is None or attr_s is None:
                parts = [_type_of(v) for v in (module_v, attr_v)]
                push_global(DYNAMIC_GLOBAL, f"from {parts[0]} and {parts[1]}")
            else:
                push_global(module_s, attr_s)
        elif op == OBJ:
            items = pop_mark()
            if not items:
                raise fail("OBJ without a class")
            stack.append(_call(items[0], tuple(items[1:]), "OBJ"))
        elif op == EXT1 or op == EXT2 or op == EXT4:
            width = 1 if op == EXT1 else 2 if op == EXT2 else 4
            need(width)
            code = int.from_bytes(data[pos : pos + width], "little")
            pos += width
            push_global("copyreg.extension", str(code))
        elif op in (BINBYTES, SHORT_BINBYTES, BINBYTES8, BYTEARRAY8, BINSTRING, SHORT_BINSTRING):
            width = 1 if op in (SHORT_BINBYTES, SHORT_BINSTRING) else 4
            if op in (BINBYTES8, BYTEARRAY8):
                width = 8
            need(width)
            size = int.from_bytes(data[pos : pos + width], "little", signed=op == BINSTRING)
            pos += width
            if size < 0:
                raise fail("negative string size")
            need(size)
            if op in (BINSTRING, SHORT_BINSTRING):
                stack.append(string(pos, size, "latin-1"))
            else:
                head = bytes(data[pos : pos + size]) if size <= _KEEP_BYTES else None
                stack.append(Blob("bytearray" if op == BYTEARRAY8 else "bytes", size, head))
            pos += size
        elif op in (FLOAT, INT, LONG, STRING, UNICODE):
            raw = line()
            at = pos
            pos += len(raw) + 1
            if op == STRING:
                if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
                    raise fail("the STRING opcode argument must be quoted")
                stack.append(string(at + 1, len(raw) - 2, "escape"))
            elif op == UNICODE:
                stack.append(string(at, len(raw), "raw-unicode-escape"))
            elif op == INT and raw in (b"00", b"01"):
                stack.append(raw == b"01")
            else:
                stack.append(_number(raw, op))
        elif op == DICT:
            items = pop_mark()
            mapping = Mapping()
            for i in range(0, len(items) - 1, 2):
                mapping.set(items[i], items[i + 1])
            stack.append(mapping)
        elif op == LIST:
            seq = Sequence()
            seq.items = pop_mark()
            stack.append(seq)
        elif op == FROZENSET:
            items = pop_mark()  # rebinds `stack`: pop before appending
            stack.append(SetNode("builtins.frozenset", items))
        elif op == ADDITEMS:
            items = pop_mark()
            target = top()
            if isinstance(target, SetNode):
                target.items.extend(items)
        elif op == POP:
            if stack:
                stack.pop()
            else:
                pop_mark()
        elif op == POP_MARK:
            pop_mark()
        elif op == DUP:
            stack.append(top())
        elif op == PROTO:
            need(1)
            tree.protocol = data[pos]
            pos += 1
        elif op == FRAME:
            need(8)
            pos += 8
        elif op == NEXT_BUFFER:
            stack.append(Opaque("out-of-band buffer"))
        elif op == READONLY_BUFFER:
            top()
        elif op == STOP:
            tree.root = pop()
            tree.end = pos
            return tree
        else:
            pos -= 1
            raise fail(f"invalid pickle opcode 0x{op:02x}")


def _number(raw: bytes, op: int) -> object:
    text = raw.decode("latin-1").strip()
    try:
        if op == FLOAT:
            return float(text)
        return int(text.rstrip("L"))
    except ValueError:  # also Python's limit on very long integer text
        return BigInt(len(raw))


def _type_of(value: object) -> str:
    if isinstance(value, str):
        return "builtins.str"
    return type_name(value)


def type_name(value: object) -> str:
    """The `module.name` of the type a node (or constant) stands for."""
    if isinstance(value, (Tensor, Sequence, Mapping, SetNode, NdArray)):
        return value.type_name
    if isinstance(value, Object):
        return value.maker or "<unknown>"
    if isinstance(value, Storage):
        return value.type_name
    if isinstance(value, Blob):
        return f"builtins.{value.kind}"
    if isinstance(value, (LongStr,)):
        return "builtins.str"
    if isinstance(value, BigInt):
        return "builtins.int"
    if isinstance(value, NpDtype):
        return "numpy.dtype"
    if isinstance(value, GlobalName):
        return value.name
    if isinstance(value, Opaque):
        return f"<{value.what}>"
    if value is None:
        return "builtins.NoneType"
    return f"builtins.{type(value).__name__}"


def _call(func: object, args: object, how: str) -> object:
    """The node for `func(*args)` (REDUCE) or `cls.__new__(cls, *args)` (NEWOBJ, INST, OBJ)."""
    if not isinstance(func, GlobalName):
        return Object(None, args, how)
    name = func.name
    argv = args if isinstance(args, tuple) else ()
    if how == "REDUCE":
        made = _known_reduce(name, argv)
        if made is not None:
            return made
    if name in _MAPPING_TYPES:
        mapping = Mapping("builtins.dict" if name == "__builtin__.dict" else name)
        if argv and isinstance(argv[0], Mapping) and name != "collections.defaultdict":
            for key, value in argv[0].items:
                mapping.set(key, value)
        elif name == "collections.defaultdict" and argv:
            mapping.state = ("default_factory", argv[0])
        return mapping
    if name in _SET_TYPES:
        items = argv[0].items if argv and isinstance(argv[0], (Sequence, SetNode)) else []
        return SetNode(_SET_TYPES[name], list(items))
    if name in ("builtins.list", "__builtin__.list"):
        seq = Sequence()
        if argv and isinstance(argv[0], (Sequence, SetNode)):
            seq.items = list(argv[0].items)
        return seq
    if numpy_core_rest(name) == "multiarray._reconstruct" and argv:
        first = argv[0]
        return NdArray(first.name if isinstance(first, GlobalName) else "numpy.ndarray")
    return Object(name, args, how)


def _known_reduce(name: str, argv: tuple[object, ...]) -> object:
    """What torch's and numpy's rebuild functions make, read from their arguments."""
    if name.startswith("torch._utils._rebuild_") or name.startswith("torch._tensor._rebuild_"):
        return _torch_rebuild(name, argv)
    if name == "numpy.dtype" and argv and isinstance(argv[0], str):
        return NpDtype(argv[0])
    if numpy_core_rest(name) == "multiarray.scalar" and len(argv) >= 2:
        value = numpy_scalar_value(argv[0], argv[1])
        if value is not _ABSENT:
            code = argv[0].code if isinstance(argv[0], NpDtype) else "?"
            return NumpyScalar(numpy_dtype_name(code), value)
        return None
    if name == "_codecs.encode" and len(argv) == 2 and argv[1] in ("latin1", "latin-1"):
        text = argv[0]
        if isinstance(text, str):
            try:
                raw = text.encode("latin-1")
            except UnicodeEncodeError:
                return None
            return Blob("bytes", len(raw), raw if len(raw) <= _KEEP_BYTES else None)
        if isinstance(text, LongStr):
            return Blob("bytes", text.size, None)
    if name in ("builtins.bytearray", "__builtin__.bytearray") and argv:
        first = argv[0]
        size = first.size if isinstance(first, Blob) else None
        if size is not None:
            return Blob("bytearray", size, first.head if isinstance(first, Blob) else None)
    if name in ("builtins.complex", "__builtin__.complex") and 1 <= len(argv) <= 2:
        parts = [a for a in argv if isinstance(a, (int, float)) and not isinstance(a, bool)]
        if len(parts) == len(argv):
            return complex(*parts)
    return None


class NumpyScalar(Node):
    """A numpy scalar whose value the pickle holds (`numpy.float64(0.5)`)."""

    __slots__ = ("dtype", "value")

    def __init__(self, dtype: str, value: object) -> None:
        self.dtype, self.value = dtype, value


def _ints(value: object) -> tuple[int, ...] | None:
    # Negative numbers are kept: a negative size or stride is what `set_` refuses,
    # and the record checks (`scan.storages`) must see it to say so.
    if isinstance(value, tuple) and all(type(v) is int for v in value):
        return value
    return None


def _torch_rebuild(name: str, a: tuple[object, ...]) -> object:
    fn = name.rpartition(".")[2]
    if name in STRIDED_REBUILDERS and len(a) >= 4:
        t = Tensor(fn)
        storage = a[0]
        if isinstance(storage, Storage):
            t.storage = storage
            t.dtype = storage.dtype
            t.location = storage.location
        t.offset = a[1] if type(a[1]) is int else None
        t.shape, t.stride = _ints(a[2]), _ints(a[3])
        if fn == "_rebuild_tensor_v3" and len(a) >= 7:
            t.dtype = _torch_dtype(a[6]) or "?"
        if fn == "_rebuild_qtensor":
            t.layout = "quantized"
            rg = a[5] if len(a) > 5 else None
        else:
            rg = a[4] if len(a) > 4 else None
        t.requires_grad = rg if isinstance(rg, bool) else None
        return t
    if fn in ("_rebuild_parameter", "_rebuild_parameter_with_state") and a:
        data = a[0]
        if isinstance(data, Tensor):
            p = data.copy(fn, "torch.nn.parameter.Parameter")
            p.requires_grad = a[1] if len(a) > 1 and isinstance(a[1], bool) else None
            if fn == "_rebuild_parameter_with_state" and len(a) > 3:
                p.state = a[3]
            return p
        return None
    if fn == "_rebuild_from_type_v2" and len(a) >= 3:  # (func, type, args, state)
        func, cls, args = a[0], a[1], a[2]
        inner = _call(func, args, "REDUCE") if isinstance(args, tuple) else None
        if isinstance(inner, Tensor) and isinstance(cls, GlobalName):
            out = inner.copy(inner.rebuild, cls.name)
            out.state = a[3] if len(a) > 3 else None
            return out
        return None
    if fn == "_rebuild_meta_tensor_no_storage" and len(a) >= 3:  # (dtype, size, stride, rg)
        t = Tensor(fn)
        t.dtype, t.shape, t.stride = _torch_dtype(a[0]) or "?", _ints(a[1]), _ints(a[2])
        t.layout, t.location = "meta", "meta"
        return t
    if fn == "_rebuild_wrapper_subclass" and len(a) >= 7:
        # (cls, dtype, size, stride, storage_offset, layout, device, requires_grad)
        t = Tensor(fn)
        if isinstance(a[0], GlobalName):
            t.type_name = a[0].name
        t.dtype, t.shape, t.stride = _torch_dtype(a[1]) or "?", _ints(a[2]), _ints(a[3])
        t.layout = "wrapper subclass"
        return t
    if fn == "_rebuild_sparse_tensor" and len(a) >= 2 and isinstance(a[1], tuple):
        t = Tensor(fn)
        t.layout = "sparse"
        parts = [p for p in a[1] if isinstance(p, Tensor)]
        t.parts = list(parts)
        sizes = [p for p in a[1] if _ints(p) is not None and isinstance(p, tuple) and p]
        t.shape = _ints(sizes[0]) if sizes else None
        values = parts[1] if len(parts) > 1 else (parts[0] if parts else None)
        t.dtype = values.dtype if isinstance(values, Tensor) else None
        return t
    if fn == "_rebuild_nested_tensor" and a:
        t = Tensor(fn)
        t.layout = "nested"
        t.parts = [p for p in a if isinstance(p, Tensor)]
        buffer = a[0]
        t.dtype = buffer.dtype if isinstance(buffer, Tensor) else None
        return t
    device_rebuilds = (
        "_rebuild_device_tensor_from_numpy",
        "_rebuild_device_tensor_from_cpu_tensor",
    )
    if fn in device_rebuilds and len(a) >= 3:  # (data, dtype, device, requires_grad)
        t = Tensor(fn)
        data = a[0]
        if isinstance(data, Tensor):
            t = data.copy(fn, data.type_name)
        elif isinstance(data, NdArray):
            t.shape = data.shape
        t.dtype = _torch_dtype(a[1]) or t.dtype
        t.location = _device_text(a[2])
        return t
    return None


def _device_text(value: object) -> str | None:
    if isinstance(value, str):
        return value
    if (
        isinstance(value, Object)
        and value.maker == "torch.device"
        and isinstance(value.args, tuple)
    ):
        return ":".join(str(v) for v in value.args if isinstance(v, (str, int)))
    return None


def _build(target: object, state: object) -> None:
    """BUILD: `target.__setstate__(state)`, or its `__dict__` updated."""
    if isinstance(target, NdArray):
        # (version, shape, dtype, is_fortran, data)
        if isinstance(state, tuple) and len(state) >= 3:
            target.shape = _ints(state[1])
            dtype = state[2]
            if isinstance(dtype, NpDtype):
                target.dtype = numpy_dtype_name(dtype.code)
    elif isinstance(target, NpDtype):
        # (version, byte order, subdtype, names, fields, elsize, alignment, flags)
        if isinstance(state, tuple) and len(state) >= 2 and state[1] in ("<", ">", "|", "="):
            target.order = str(state[1])
    elif isinstance(target, (Object, Mapping, Tensor)):
        target.state = state
