"""What a checkpoint file holds, statically: its value tree, tensors, storages and globals.

`open_inventory(path)` reads a file the way the scan does (`container`: the
one zip reader, the legacy format's five pickles, safetensors headers) and
walks its pickles with `structure.build_tree` instead of the machine: the
main pickle (the one `torch.load` reads) gives the tree; every pickle in the
file (other `.pkl` members, nested archives, pickles appended after a STOP)
gives its globals, each one marked when it can run code (`danger`). No tensor
byte is read: a storage's size comes from its persistent id, and in a torch
zip its `data/<key>` record's size from the central directory.

`walk_entries(root)` flattens a tree into `Entry` rows in depth-first order,
each node once: a node met again (memo reuse, tied tensors, cycles) is an
entry that names the path where it was first shown.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Final

from ..errors import PickleFormatError, UnreadableCheckpointError
from .container import Checkpoint, open_checkpoint
from .danger import is_dangerous_global, why_dangerous
from .machine import STRIDED_REBUILDERS
from .names import all_importable
from .safetensors import Header
from .storages import extent_problems, record_problems
from .structure import (
    BigInt,
    Blob,
    GlobalName,
    LongStr,
    Mapping,
    NdArray,
    NpDtype,
    NumpyScalar,
    Object,
    Opaque,
    Sequence,
    SetNode,
    Storage,
    Tensor,
    Tree,
    build_tree,
    type_name,
)

#: Formats whose main pickle `torch.load` reads (and so whose tree `show` shows).
_TREE_FORMATS: Final = frozenset({"torch-zip", "torch-legacy", "pickle", "torchscript", "npy"})


# A name `pickle` could import (the scanner's rule for members that may not be pickles).
@dataclass(frozen=True)
class GlobalUse:
    """A global named anywhere in the file: how often, and whether it can run code."""

    module: str
    attr: str
    count: int
    why: str  # why it is dangerous; empty when it is not

    @property
    def name(self) -> str:
        """`module.name`, as the pickle spells it."""
        return f"{self.module}.{self.attr}"

    @property
    def dangerous(self) -> bool:
        """Whether loading it can run code."""
        return bool(self.why)


@dataclass
class Inventory:
    """A checkpoint's contents, read without executing it."""

    path: str
    format: str
    root: object = None  # the main pickle's value tree (None: safetensors, or no main pickle)
    header: Header | None = None  # a safetensors file's header
    globals: list[GlobalUse] = field(default_factory=list)
    storages: dict[str, Storage] = field(default_factory=dict)
    pickles: list[str] = field(default_factory=list)  # every pickle walked, main first
    problems: list[str] = field(default_factory=list)  # what torch or safetensors would refuse
    notes: list[str] = field(default_factory=list)

    threats: list[str] = field(default_factory=list)  # code run at load, beyond the globals

    @property
    def dangerous(self) -> list[GlobalUse]:
        """The globals that can run code."""
        return [g for g in self.globals if g.dangerous]

    @property
    def can_run_code(self) -> bool:
        """Whether loading the file can run code: a dangerous global, or what `threats` say."""
        return bool(self.dangerous or self.threats)


def open_inventory(path: str | os.PathLike[str]) -> Inventory:
    """The inventory of a checkpoint file; `UnreadableCheckpointError` when it cannot be read."""
    return inventory_of(open_checkpoint(path))


def inventory_of(ckpt: Checkpoint) -> Inventory:
    """Walk an opened checkpoint's pickles into its inventory."""
    inv = Inventory(ckpt.path, ckpt.format, header=ckpt.header, problems=list(ckpt.problems))
    counts: Counter[tuple[str, str]] = Counter()
    errors = list(ckpt.errors)
    queue = list(ckpt.pickles)
    main_tree: Tree | None = None
    while queue:
        blob = queue.pop(0)
        try:
            tree = build_tree(blob.data, blob.start)
        except PickleFormatError as exc:
            partial = exc.partial if isinstance(exc.partial, Tree) else None
            # As the scan: what a real unpickler would have run before the bad byte
            # is reported; otherwise a member that may not be a pickle is just data.
            ran = partial is not None and _plausible(partial) and _names_danger(partial)
            if blob.optional and not ran:
                continue
            if partial is not None and ran:
                counts.update(partial.globals)
            where = blob.member
            if ckpt.format == "torch-legacy":
                where = f"legacy torch file, {blob.member} pickle"
            errors.append(f"{where}: {exc}")
            continue
        if blob.optional and not _plausible(tree):
            continue
        counts.update(tree.globals)
        if blob.main and main_tree is None:
            main_tree = tree
            inv.pickles.insert(0, blob.member)  # main first, wherever the zip put it
        else:
            inv.pickles.append(blob.member)
        if tree.end < len(blob.data) and ckpt.format != "torch-legacy":
            queue.append(blob.appended(tree.end))
    inv.globals = [
        GlobalUse(module, attr, count, _why(module, attr))
        for (module, attr), count in sorted(counts.items())
    ]
    inv.threats = _threats(ckpt)
    if errors and not inv.dangerous:
        raise UnreadableCheckpointError(ckpt.path, errors[0])
    inv.problems += errors
    if main_tree is not None and ckpt.format in _TREE_FORMATS:
        inv.root = main_tree.root
        inv.storages = main_tree.storages
        inv.problems += _record_problems(ckpt, main_tree)
    elif ckpt.format != "safetensors" and main_tree is None:
        inv.notes.append("no pickle that torch.load reads: nothing to show but the globals")
    return inv


