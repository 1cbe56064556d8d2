"""A symbolic pickle machine: what a pickle *would* do, without doing any of it.

`analyze` walks a pickle opcode by opcode, like `pickle.Unpickler`, but every
value it pushes is a tag (`Global`, `Instance`, `T_LIST`, ...) instead of a real
object. Nothing is imported, no callable is ever called, no attribute is set:
the only code that runs is this module's. What comes out is a `PickleFacts`:
every global the pickle names (as written, `module.name`), how it is reached
(GLOBAL, STACK_GLOBAL via the memo, INST/OBJ, EXT codes), every call, every
BUILD and the type it targets, every APPEND/SETITEM on something that is not a
plain list or dict, every persistent id, and the set of opcodes used.

Those facts do not depend on torch. `scan.rules.TorchRules` turns them into a
verdict for one torch version, so one scan can be judged against any reader.

Every protocol (0 to 5) is understood. Malformed input raises
`PickleFormatError`, never anything else; the error carries the facts
gathered up to the bad byte (`partial`), because a real unpickler would
already have run everything before it. Lengths are checked against the
buffer before anything is read, so a declared length of 2**63 costs nothing;
memory stays linear in the pickle's size and nothing recurses, so a pickle
nested 100,000 levels deep is walked like a flat one.
"""

from __future__ import annotations

import codecs
import mmap
import pickletools
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final, TypeGuard

from ..errors import PickleFormatError
from .names import DYNAMIC_GLOBAL, is_numpy_dtype_class, numpy_spellings

if TYPE_CHECKING:
    from .numpy_reader import ReaderNumpy

# Opcode bytes by name, from `pickletools` (the standard library's own
# table). Module-level ints, because the loop below compares against them
# millions of times and a global int compare is the cheapest test there is.
OPCODE_NAMES: Final[dict[int, str]] = {ord(op.code): op.name for op in pickletools.opcodes}
_BYTE: Final[dict[str, int]] = {name: code for code, name in OPCODE_NAMES.items()}
(
    MARK, STOP, POP, POP_MARK, DUP, FLOAT, INT, BININT, BININT1, LONG, BININT2, NONE,
    PERSID, BINPERSID, REDUCE, STRING, BINSTRING, SHORT_BINSTRING, UNICODE, BINUNICODE,
    APPEND, BUILD, GLOBAL, DICT, EMPTY_DICT, APPENDS, GET, BINGET, INST, LONG_BINGET,
    LIST, EMPTY_LIST, OBJ, PUT, BINPUT, LONG_BINPUT, SETITEM, TUPLE, EMPTY_TUPLE,
    SETITEMS, BINFLOAT, PROTO, NEWOBJ, EXT1, EXT2, EXT4, TUPLE1, TUPLE2, TUPLE3,
    NEWTRUE, NEWFALSE, LONG1, LONG4, BINBYTES, SHORT_BINBYTES, SHORT_BINUNICODE,
    BINUNICODE8, BINBYTES8, EMPTY_SET, ADDITEMS, FROZENSET, NEWOBJ_EX, STACK_GLOBAL,
    MEMOIZE, FRAME, BYTEARRAY8, NEXT_BUFFER, READONLY_BUFFER,
) = (_BYTE[name] for name in (
    "MARK", "STOP", "POP", "POP_MARK", "DUP", "FLOAT", "INT", "BININT", "BININT1", "LONG",
    "BININT2", "NONE", "PERSID", "BINPERSID", "REDUCE", "STRING", "BINSTRING",
    "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "APPEND", "BUILD", "GLOBAL", "DICT",
    "EMPTY_DICT", "APPENDS", "GET", "BINGET", "INST", "LONG_BINGET", "LIST", "EMPTY_LIST",
    "OBJ", "PUT", "BINPUT", "LONG_BINPUT", "SETITEM", "TUPLE", "EMPTY_TUPLE", "SETITEMS",
    "BINFLOAT", "PROTO", "NEWOBJ", "EXT1", "EXT2", "EXT4", "TUPLE1", "TUPLE2", "TUPLE3",
    "NEWTRUE", "NEWFALSE", "LONG1", "LONG4", "BINBYTES", "SHORT_BINBYTES",
    "SHORT_BINUNICODE", "BINUNICODE8", "BINBYTES8", "EMPTY_SET", "ADDITEMS", "FROZENSET",
    "NEWOBJ_EX", "STACK_GLOBAL", "MEMOIZE", "FRAME", "BYTEARRAY8", "NEXT_BUFFER",
    "READONLY_BUFFER",
))  # fmt: skip

