"""The fast path for large pickles: one regular-expression pass instead of the machine.

`pickle_vm.analyze` is exact but runs Python code per opcode; on a 15 MB
pickle of 100,000 numpy scalars and tensors that is seconds. Most large
pickles are `torch.save` output of tensors, containers and numpy scalars,
whose only interesting opcodes are their GLOBALs. So: a possessive regular
expression (run in C by `re`) consumes every opcode torch's unpickler
supports *except* GLOBAL and NEWOBJ, Python looks at each GLOBAL, and

- if every global is one whose objects CPython pickles without NEWOBJ and
  without a BUILD of a type the facts would not already name (tensors,
  storages, containers, numpy arrays and scalars: `_FAST_NAMES`), the facts
  are complete: the only hidden requirement left, numpy's dtype classes, is
  read from the dtype codes, which CPython always writes as `(code, False, True)`;
- anything else (another global, an unsupported opcode, NEWOBJ, a dtype
  code read from the memo, a persistent id other than torch.save's storage
  id) returns None and the caller runs the exact machine.

The run stops before each storage id, `('storage', type, key, location,
numel)` then BINPERSID, and one match reads it with the tensor geometry that
follows it (offset, shape, stride): Python records the storage's key, type and
numel and the tensor's place in it, which `scan.storages` checks against the
archive's records, as the exact machine's facts are. A storage id the match
cannot read (a key or location from a memo entry no storage id stored, a
protocol-4 MEMOIZE) sends the pickle to the exact machine: no BINPERSID is ever
passed over unread. Tensors on an untyped storage (`_rebuild_tensor_v3`'s, for
float8, uint16 and other new dtypes: their dtype comes after the geometry) are
counted unread, and the scan says so in a note; the others are checked.

The rest of the pickle's structure is trusted rather than checked, as CPython's
pickler writes it: that APPEND/SETITEM/BUILD target lists, dicts and the
objects their REDUCE made. A hand-made pickle that breaks those rules gets the
matching obstacle from the exact machine only; the globals it names (and so
what can run code) are the same on both paths, which the fuzz tests check
(tests/test_fuzz.py).

The test suite checks that both paths give the same verdict on every file
of the corpus (tests/test_fastscan.py).
"""

from __future__ import annotations

import mmap
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Final

from .machine import OBJECT_DTYPES, GlobalRef, PickleFacts, TypeResolver
from .names import numpy_spellings

# Below this size the exact machine is already fast (~1 ms per 10 kB).
FAST_MIN_BYTES: Final = 1 << 20

_FAST_NAMES: Final = frozenset(
    {
        "collections.OrderedDict", "collections.Counter", "_codecs.encode", "builtins.set",
        "builtins.frozenset", "builtins.complex", "builtins.bytearray", "builtins.slice",
        "builtins.range", "builtins.bytes", "torch.Size", "torch.device",
        "torch.serialization._get_layout", "torch.nn.parameter.Parameter", "numpy.dtype",
        "numpy.ndarray",
        *numpy_spellings("numpy.core.multiarray.scalar"),
        *numpy_spellings("numpy.core.multiarray._reconstruct"),
    }
)  # fmt: skip
_FAST_PATTERN: Final = re.compile(
    r"^torch\.(_utils\._rebuild_(tensor(_v2|_v3)?|parameter|sparse_tensor|qtensor|"
    r"meta_tensor_no_storage|wrapper_subclass|device_tensor_from_cpu_tensor)"
    r"|\w*Storage|storage\.(Untyped|Typed)Storage"
    r"|(u?int\d+|float\d+\w*|bfloat16|complex\d+|bool|half|double|cfloat|cdouble|"
    r"quint\w+|qint\w+|bits\w+|per_\w+|strided|sparse_\w+))$"
)
_RECONSTRUCT = numpy_spellings("numpy.core.multiarray._reconstruct")
# The opcodes of a tensor's record and of a numpy scalar (see `_token_run`).
_TENSOR_RECORD_OPS: Final = bytes(sorted(set(b"()tQR\x85\x86\x87\x88\x89hjqrXKMJ")))