def _threats(ckpt: Checkpoint) -> list[str]:
    """What the scan finds can run code that is no dangerous global name.

    A BUILD that rewrites a class, a numpy dtype whose state hides objects, a SETITEM
    into a tensor, TorchScript code run at load: the scan's own judgement (one rule
    for `scan` and `show`), under the oldest torch with an allowlist (what runs most).
    """
    from . import torch_table
    from .releases import USER_ALLOWLIST, release_of
    from .scanner import scan_checkpoint

    oldest = next(v for v in torch_table.known_versions() if release_of(v) >= USER_ALLOWLIST)
    verdict = scan_checkpoint(ckpt, torch_table.rules_for(oldest)).verdict
    if verdict is None:
        return []
    return [
        f"{r.name}: {r.note}" if r.note else r.name
        for r in verdict.requirements
        if r.dangerous and r.kind != "global"
    ]


def _why(module: str, attr: str) -> str:
    if not is_dangerous_global(module, attr):
        return ""
    return why_dangerous(module, attr) or "can run code"


def _plausible(tree: Tree) -> bool:
    return all_importable(tree.globals)


def _names_danger(tree: Tree) -> bool:
    return any(is_dangerous_global(module, attr) for module, attr in tree.globals)


def _record_problems(ckpt: Checkpoint, tree: Tree) -> list[str]:
    """What torch.load would find wrong with the tensors' records (`scan.storages`' rules)."""
    storages = {key: (s.type_name, s.numel) for key, s in tree.storages.items()}
    tensors = [
        (t.storage.key, t.offset, t.shape, t.stride, t.dtype if t.rebuild.endswith("_v3") else None)
        for t in tree.tensors
        if t.storage is not None
        and f"torch._utils.{t.rebuild}" in STRIDED_REBUILDERS
        and t.offset is not None
        and t.shape is not None
        and t.stride is not None
    ]
    found = extent_problems(storages, tensors)
    if ckpt.archive is not None and ckpt.layout is not None:
        found = record_problems(ckpt.archive, ckpt.layout.prefix, storages) + found
    return [p.message for p in found]


# --- the tree as rows -------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One row of a tree: a node and where it sits."""

    path: str  # `state_dict.fc.weight`, `optimizer.param_groups[0].lr`, '' for the root
    key: str  # how this node is named in its parent: `fc.weight`, `[0]`, `.lr`
    depth: int
    node: object
    same_as: str | None = None  # shown before at this path (memo reuse, tied tensors, cycles)
    truncated: bool = False  # deeper than the walk's limit: its children are not shown


def _is_shared(node: object) -> bool:
    """Whether a node has an identity worth following (containers, tensors, objects)."""
    return isinstance(node, (Mapping, Sequence, SetNode, Object, Tensor, NdArray)) or (
        isinstance(node, tuple) and bool(node) and not is_constant(node)
    )


def is_constant(node: object, depth: int = 0) -> bool:
    """A value shown on one line: numbers, strings, None, bytes, globals, tuples of them."""
    if node is None or isinstance(node, (bool, int, float, complex, str)):
        return True
    if isinstance(node, (LongStr, BigInt, Blob, GlobalName, NpDtype, NumpyScalar, Opaque)):
        return True
    if isinstance(node, tuple) and depth < 3 and len(node) <= 64:
        return all(is_constant(v, depth + 1) for v in node)
    return False


def children(node: object) -> Iterator[tuple[str, object, str]]:
    """A node's children as `(key, child, how)`; `how` is `item`, `attr` or `index`."""
    if isinstance(node, Mapping):
        for key, value in node.items:
            yield _key_text(key), value, "item"
    elif isinstance(node, (Sequence, SetNode)):
        if not all(is_constant(v) for v in node.items):
            for i, value in enumerate(node.items):
                yield f"[{i}]", value, "index"
    elif isinstance(node, tuple):
        if not is_constant(node):
            for i, value in enumerate(node):
                yield f"[{i}]", value, "index"
    elif isinstance(node, Object):
        if node.args and not is_constant(node.args):
            yield "(args)", node.args, "attr"
        yield from _state_children(node.state)
        for i, item in enumerate(node.items):
            if isinstance(item, tuple) and len(item) == 2 and node.maker and _dictish(node):
                yield _key_text(item[0]), item[1], "item"
            else:
                yield f"[{i}]", item, "index"