# Strings longer than this are pushed as a tag: nothing we reason about
# (dtype codes, persistent-id kinds, module names) is that long.
_KEEP_STR: Final = 256


class Global:
    """A global the pickle pushed (`module.name` exactly as written)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return f"Global({self.name})"


class Instance:
    """An object the pickle would create; `type_name` is its class, if known."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str | None) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return f"Instance({self.type_name})"


class StorageRef(Instance):
    """A storage a persistent id loads: `key` names its `data/<key>` record (None: unread)."""

    __slots__ = ("key",)

    def __init__(self, key: str | None) -> None:
        super().__init__("torch.storage.UntypedStorage")
        self.key = key


class _Tag:
    """A value whose only interesting property is its builtin type."""

    __slots__ = ("type_name",)

    def __init__(self, type_name: str) -> None:
        self.type_name = type_name

    def __repr__(self) -> str:
        return self.type_name


T_LIST, T_DICT, T_SET, T_FROZENSET, T_BYTES, T_BYTEARRAY, T_NUMBER, T_BUFFER = (
    _Tag("builtins.list"),
    _Tag("builtins.dict"),
    _Tag("builtins.set"),
    _Tag("builtins.frozenset"),
    _Tag("builtins.bytes"),
    _Tag("builtins.bytearray"),
    _Tag("builtins.int"),
    _Tag("pickle.PickleBuffer"),
)


class LongStr(_Tag):
    """A string longer than `_KEEP_STR`: where it lies, decoded only if a global needs it.

    Decoding every long string would cost time on big pickles; dropping them
    would let a pickle hide a global's name in one (STACK_GLOBAL takes any
    two strings, and `posixpath` + `os.path.os.path...os.system` is a valid
    dotted name of 300 characters), so the location is kept instead.
    """

    __slots__ = ("encoding", "end", "start")

    def __init__(self, start: int, end: int, encoding: str) -> None:
        super().__init__("builtins.str")
        self.start, self.end, self.encoding = start, end, encoding

    def text(self, data: bytes | mmap.mmap) -> str:
        """The string itself (raises ValueError, as the opcode would, when it is malformed)."""
        return _decode(data[self.start : self.end], self.encoding)


def _decode(raw: bytes, encoding: str) -> str:
    """A string opcode's text; ValueError (UnicodeDecodeError is one) when malformed."""
    if encoding == "escape":  # the quoted text of a protocol 0 STRING
        escaped: bytes = codecs.escape_decode(raw)[0]
        return escaped.decode("latin-1")
    return codecs.decode(raw, encoding)


class _Mark:
    __slots__ = ()


_MARK_ON_STACK: Final = _Mark()


def type_name_of(value: object) -> str:
    """The `module.name` of the type a symbolic value stands for."""
    if isinstance(value, Instance):
        return value.type_name or "<unknown>"
    if isinstance(value, _Tag):
        return value.type_name
    if isinstance(value, Global):
        return f"<class or function {value.name}>"
    if value is None:
        return "builtins.NoneType"
    return f"builtins.{type(value).__name__}"


@dataclass
class GlobalRef:
    """One global named by the pickle."""

    name: str
    module: str
    attr: str
    opcodes: set[str] = field(default_factory=set)
    count: int = 0  # opcodes naming it (GLOBAL, STACK_GLOBAL, INST, EXT); memo reuse not counted
    first_offset: int = 0