# numpy dtype REDUCE arguments as CPython writes them: (code, False, True),
# i.e. a string, maybe a memo PUT, then NEWFALSE NEWTRUE TUPLE3. The token run
# stops before that ending (it is rare elsewhere), and the code is read
# backwards from it (`_dtype_code`).
# What follows those arguments in CPython's output: the REDUCE, then the BUILD
# state of a plain dtype, `(3 or 4, byte order, None, None, None, ...`; memo
# PUTs may sit between, and the byte-order string may come from the memo. A
# state with a subarray, names or fields (or anything else) goes to the exact
# machine, which checks that such a dtype cannot hide objects (`hides_objects`).
_PUT: Final = rb"(?:q.|r.{4}|\x94)?"
_PLAIN_DTYPE_STATE: Final = re.compile(
    _PUT
    + rb"R"
    + _PUT
    + rb"\(K[\x03\x04](?:X\x01\x00\x00\x00.|\x8c\x01.|h.|j.{4})"
    + _PUT
    + rb"NNN",
    re.DOTALL,
)
# The characters of a dtype code as the fast path accepts it (`\w` of a bytes
# regex, plus numpy's byte-order and unit characters).
_CODE_CHARS: Final = frozenset(
    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_<>|=[]"
)
_MAX_CODE: Final = 16
_BINUNICODE, _SHORT_BINUNICODE, _BINPUT, _LONG_BINPUT, _MEMOIZE = 0x58, 0x8C, 0x71, 0x72, 0x94
_BINGET, _LONG_BINGET = 0x68, 0x6A
# A string of at most this length is matched by a literal-first branch per
# length (`re` skips a failing literal branch without entering it); longer
# ones go through one lookahead per 16 lengths first.
_FLAT_LENGTHS: Final = 32


def _payload(n: int) -> bytes:
    # `....` is measurably faster than `.{4}` in `re`; `.{n}` wins for long runs.
    return b"." * n if n < 8 else b".{%d}" % n


def _counted(opcodes: bytes, width: int) -> bytes:
    """A regex for `opcode + little-endian length + payload`, lengths 0-255.

    `re` cannot read a length, so each length gets its own branch. Short
    strings (the common case: dict keys, dtype codes, storage keys) each get a
    branch that starts with its length byte, which `re` rejects without
    entering it; longer ones are grouped 16 lengths to a lookahead. On the
    strings of a torch.save pickle this is ~3x faster than a binary tree of
    lookaheads (8 nested assertions per string).
    """

    def one(n: int) -> bytes:
        return re.escape(bytes([n])) + b"\x00" * (width - 1) + _payload(n)

    branches = [one(n) for n in range(_FLAT_LENGTHS)]
    for lo in range(_FLAT_LENGTHS, 256, 16):
        hi = min(lo + 15, 255)
        group = b"|".join(one(n) for n in range(lo, hi + 1))
        lookahead = b"(?=[" + re.escape(bytes([lo])) + b"-" + re.escape(bytes([hi])) + b"])"
        branches.append(lookahead + b"(?:" + group + b")")
    return b"[" + re.escape(opcodes) + b"](?:" + b"|".join(branches) + b")"