def _dictish(node: Object) -> bool:
    return any(isinstance(i, tuple) and len(i) == 2 for i in node.items)


def _state_children(state: object) -> Iterator[tuple[str, object, str]]:
    if state is None:
        return
    if isinstance(state, Mapping) and all(isinstance(k, str) for k, _ in state.items):
        for key, value in state.items:
            yield f".{key}", value, "attr"
    elif (
        isinstance(state, tuple)
        and len(state) == 2
        and all(s is None or isinstance(s, Mapping) for s in state)
    ):  # (__dict__, __slots__ values)
        for part in state:
            yield from _state_children(part)
    else:
        yield "(state)", state, "attr"


def _key_text(key: object) -> str:
    if isinstance(key, str):
        return key
    if isinstance(key, LongStr):
        return key.text(80) + "..."
    return short_value(key)


_MAX_PATH: Final = 512  # longer paths keep their end: 100,000 levels must not cost 100,000**2


def join_path(parent: str, key: str, how: str) -> str:
    """The path of a child: `a.b` for names and dotted keys, `a['x y']`, `a[0]`, `a.attr`."""
    if len(parent) > _MAX_PATH:
        parent = "..." + parent[-(_MAX_PATH // 2) :]
    if how == "attr":
        return f"{parent}{key}" if key.startswith(".") else f"{parent}.{key}"
    if how == "index":
        return f"{parent}{key}"
    parts = key.split(".")
    if key and all(p.isidentifier() or p.isdigit() for p in parts):
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{key!r}]"


def walk_entries(root: object, max_depth: int | None = None) -> Iterator[Entry]:
    """Every node of the tree, depth first, each container, tensor or object once."""
    seen: dict[int, str] = {}
    stack: list[tuple[object, str, str, int]] = [(root, "", "", 0)]
    while stack:
        node, path, key, depth = stack.pop()
        if _is_shared(node):
            first = seen.get(id(node))
            if first is not None:
                yield Entry(path, key, depth, node, same_as=first or "<root>")
                continue
            seen[id(node)] = path
        kids = list(children(node))
        truncated = max_depth is not None and depth >= max_depth and bool(kids)
        yield Entry(path, key, depth, node, truncated=truncated)
        if truncated:
            continue
        for child_key, child, how in reversed(kids):
            stack.append((child, join_path(path, child_key, how), child_key, depth + 1))


# --- short values -----------------------------------------------------------------------

_VALUE_LIMIT: Final = 60


def short_value(node: object, limit: int = _VALUE_LIMIT) -> str:
    """A constant's value on one line, cut to about `limit` characters."""
    text = _value_text(node, limit, 0)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _value_text(node: object, limit: int, depth: int) -> str:
    if isinstance(node, str):
        return repr(node if len(node) <= limit else node[:limit])
    if isinstance(node, bool) or node is None:
        return repr(node)
    if isinstance(node, int):
        return str(node) if node.bit_length() <= 128 else f"<int of {node.bit_length()} bits>"
    if isinstance(node, (float, complex)):
        return repr(node)
    if isinstance(node, LongStr):
        return f"<str of {node.size:,} bytes: {node.text(40)!r}...>"
    if isinstance(node, BigInt):
        return f"<int of {node.width:,} bytes>"
    if isinstance(node, Blob):
        if node.head is not None and node.size <= 16:
            return repr(node.head if node.kind == "bytes" else bytearray(node.head))
        return f"<{node.kind} of {node.size:,} bytes>"
    if isinstance(node, GlobalName):
        return node.name
    if isinstance(node, NpDtype):
        return f"dtype({node.code!r})"
    if isinstance(node, NumpyScalar):
        return f"{node.dtype}({node.value!r})"
    if isinstance(node, Opaque):
        return f"<{node.what}>"
    if isinstance(node, tuple):
        if depth > 2:
            return "(...)"
        inner = ", ".join(_value_text(v, limit, depth + 1) for v in node[:16])
        more = ", ..." if len(node) > 16 else ""
        return f"({inner}{',' if len(node) == 1 else ''}{more})"
    if isinstance(node, (Sequence, SetNode)):
        if depth > 2:
            return "[...]"
        inner = ", ".join(_value_text(v, limit, depth + 1) for v in node.items[:16])
        more = ", ..." if len(node.items) > 16 else ""
        if isinstance(node, Sequence):
            return f"[{inner}{more}]"
        return f"{{{inner}{more}}}" if node.items else f"{node.type_name.rpartition('.')[2]}()"
    return f"<{type_name(node)}>"