#: A tensor's place in its storage, as its rebuild function's arguments say:
#: (its storage's key, offset, shape, stride, and for `_rebuild_tensor_v3`, whose
#: storage is untyped, the `torch.<dtype>` global it names, else None). A plain
#: tuple: the fast path makes 100,000 of them.
TensorRef = tuple[str, int, tuple[int, ...], tuple[int, ...], str | None]


@dataclass
class PickleFacts:
    """Everything a pickle would do that matters to a restricted unpickler."""

    protocol: int = 0
    end: int = 0
    globals: dict[str, GlobalRef] = field(default_factory=dict)
    opcodes: dict[int, int] = field(default_factory=dict)  # opcode -> first offset
    calls: Counter[tuple[str, str | None]] = field(default_factory=Counter)
    builds: Counter[str] = field(default_factory=Counter)
    appends: Counter[str] = field(default_factory=Counter)
    setitems: Counter[str] = field(default_factory=Counter)
    persistent_ids: Counter[str] = field(default_factory=Counter)
    # The storages torch would read, by key: (storage type, numel) of the first
    # persistent id naming each, as torch caches the first (`scan.storages` checks
    # them against the archive's records). Persistent ids starting with "storage"
    # whose type, key or numel the walk could not read are counted in `unread_storages`.
    storages: dict[str, tuple[str, int]] = field(default_factory=dict)
    unread_storages: int = 0
    # The device tags the storage ids name (`cpu`, `cuda:0`, ...): torch.load puts
    # each storage there (`scan.storages.location_problem`).
    locations: set[str] = field(default_factory=set)
    # Each tensor torch.save's rebuild functions make from a storage:
    # (storage key, offset, shape, stride, dtype of a `_rebuild_tensor_v3`, else None).
    tensors: list[TensorRef] = field(default_factory=list)
    unread_tensors: int = 0
    ext_codes: set[int] = field(default_factory=set)
    # FRAMEs that declare more bytes than the pickle has: pickle's C reader
    # stops there, its pure-Python reader reads on (and so does this walk).
    short_frames: list[tuple[int, int]] = field(default_factory=list)  # (offset, missing)
    # numpy dtypes whose BUILD state may hide object fields (`hides_objects`), by class.
    forged_dtypes: Counter[str] = field(default_factory=Counter)
    # Objects made so far that may be an object dtype (one a structured dtype could hold).
    object_dtypes: int = 0


# What REDUCE of a known callable produces, when that is not "an instance of
# the callable itself". Only the type matters: BUILD checks `type(inst)`.
_TENSOR_REBUILDERS: Final = frozenset(
    f"torch._utils.{n}"
    for n in (
        "_rebuild_tensor",
        "_rebuild_tensor_v2",
        "_rebuild_tensor_v3",
        "_rebuild_sparse_tensor",
        "_rebuild_meta_tensor_no_storage",
        "_rebuild_qtensor",
        "_rebuild_wrapper_subclass",
        "_rebuild_nested_tensor",
        "_rebuild_device_tensor_from_numpy",
        "_rebuild_device_tensor_from_cpu_tensor",
    )
)
_PARAMETER_REBUILDERS: Final = frozenset(
    {"torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state"}
)
_RECONSTRUCTORS: Final = frozenset(
    {*numpy_spellings("numpy.core.multiarray._reconstruct"), "copyreg._reconstructor"}
)