@lru_cache(maxsize=8)
def _token_run(
    supported: frozenset[int], records: bool = True, storage_get: bytes = b""
) -> re.Pattern[bytes]:
    """A possessive run of the opcodes `supported` that need no Python (all but GLOBAL/NEWOBJ).

    It stops before every storage persistent id (a MARK followed by "storage",
    as a string or as `storage_get`, the memo GET of it), which Python reads
    (`_STORAGE_ID`), and at every BINPERSID it did not read: the storages and
    the tensors on them are what `scan.storages` checks against the archive.

    Every alternative is one opcode with its argument, or a fixed sequence
    of them, all in `supported`: an opcode's first byte fixes its length, so
    the run ends at the same byte whichever alternatives consumed it; the
    sequences only make fewer loop iterations, which is what `re` pays for
    (about 20 ns an iteration, a few more per alternative tried). `records`
    False leaves the two whole-record sequences out (tests compare both).
    """

    def ops(chars: bytes) -> bytes:
        return bytes(c for c in chars if c in supported)

    def cls(chars: bytes) -> bytes:
        return b"[" + re.escape(ops(chars)) + b"]"

    alternatives = []
    # The two records a pickle-heavy checkpoint repeats, whole (tried first: one
    # iteration instead of 15-25). Each is only a sequence of the single-opcode
    # alternatives below, so it consumes nothing they would not; together they
    # take a third off a pickle of tensors and numpy scalars (benchmarks/).
    if records and ops(_TENSOR_RECORD_OPS) == _TENSOR_RECORD_OPS:
        get, put = rb"(?:h.|j....)", rb"(?:r....|q.)"
        # The end of torch.save's record of a tensor, after its geometry (read
        # with its storage id, `_STORAGE_ID`): `requires_grad`, the hooks, REDUCEs.
        alternatives.append(rb"[\x88\x89]" + get + rb"\)R" + put + b"t" + put + b"R" + put)
        # A dict item whose value is a numpy scalar (a metric: {"loss": np.float64}),
        # once the key, the globals and "latin1" are memoized: the key, then
        # scalar(dtype, _codecs.encode(text, "latin1")). (An optional key, or a
        # scalar alone, measured slower: the GET pairs below would misalign it.)
        alternatives.append(
            get + get + get + get + _counted(b"X", 4) + put + get + rb"\x86" + put + b"R"
            + put + rb"\x86" + put + b"R" + put
        )  # fmt: skip
    # A MARK, unless a storage id starts there (Python reads those).
    if ops(b"("):
        marks = [rb"X\x07\x00\x00\x00storage", rb"\x8c\x07storage"]
        if storage_get:
            marks.append(re.escape(storage_get))
        alternatives.append(rb"\((?!" + b"|".join(marks) + b")")
    # Ordered by frequency in torch.save output (protocol 2, > 256 memo
    # entries): an object then its LONG_BINPUT (REDUCE, TUPLEs, EMPTY_DICT/LIST),
    # the other zero-argument opcodes, LONG_BINPUT then BINGET, BINGET pairs,
    # one-byte arguments, strings, four-byte arguments, the rest.
    makers = ops(b"Rt\x85\x86\x87}]")
    if makers and ops(b"r"):
        alternatives.append(cls(makers) + b"r....")
    zero = ops(b")\x85\x86\x87NRbause\x88]}\x8ft")
    if zero:
        alternatives.append(cls(zero))
    # NEWFALSE, except where NEWTRUE TUPLE3 follow: `(code, False, True)` are
    # numpy.dtype's arguments, whose code `analyze_fast` reads (the run stops there).
    if ops(b"\x89"):
        alternatives.append(b"\x89(?!\x88\x87)")
    if ops(b"r") and ops(b"h"):
        alternatives.append(b"r....h.")
    if ops(b"h"):
        alternatives.append(b"h.h.")
    if ops(b"hqK"):
        alternatives.append(cls(b"hqK") + b".")
    if ops(b"X"):
        alternatives.append(_counted(b"X", 4))
    if ops(b"rjJ"):
        alternatives.append(cls(b"rjJ") + b"....")
    if ops(b"M"):
        alternatives.append(b"M..")
    if ops(b"G"):
        alternatives.append(b"G.{8}")
    if ops(b"U\x8a"):
        alternatives.append(_counted(ops(b"U\x8a"), 1))
    # DOTALL: `.` is any byte, and ~20% faster than `[\s\S]`.
    return re.compile(b"(?:" + b"|".join(alternatives) + b")*+", re.DOTALL)


# --- storage ids and the tensors on them -------------------------------------------------

# torch.save's storage id, `('storage', type, key, location, numel)` then BINPERSID,
# as CPython's pickler writes it (protocol 2: strings are BINUNICODE, PUTs are
# BINPUT/LONG_BINPUT), and the geometry that follows it in a tensor's record:
# offset, shape, stride. Groups: the PUT of a "storage" string; the storage type
# (a GLOBAL, its PUT, or a GET); the key (a string, its PUT, or a GET); numel;
# offset, shape and stride. Anything else is left to the exact machine.
_ID_OPS: Final = frozenset(b"(XqrhjcKMJ\x8atQ)\x85\x86\x87")
_P: Final = rb"(?:q.|r....)?"
_INT: Final = (
    rb"(?:K.|M..|J....|\x8a(?:\x01.|\x02..|\x03...|\x04....|\x05.{5}|\x06.{6}|\x07.{7}|\x08.{8}))"
)
# A tuple of ints: its opcodes (in a group, without its PUT) and its PUT.
_SHAPE: Final = (
    rb"(\)|" + _INT + rb"\x85|" + _INT * 2 + rb"\x86|" + _INT * 3 + rb"\x87"
    + rb"|\((?:" + _INT + rb")*+t)" + _P
)  # fmt: skip


