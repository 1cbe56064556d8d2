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
  code read from the memo) returns None and the caller runs the exact machine.

The test suite checks that both paths give the same verdict on every file
of the corpus (tests/test_fastscan.py).
"""

from __future__ import annotations

import mmap
import re
from functools import lru_cache
from typing import Final

from .pickle_vm import GlobalRef, PickleFacts, TypeResolver

# Below this size the exact machine is already fast (~1 ms per 10 kB).
FAST_MIN_BYTES: Final = 1 << 20

_FAST_NAMES: Final = frozenset(
    {
        "collections.OrderedDict", "collections.Counter", "_codecs.encode", "builtins.set",
        "builtins.frozenset", "builtins.complex", "builtins.bytearray", "builtins.slice",
        "builtins.range", "builtins.bytes", "torch.Size", "torch.device",
        "torch.serialization._get_layout", "torch.nn.parameter.Parameter", "numpy.dtype",
        "numpy.ndarray", "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar",
        "numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct",
    }
)  # fmt: skip
_FAST_PATTERN: Final = re.compile(
    r"^torch\.(_utils\._rebuild_(tensor(_v2|_v3)?|parameter|sparse_tensor|qtensor|"
    r"meta_tensor_no_storage|wrapper_subclass|device_tensor_from_cpu_tensor)"
    r"|\w*Storage|storage\.(Untyped|Typed)Storage"
    r"|(u?int\d+|float\d+\w*|bfloat16|complex\d+|bool|half|double|cfloat|cdouble|"
    r"quint\w+|qint\w+|bits\w+|per_\w+|strided|sparse_\w+))$"
)
_RECONSTRUCT = ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct")

# dtype REDUCE arguments as CPython writes them: (code, False, True).
_DTYPE_ARGS = re.compile(
    rb"(?:X([\x01-\x10])\x00\x00\x00|\x8c([\x01-\x10]))([\w<>|=\[\]]{1,16})"
    rb"(?:q[\s\S]|r[\s\S]{4}|\x94)?\x89\x88\x87"
)
_DTYPE_ARGS_FROM_MEMO = re.compile(rb"(?:h[\s\S]|j[\s\S]{4})\x89\x88\x87")


def _counted(opcodes: bytes, width: int, prefix: bytes = b"") -> bytes:
    """A regex for `opcode + length + payload` with lengths 0-255, as a binary tree.

    `re` cannot read a length, so each length gets its branch; nesting the
    branches by ranges of the length byte keeps it to ~8 tests per string.
    """

    def tree(lo: int, hi: int) -> bytes:
        if lo == hi:
            return re.escape(bytes([lo])) + b"\x00" * (width - 1) + (b"[\\s\\S]{%d}" % lo)
        mid = (lo + hi) // 2
        left = b"(?=[" + re.escape(bytes([lo])) + b"-" + re.escape(bytes([mid])) + b"])"
        return b"(?:" + left + tree(lo, mid) + b"|" + tree(mid + 1, hi) + b")"

    return b"[" + re.escape(opcodes) + b"]" + prefix + tree(0, 255)


@lru_cache(maxsize=4)
def _token_run(supported: frozenset[int]) -> re.Pattern[bytes]:
    """A possessive run of the opcodes `supported` that need no Python (all but GLOBAL/NEWOBJ)."""

    def ops(chars: bytes) -> bytes:
        return bytes(c for c in chars if c in supported)

    alternatives = []
    # Ordered by frequency in torch.save output: memo traffic, strings, small ints.
    for chars, width in (
        (b"r", 4),
        (b"h", 1),
        (b"j", 4),
        (b"q", 1),
        (b"K", 1),
        (b"M", 2),
        (b"J", 4),
        (b"G", 8),
    ):
        if ops(chars):
            alternatives.append(re.escape(ops(chars)) + b"[\\s\\S]{%d}" % width)
    if ops(b"X"):
        alternatives.insert(2, _counted(b"X", 4))
    if ops(b"U\x8a"):
        alternatives.append(_counted(ops(b"U\x8a"), 1))
    zero = ops(b"()\x85\x86\x87NRbause\x89\x88]}\x8fQt")
    alternatives.insert(3, b"[" + re.escape(zero) + b"]")
    return re.compile(b"(?:" + b"|".join(alternatives) + b")*+")


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
) -> PickleFacts | None:
    """The facts of a large pickle by the fast path, or None when it does not apply.

    Only opcodes in `supported` (the reader torch's) are consumed, so a
    None also covers "uses an opcode this torch lacks". `force` skips the
    size threshold (for the tests that compare both paths).
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
    run = _token_run(supported).match
    globals_ = facts.globals
    while True:
        pos = run(data, pos).end()  # type: ignore[union-attr]  # a possessive * always matches
        if pos >= n:
            return None
        op = data[pos]
        if op == 0x63:  # GLOBAL
            end1 = data.find(b"\n", pos + 1)
            end2 = data.find(b"\n", end1 + 1) if end1 > 0 else -1
            if end2 < 0:
                return None
            try:
                module = data[pos + 1 : end1].decode("utf-8")
                attr = data[end1 + 1 : end2].decode("utf-8")
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
            pos = end2 + 1
        elif op == 0x58 and 0x58 in supported:  # BINUNICODE longer than the regex's 255
            size = int.from_bytes(data[pos + 1 : pos + 5], "little")
            pos += 5 + size
        elif op == 0x2E:  # STOP
            facts.end = pos + 1
            break
        else:
            return None
    if "numpy.dtype" in globals_ and not _add_dtype_builds(data, start, facts.end, facts, types):
        return None
    if any(name in globals_ for name in _RECONSTRUCT):
        facts.builds["numpy.ndarray"] += 1
    return facts


def _add_dtype_builds(
    data: bytes | mmap.mmap, start: int, end: int, facts: PickleFacts, types: TypeResolver
) -> bool:
    """Add the dtype classes BUILD will check; False when they cannot be read reliably."""
    if _DTYPE_ARGS_FROM_MEMO.search(data, start, end):
        return False
    found = False
    for m in _DTYPE_ARGS.finditer(data, start, end):
        size = (m.group(1) or m.group(2))[0]
        code = m.group(3)
        if len(code) != size:
            continue
        found = True
        facts.builds[types.dtype_class(code.decode("ascii")) or "numpy.dtype"] += 1
    return found