class TypeResolver:
    """Names the types that only exist at BUILD time (numpy's dtype and RNG classes).

    The answer depends on the reader's numpy (`numpy.dtypes.Float64DType` on
    numpy >= 1.25, `numpy.dtype[float64]` before): `numpy` is that reader's
    (`reader.ReaderNumpy`; default: the numpy installed here). The offline
    numpy table answers without importing numpy; numpy itself is asked only
    with inputs that cannot run code (a dtype code string, a class name).
    """

    def __init__(self, numpy: ReaderNumpy | None = None) -> None:
        self._numpy = numpy
        self._dtype_cache: dict[str, str | None] = {}

    @property
    def numpy(self) -> ReaderNumpy:
        """The reader's numpy (the installed one is looked up on first use)."""
        if self._numpy is None:
            from .numpy_reader import ReaderNumpy

            self._numpy = ReaderNumpy.here()
        return self._numpy

    def dtype_class(self, code: object) -> str | None:
        """`numpy.dtypes.Float64DType` for `'f8'`, under the reader's numpy."""
        if not isinstance(code, str) or not _is_dtype_code(code):
            return None
        if code not in self._dtype_cache:
            self._dtype_cache[code] = self.numpy.dtype_class(code)
        return self._dtype_cache[code]

    def numpy_random(self, key: str) -> str:
        """`module.qualname` of a numpy.random class, e.g. `RandomState`."""
        return self.numpy.random_class(key)

    def missing(self, facts: PickleFacts) -> dict[str, str]:
        """The globals of `facts` that name nothing under the reader's numpy, with the reason."""
        out = {}
        for name, ref in facts.globals.items():
            if ref.module.startswith("numpy") and (why := self.numpy.missing(name)):
                out[name] = why
        return out

    def reduce_result(self, func: str, args: object) -> str | None:
        """The type REDUCE of `func` would produce; the callable itself by default."""
        if func in _TENSOR_REBUILDERS:
            return "torch.Tensor"
        if func in _PARAMETER_REBUILDERS:
            return "torch.nn.parameter.Parameter"
        first = args[0] if isinstance(args, tuple) and args else None
        if func == "numpy.dtype":
            return self.dtype_class(first) or func
        if func in _RECONSTRUCTORS:
            return first.name if isinstance(first, Global) else None
        if func.startswith("numpy.random._pickle."):
            ctor = func.rsplit(".", 1)[1]
            if ctor == "__randomstate_ctor":
                return self.numpy_random("RandomState")
            if ctor == "__generator_ctor":
                return self.numpy_random("Generator")
            if ctor == "__bit_generator_ctor":
                if isinstance(first, Global):
                    return first.name
                return self.numpy_random(first if isinstance(first, str) else "MT19937")
        return func


def _is_dtype_code(code: str) -> bool:
    # Plain type codes like 'f8', '<i4', 'U5', 'M8[ns]', 'b1', 'O8': anything
    # richer (structured dtypes) is left alone rather than parsed.
    return 0 < len(code) <= 16 and all(c.isalnum() or c in "<>|=[]" for c in code)