@lru_cache(maxsize=8)
def _walk(supported: frozenset[int], storage_get: bytes) -> Callable[..., re.Match[bytes] | None]:
    """`_token_run`, then a storage id and its tensor's geometry if the run stopped at one.

    One match per tensor: the storage id's groups say what it read (see
    `_storage_id`). Without every opcode of a storage id in `supported`, the
    run alone: the MARK of a storage id then stops the walk.
    """
    run = _token_run(supported, storage_get=storage_get)
    if not supported >= _ID_OPS:
        return run.match
    return re.compile(run.pattern + b"(?:" + _storage_id(storage_get) + b")?", re.DOTALL).match


def _storage_id(storage_get: bytes) -> bytes:
    string = _counted(b"X", 4)
    get = re.escape(storage_get) if storage_get else rb"(?!)"
    return (
        rb"\((?:X\x07\x00\x00\x00storage(q.|r....)?|" + get + b")"
        rb"(?:c([^\n]{1,256})\n([^\n]{1,256})\n(q.|r....)?|(h.|j....))"
        rb"(?:(" + string + rb")(q.|r....)?|(h.|j....))"
        rb"(?:(" + string + rb")(q.|r....)?|(h.|j....))"
        rb"(" + _INT + rb")t" + _P + rb"Q"
        rb"(?:(" + _INT + rb")" + _SHAPE + _SHAPE + rb")?"
    )


#: The PUT a GET reads, as CPython pairs them: BINGET <- BINPUT, LONG_BINGET <- LONG_BINPUT.
_PUT_OF: Final = {0x68: b"q", 0x6A: b"r"}


def _int(raw: bytes) -> int:
    """The value of one of `_INT`'s opcodes."""
    op = raw[0]
    if op == 0x4B:  # BININT1
        return raw[1]
    if op == 0x8A:  # LONG1
        return int.from_bytes(raw[2:], "little", signed=True)
    return int.from_bytes(raw[1:], "little", signed=op == 0x4A)  # BININT2, BININT


_INT_SIZE: Final = {0x4B: 2, 0x4D: 3, 0x4A: 5}  # BININT1, BININT2, BININT; LONG1: 2 + n


def _ints(raw: bytes) -> tuple[int, ...]:
    """The numbers of one of `_SHAPE`'s tuples (read in order: a payload can hold any byte)."""
    out = []
    pos, end = (1, len(raw) - 1) if raw[0] == 0x28 else (0, len(raw) - 1)  # MARK ... TUPLE
    while pos < end:
        size = _INT_SIZE.get(raw[pos]) or 2 + raw[pos + 1]
        out.append(_int(raw[pos : pos + size]))
        pos += size
    return tuple(out)


def _geometry(
    offset: bytes, shape: bytes, stride: bytes
) -> tuple[int, tuple[int, ...], tuple[int, ...]]:
    return _int(offset), _ints(shape), _ints(stride)


def is_fast_name(name: str) -> bool:
    """True for globals whose objects the fast path fully understands."""
    return name in _FAST_NAMES or _FAST_PATTERN.match(name) is not None