def analyze(
    data: bytes | mmap.mmap, start: int = 0, *, types: TypeResolver | None = None
) -> PickleFacts:
    """Walk one pickle starting at `start` and return what it would do.

    Raises `PickleFormatError` (with the byte offset) if it is not a complete,
    well-formed pickle.
    """
    types = types or TypeResolver()
    facts = PickleFacts()
    n = len(data)
    pos = start
    stack: list[object] = []
    metastack: list[list[object]] = []
    memo: dict[int, object] = {}
    opcodes = facts.opcodes
    globals_ = facts.globals
    calls = facts.calls

    def fail(message: str) -> PickleFormatError:
        facts.end = pos
        message = f"{message} at byte {pos}"
        if facts.short_frames:
            offset, missing = facts.short_frames[0]
            message += f", after a FRAME at byte {offset} that declares {missing:,} bytes too many"
        return PickleFormatError(message, partial=facts)

    def need(k: int) -> None:
        if pos + k > n:
            raise fail("pickle data was truncated")

    def line() -> bytes:
        end = data.find(b"\n", pos)
        if end < 0:
            raise fail("pickle data was truncated (no end of line)")
        return data[pos:end]

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

    def push_global(module: str, attr: str, opname: str, at: int) -> None:
        name = f"{module}.{attr}"
        ref = globals_.get(name)
        if ref is None:
            ref = globals_[name] = GlobalRef(name, module, attr, first_offset=at)
        ref.opcodes.add(opname)
        ref.count += 1
        stack.append(Global(name))

    def call(opname: str, func: object, args: object) -> Instance:
        if isinstance(func, Global):
            calls[(opname, func.name)] += 1
            if opname == "REDUCE":
                note_tensor(facts, func.name, args)
            made = types.reduce_result(func.name, args) if opname == "REDUCE" else func.name
        else:
            calls[(opname, None)] += 1
            made = None
        if made is None or made in OBJECT_DTYPES or made == "numpy.dtype":
            facts.object_dtypes += 1  # may be an `O` dtype (see `hides_objects`)
        return Instance(made)

    def string(start: int, size: int, encoding: str) -> object:
        if size > _KEEP_STR:
            return LongStr(start, start + size, encoding)
        try:
            return _decode(data[start : start + size], encoding)
        except ValueError:
            raise fail("invalid string data") from None

    def name_of(value: object) -> str | None:
        """A STACK_GLOBAL operand's text; None when it is not a string constant."""
        if isinstance(value, str):
            return value
        if isinstance(value, LongStr):
            try:
                return value.text(data)
            except ValueError:
                raise fail("invalid string data") from None
        return None

    while True:
        if pos >= n:
            raise fail("pickle data was truncated (no STOP)")
        op = data[pos]
        at = pos
        if op not in opcodes:
            opcodes[op] = at
        pos += 1
        # Most frequent first: memo traffic, then strings and small ints.
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
            stack.append(call("REDUCE", func, args))
        elif op == MARK:
            metastack.append(stack)
            stack = []
        elif op == TUPLE:
            items = pop_mark()  # rebinds `stack`: pop before appending
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
            pid = pop()
            facts.persistent_ids[_pid_kind(pid)] += 1
            stack.append(StorageRef(note_storage(facts, pid)))
        elif op == PERSID:
            raw = line()
            pos += len(raw) + 1
            facts.persistent_ids["<text persistent id>"] += 1
            stack.append(Instance(None))
        elif op == BININT or op == BININT2:
            width = 4 if op == BININT else 2
            need(width)
            # The value is kept: a storage's numel is one (`storages`).
            stack.append(int.from_bytes(data[pos : pos + width], "little", signed=op == BININT))
            pos += width
        elif op == BINFLOAT:
            need(8)
            pos += 8
            stack.append(T_NUMBER)
        elif op == LONG1 or op == LONG4:
            width = 1 if op == LONG1 else 4
            need(width)
            size = int.from_bytes(data[pos : pos + width], "little")
            pos += width
            need(size)
            # numels past 2**31 are LONG1s; a longer number is no numel torch reads.
            number = data[pos : pos + size] if size <= 8 else None
            pos += size
            stack.append(
                T_NUMBER if number is None else int.from_bytes(number, "little", signed=True)
            )
        elif op == SETITEMS or op == SETITEM:
            if op == SETITEMS:
                items = pop_mark()
                if len(items) % 2:
                    raise fail("SETITEMS with an odd number of items")
            else:
                pop()
                pop()
            target = top()
            if target is not T_DICT:
                facts.setitems[type_name_of(target)] += 1
        elif op == APPENDS or op == APPEND:
            if op == APPENDS:
                pop_mark()
            else:
                pop()
            target = top()
            if target is not T_LIST:
                facts.appends[type_name_of(target)] += 1
        elif op == EMPTY_DICT:
            stack.append(T_DICT)
        elif op == EMPTY_LIST:
            stack.append(T_LIST)
        elif op == EMPTY_SET:
            stack.append(T_SET)
        elif op == BUILD:
            state = pop()
            target = top()
            target_type = type_name_of(target)
            facts.builds[target_type] += 1
            if isinstance(target, Instance) and hides_objects(
                target_type, state, object_fields=facts.object_dtypes > 0
            ):
                facts.forged_dtypes[target_type] += 1
        elif op == NEWOBJ:
            args = pop()
            cls = pop()
            stack.append(call("NEWOBJ", cls, args))
        elif op == NEWOBJ_EX:
            pop()
            args = pop()
            cls = pop()
            stack.append(call("NEWOBJ_EX", cls, args))
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
                push_global(module, attr, "GLOBAL", at)
            else:
                args = tuple(pop_mark())
                push_global(module, attr, "INST", at)
                stack.append(call("INST", stack.pop(), args))
        elif op == STACK_GLOBAL:
            attr_v = pop()
            module_v = pop()
            module_s, attr_s = name_of(module_v), name_of(attr_v)
            if module_s is None or attr_s is None:
                # `pickle` takes any two strings, including ones a call just
                # returned (say, after a BUILD rewrote a module's attributes):
                # whatever it names, the file decides at load time.
                parts = [type_name_of(v) for v in (module_v, attr_v)]
                push_global(DYNAMIC_GLOBAL, f"from {parts[0]} and {parts[1]}", "STACK_GLOBAL", at)
            else:
                push_global(module_s, attr_s, "STACK_GLOBAL", at)
        elif op == OBJ:
            items = pop_mark()
            if not items:
                raise fail("OBJ without a class")
            stack.append(call("OBJ", items[0], tuple(items[1:])))
        elif op == EXT1 or op == EXT2 or op == EXT4:
            width = 1 if op == EXT1 else 2 if op == EXT2 else 4
            need(width)
            code = int.from_bytes(data[pos : pos + width], "little")
            pos += width
            facts.ext_codes.add(code)
            # The module/name behind an EXT code lives in the *reader's*
            # copyreg registry, not in the file: name it by its code.
            push_global("copyreg.extension", str(code), OPCODE_NAMES[op], at)
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
                # Python 2 str: torch decodes it (utf-8), plain pickle may keep bytes.
                stack.append(string(pos, size, "latin-1"))
            else:
                stack.append(T_BYTEARRAY if op == BYTEARRAY8 else T_BYTES)
            pos += size
        elif op in (FLOAT, INT, LONG, STRING, UNICODE):
            raw = line()
            start = pos
            pos += len(raw) + 1
            if op == STRING:
                # Quoted and backslash-escaped, as `pickle` reads it: "\x6fs" is "os".
                if len(raw) < 2 or raw[0] != raw[-1] or raw[:1] not in (b"'", b'"'):
                    raise fail("the STRING opcode argument must be quoted")
                stack.append(string(start + 1, len(raw) - 2, "escape"))
            elif op == UNICODE:
                # raw-unicode-escape, as `pickle` reads it: "\u006fs" is "os".
                stack.append(string(start, len(raw), "raw-unicode-escape"))
            elif op == INT and raw in (b"00", b"01"):
                stack.append(raw == b"01")
            else:
                stack.append(T_NUMBER)
        elif op == DICT:
            pop_mark()
            stack.append(T_DICT)
        elif op == LIST:
            pop_mark()
            stack.append(T_LIST)
        elif op == FROZENSET:
            pop_mark()
            stack.append(T_FROZENSET)
        elif op == ADDITEMS:
            pop_mark()
            target = top()
            if target is not T_SET:
                facts.appends[type_name_of(target)] += 1
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
            facts.protocol = data[pos]
            pos += 1
        elif op == FRAME:
            need(8)
            size = int.from_bytes(data[pos : pos + 8], "little")
            pos += 8
            # pickle's C reader reads the whole frame first and fails on a short
            # one; its pure-Python reader reads what there is and goes on, so
            # the walk goes on too: what follows is what that reader runs.
            if pos + size > n:
                facts.short_frames.append((at, pos + size - n))
        elif op == NEXT_BUFFER:
            stack.append(T_BUFFER)
        elif op == READONLY_BUFFER:
            top()
        elif op == STOP:
            pop()
            facts.end = pos
            return facts
        else:
            raise fail(f"invalid pickle opcode 0x{op:02x}")