def analyze_fast(
    data: bytes | mmap.mmap,
    start: int = 0,
    *,
    supported: frozenset[int],
    types: TypeResolver | None = None,
    force: bool = False,
    track: frozenset[int] = frozenset(),
) -> PickleFacts | None:
    """The facts of a large pickle by the fast path, or None when it does not apply.

    Only opcodes in `supported` (the reader torch's) are consumed, so a
    None also covers "uses an opcode this torch lacks". `force` skips the
    size threshold (for the tests that compare both paths).

    `track`: opcodes of `supported` that some reader lacks (when one walk
    serves several torches, `supported` is what any of them reads). Each is
    recorded in `facts.opcodes` at its first offset, as the exact machine
    records it, so that `judge` refuses the pickle for the torches without it.
    """
    n = len(data)
    if not force and n - start < FAST_MIN_BYTES:
        return None
    types = types or TypeResolver()
    facts = PickleFacts()
    pos = start
    if data[pos] == 0x80:  # PROTO
        facts.protocol = data[pos + 1]
        pos += 2
    unseen = track & supported  # consumed by the run only once recorded
    storage_get = b""  # the GET of the "storage" string, once it is memoized
    walk = _walk(supported - unseen, storage_get)
    storages = facts.storages
    tensors = facts.tensors
    # A PUT (BINPUT or LONG_BINPUT with its index) -> the storage type's name or the
    # key's text it stored; `by_get`: the storage types by the GET that reads them.
    memo: dict[bytes, str] = {}
    by_get: dict[bytes, str] = {}
    numels: dict[bytes, int] = {}  # a numel's opcode -> its value (few distinct)
    # (offset, shape, stride) as bytes -> as numbers: few distinct, however many tensors.
    geometry: dict[tuple[bytes, bytes, bytes], tuple[int, tuple[int, ...], tuple[int, ...]]] = {}
    ids = 0  # storage ids read
    # The storages' locations: each literal (its bytes -> its PUT), and the GETs of
    # memoized ones, resolved once the walk is done (a few distinct, however many ids).
    places: dict[bytes, bytes | None] = {}
    place_gets: set[bytes] = set()
    globals_ = facts.globals
    dtype_codes: list[str] = []  # the code of each `(code, False, True)`, in order
    code_in_memo = False
    counted_end = start  # one string cannot be read twice (a LONG_BINPUT can hold a marker)
    dtype_args = {0x89, 0x88, 0x87} <= supported
    plain_states = True  # every dtype's BUILD state is the plain one CPython writes
    while True:
        found = walk(data, pos)
        pos = found.end()  # type: ignore[union-attr]  # a possessive * always matches
        if found.lastindex is not None:  # type: ignore[union-attr]  # a storage id ended the run
            (
                storage_put, module, attr, type_put, type_get, key_raw, key_put, key_get,
                place_raw, place_put, place_get, numel, offset, shape, stride,
            ) = found.groups()  # type: ignore[union-attr]  # fmt: skip
            if place_raw is None:
                place_gets.add(place_get)  # `cpu` is memoized by the first storage id
            elif place_raw not in places:
                places[place_raw] = place_put
            if module is not None:
                at = found.start(2) - 1  # type: ignore[union-attr]
                if (type_name := _add_global(globals_, module, attr, at)) is None:
                    return None
                if type_put is not None:
                    memo[type_put] = type_name
            elif (type_name := by_get.get(type_get)) is None:
                if (type_name := memo.get(_PUT_OF[type_get[0]] + type_get[1:])) is None:
                    return None
                by_get[type_get] = type_name
            if key_raw is not None:
                try:
                    key = key_raw[5:].decode("utf-8")
                except UnicodeDecodeError:
                    return None
                if key_put is not None:
                    memo[key_put] = key
            elif (key := memo.get(_PUT_OF[key_get[0]] + key_get[1:])) is None:
                return None  # a key memoized outside a storage id ("0" is also a dict key)
            if key not in storages:  # torch reads a key's first id only
                if (count := numels.get(numel)) is None:
                    count = numels[numel] = _int(numel)
                storages[key] = (type_name, count)
            ids += 1
            if offset is None or type_name.endswith("UntypedStorage"):
                # No strided tensor record follows, or `_rebuild_tensor_v3`'s (its storage is
                # untyped, its dtype comes after the geometry): the scan says it is unread.
                facts.unread_tensors += 1
            else:
                where = (offset, shape, stride)
                if (known := geometry.get(where)) is None:
                    known = geometry[where] = _geometry(offset, shape, stride)
                tensors.append((key, *known, None))
            if storage_put is not None and not storage_get:
                storage_get = (b"h" if storage_put[0] == 0x71 else b"j") + storage_put[1:]
                walk = _walk(supported - unseen, storage_get)
            continue
        if pos >= n:
            return None
        op = data[pos]
        if op in unseen:
            facts.opcodes[op] = pos
            unseen = unseen - {op}
            walk = _walk(supported - unseen, storage_get)
        elif op == 0x63:  # GLOBAL
            end1 = data.find(b"\n", pos + 1)
            end2 = data.find(b"\n", end1 + 1) if end1 > 0 else -1
            if end2 < 0:
                return None
            name = _add_global(globals_, data[pos + 1 : end1], data[end1 + 1 : end2], pos)
            if name is None:
                return None
            put = _PUT_AFTER.match(data, end2 + 1)
            if put is not None:  # a storage type's GLOBAL outside a storage id
                memo[put.group()] = name
            pos = end2 + 1
        elif op == 0x89 and dtype_args and data[pos + 1 : pos + 3] == b"\x88\x87":
            # NEWFALSE NEWTRUE TUPLE3 closing `(code, False, True)`. A code taken
            # from the memo (BINGET/LONG_BINGET right before) lies elsewhere: only
            # the exact machine follows it, if numpy.dtype is called at all.
            if (pos - 2 >= start and data[pos - 2] == _BINGET) or (
                pos - 5 >= start and data[pos - 5] == _LONG_BINGET
            ):
                code_in_memo = True
            elif (code := _dtype_code(data, counted_end, pos)) is not None:
                dtype_codes.append(code)
                counted_end = pos + 3
                # A state with a subarray, names or fields (or anything else) is read
                # by the exact machine, which checks it cannot hide objects.
                plain_states = plain_states and bool(_PLAIN_DTYPE_STATE.match(data, pos + 3))
            pos += 3
        elif op == 0x58 and 0x58 in supported:  # BINUNICODE longer than the regex's 255
            size = int.from_bytes(data[pos + 1 : pos + 5], "little")
            pos += 5 + size
        elif op == 0x2E:  # STOP
            facts.end = pos + 1
            break
        else:
            return None
    if ids:
        facts.persistent_ids["storage"] += ids
    for raw, stored in places.items():
        try:
            text = raw[5:].decode("utf-8")
        except UnicodeDecodeError:
            return None
        facts.locations.add(text)
        if stored is not None:
            memo[stored] = text
    for get in place_gets:
        found_place = memo.get(_PUT_OF[get[0]] + get[1:])
        if found_place is None:
            return None  # memoized outside any storage id (a "cpu" key): the machine reads it
        facts.locations.add(found_place)
    if "numpy.dtype" in globals_:
        # The dtype classes BUILD will check, read from the codes CPython writes.
        if code_in_memo or not dtype_codes or not plain_states:
            return None
        for code in dtype_codes:
            dtype_class = types.dtype_class(code) or "numpy.dtype"
            if dtype_class in OBJECT_DTYPES:
                return None  # its state's flags decide: the exact machine reads them
            facts.builds[dtype_class] += 1
    if any(name in globals_ for name in _RECONSTRUCT):
        facts.builds["numpy.ndarray"] += 1
    return facts