#: numpy's object dtype class, as numpy >= 1.25 and older numpy name it.
OBJECT_DTYPES: Final = frozenset({"numpy.dtypes.ObjectDType", "numpy.dtype[object_]"})


def hides_objects(type_name: str, state: object, *, object_fields: bool = True) -> bool:
    """Whether a numpy dtype's BUILD state can make numpy read object pointers from raw bytes.

    numpy's `dtype.__setstate__` trusts the flags the state gives (its 8th
    item): a dtype that holds objects (an `O` dtype, or a structured or
    subarray dtype with an object field) but whose flags deny it makes
    numpy fill the array from the pickle's raw bytes, pointers included.
    numpy writes flags with the object bit (63) for every dtype that holds
    objects, and builtin dtypes carry no fields. So an object dtype whose
    flags are not a number with the object bit is forged, and so is a
    structured or subarray one when the pickle made an object dtype it could
    hold (`object_fields`; the fields' dtypes themselves are not followed).
    """
    if type_name != "numpy.dtype" and not is_numpy_dtype_class(type_name):
        return False
    if not isinstance(state, tuple) or len(state) < 8:
        return False  # older layouts: numpy computes the flags itself
    flags = state[7]
    if isinstance(flags, int) and flags & 1:
        return False  # says it holds objects: numpy unpickles them as objects
    if type_name in OBJECT_DTYPES:
        return True
    # A dtype class the scan could not name (its code is not a literal numpy
    # reads here) counts as not holding objects itself: such a code fails to load.
    return object_fields and any(part is not None for part in state[2:5])