_PUT_AFTER: Final = re.compile(rb"q.|r....", re.DOTALL)


def _add_global(
    globals_: dict[str, GlobalRef], module_raw: bytes, attr_raw: bytes, pos: int
) -> str | None:
    """Count a GLOBAL at `pos` in `globals_`; its name, or None when the fast path stops."""
    try:
        module = module_raw.decode("utf-8")
        attr = attr_raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    name = f"{module}.{attr}"
    if not is_fast_name(name):
        return None
    ref = globals_.get(name)
    if ref is None:
        ref = globals_[name] = GlobalRef(name, module, attr, first_offset=pos)
    ref.opcodes.add("GLOBAL")
    ref.count += 1
    return name


def _dtype_code(data: bytes | mmap.mmap, start: int, at: int) -> str | None:
    """The dtype code of the string that ends right before `at`, or before a memo PUT there.

    When several readings fit (a LONG_BINPUT's four bytes can look like a
    short string), the one starting first wins, as a forward scan would find it.
    """
    best: tuple[int, int, int] | None = None  # (header start, code start, code end)
    # The PUT CPython writes after the string: none, MEMOIZE, BINPUT, LONG_BINPUT.
    for put_size, put_op in ((0, -1), (1, _MEMOIZE), (2, _BINPUT), (5, _LONG_BINPUT)):
        code_end = at - put_size
        if put_size and (code_end < start or data[code_end] != put_op):
            continue
        # A string header ends in a byte that is no code character (a length
        # 1-16 or 0), so the code is exactly the run of code characters.
        i = code_end
        floor = max(start, code_end - _MAX_CODE - 1)
        while i > floor and data[i - 1] in _CODE_CHARS:
            i -= 1
        size = code_end - i
        if not 1 <= size <= _MAX_CODE:
            continue
        if i - 5 >= start and data[i - 5 : i] == bytes((_BINUNICODE, size, 0, 0, 0)):
            head = i - 5
        elif i - 2 >= start and data[i - 2 : i] == bytes((_SHORT_BINUNICODE, size)):
            head = i - 2
        else:
            continue
        if best is None or head < best[0]:
            best = (head, i, code_end)
    if best is None:
        return None
    return bytes(data[best[1] : best[2]]).decode("ascii")