def note_storage(facts: PickleFacts, pid: object) -> str | None:
    """Record a storage persistent id, `('storage', type, key, location, numel)`, in `facts`.

    Returns its key (None when it is no storage id or could not be read).
    """
    if not isinstance(pid, tuple) or not pid or pid[0] != "storage":
        return None
    if len(pid) in (5, 6) and isinstance(pid[3], str):
        # A zip's id has 5 fields, a legacy file's 6 (its view metadata last): the
        # location is the 4th of both.
        facts.locations.add(pid[3])
    if len(pid) == 5:
        kind, key, numel = pid[1], pid[2], pid[4]
        if _is_int(key):
            key = str(key)  # torch reads `f"data/{key}"`
        if isinstance(kind, Global) and isinstance(key, str) and _is_int(numel):
            facts.storages.setdefault(key, (kind.name, numel))
            return key
    facts.unread_storages += 1
    return None


#: The rebuild functions whose first four arguments are (storage, offset, shape, stride),
#: which torch hands to `tensor.set_`.
STRIDED_REBUILDERS: Final = frozenset(
    f"torch._utils.{n}"
    for n in ("_rebuild_tensor", "_rebuild_tensor_v2", "_rebuild_tensor_v3", "_rebuild_qtensor")
)


def note_tensor(facts: PickleFacts, func: str, args: object) -> None:
    """Record the geometry of a tensor `func(*args)` makes from a storage (see `TensorRef`)."""
    if func not in STRIDED_REBUILDERS:
        return
    if isinstance(args, tuple) and len(args) >= 4 and isinstance(args[0], StorageRef):
        key, offset, shape, stride = args[0].key, args[1], _ints(args[2]), _ints(args[3])
        dtype = None
        if func.endswith("_v3") and len(args) >= 7 and isinstance(args[6], Global):
            dtype = args[6].name
        if key is not None and _is_int(offset) and shape is not None and stride is not None:
            facts.tensors.append((key, offset, shape, stride, dtype))
            return
    facts.unread_tensors += 1


def _is_int(value: object) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _ints(value: object) -> tuple[int, ...] | None:
    if isinstance(value, tuple) and all(_is_int(v) for v in value):
        return value
    return None


def _pid_kind(pid: object) -> str:
    """Classify a persistent id the way torch's BINPERSID check does."""
    if isinstance(pid, tuple):
        head = pid[0] if pid else None
        if head == "storage" or head is None:
            return "storage"
        return f"tuple starting with {head!r}"
    if pid is T_NUMBER or isinstance(pid, int):
        return "int"
    return type_name_of(pid)
