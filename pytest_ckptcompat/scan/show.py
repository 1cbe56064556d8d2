"""`ckptcompat show`: what a checkpoint holds, as text for people and `ckptcompat.show/1` JSON.

Everything here is read from an `Inventory` (`scan.inventory`): the tree of the
pickle `torch.load` reads, or a safetensors header. No pickle is executed, no
tensor byte is read.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from ..schemas import ShowDtype, ShowEntry, ShowFile, ShowGlobal, ShowShared
from .inventory import Entry, Inventory, is_constant, short_value, walk_entries
from .safetensors import TensorInfo
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
    Tensor,
    no_gc,
    type_name,
)

#: Nesting deeper than this is not shown unless asked (`--depth`): a hostile
#: pickle nested 100,000 levels deep would print gigabytes of indentation.
DEFAULT_DEPTH: Final = 32
_KEY_WIDTH: Final = 56


@dataclass
class Totals:
    """Tensor totals: per dtype, and the bytes of the data (each storage once)."""

    tensors: int = 0
    numel: int = 0
    data_bytes: int = 0
    storages: int = 0
    by_dtype: dict[str, list[int]] = field(default_factory=dict)  # dtype -> [tensors, numel, bytes]

    def add(self, dtype: str, numel: int, nbytes: int) -> None:
        """Count one tensor."""
        self.tensors += 1
        self.numel += numel
        row = self.by_dtype.setdefault(dtype, [0, 0, 0])
        row[0] += 1
        row[1] += numel
        row[2] += nbytes


@dataclass
class Shown:
    """One file, ready to print: its rows, totals, shared storages."""

    inventory: Inventory
    entries: list[Entry]
    totals: Totals
    shared: dict[str, list[str]]  # storage key -> tensor paths (when more than one)
    truncated: bool
    widths: tuple[int, int, int, int] = (0, 0, 0, 0)  # tensor columns: dtype, shape, numel, bytes

    def tensor_columns(self, dtype: str, shape: str, numel: str, nbytes: str) -> str:
        """One tensor's columns, aligned with the others of the file."""
        w = self.widths
        unit = "element " if numel == "1" else "elements"
        return f"{dtype:<{w[0]}}  {shape:<{w[1]}}  {numel:>{w[2]}} {unit}  {nbytes:>{w[3]}}"


def prepare(inv: Inventory, max_depth: int | None = DEFAULT_DEPTH) -> Shown:
    """Walk an inventory once: its rows, totals and shared storages."""
    with no_gc():
        return _prepare(inv, max_depth)


def _prepare(inv: Inventory, max_depth: int | None) -> Shown:
    totals = Totals()
    users: dict[str, list[str]] = defaultdict(list)
    entries: list[Entry] = []
    truncated = False
    if inv.header is not None:
        for info in inv.header.tensors:
            entries.append(Entry(info.name, info.name, 1, info))
            totals.add(info.torch_dtype, info.numel, info.nbytes)
        totals.data_bytes = inv.header.data_size
        totals.storages = len(inv.header.tensors)
        shown = Shown(inv, entries, totals, {}, False)
        shown.widths = _widths(
            (i.torch_dtype, i.shape, i.numel, i.nbytes) for i in inv.header.tensors
        )
        return shown
    for entry in walk_entries(inv.root, max_depth):
        entries.append(entry)
        truncated = truncated or entry.truncated
        node = entry.node
        if not isinstance(node, Tensor):
            continue
        if node.storage is not None:
            users[node.storage.key].append(entry.path or "<root>")
        if entry.same_as is None:
            totals.add(node.dtype or "?", node.numel or 0, node.nbytes or 0)
    totals.storages = len(inv.storages)
    totals.data_bytes = sum(s.nbytes or 0 for s in inv.storages.values())
    shared = {key: paths for key, paths in users.items() if len(paths) > 1}
    shown = Shown(inv, entries, totals, shared, truncated)
    shown.widths = _widths(
        (_tensor_dtype(e.node), e.node.shape, e.node.numel, e.node.nbytes)
        for e in entries
        if isinstance(e.node, Tensor) and e.same_as is None
    )
    return shown


def _tensor_dtype(t: Tensor) -> str:
    kind = "" if t.type_name == "torch.Tensor" else f"{t.type_name.rpartition('.')[2]} "
    return f"{kind}{t.dtype or '?'}"


def _widths(
    rows: Iterable[tuple[str, tuple[int, ...] | None, int | None, int | None]],
) -> tuple[int, int, int, int]:
    w = [0, 0, 0, 0]
    for dtype, shape, numel, nbytes in rows:
        cells = (dtype, shape_text(shape), _count(numel), human_bytes(nbytes))
        w = [max(a, len(b)) for a, b in zip(w, cells, strict=True)]
    return (w[0], min(w[1], 24), w[2], w[3])


def _count(n: int | None) -> str:
    return "?" if n is None else f"{n:,}"


# --- text ---------------------------------------------------------------------------------


def human_bytes(n: int | None) -> str:
    """`16 B`, `4.5 KiB`, `1.0 GiB`."""
    if n is None:
        return "? B"
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{n:,} B" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError  # pragma: no cover


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def shape_text(shape: tuple[int, ...] | None) -> str:
    """`[2, 3]`, `[]` for a scalar, `[?]` when unknown."""
    return "[?]" if shape is None else "[" + ", ".join(str(d) for d in shape) + "]"


def headline(shown: Shown) -> str:
    """The file's first line: format and tensor totals."""
    inv, t = shown.inventory, shown.totals
    parts = [inv.format]
    if inv.header is not None:
        parts.append(_plural(t.tensors, "tensor"))
    elif t.tensors:
        parts.append(f"{_plural(t.tensors, 'tensor')} in {_plural(t.storages, 'storage')}")
    else:
        parts.append("no tensors")
    if t.tensors:
        parts.append(f"{t.numel:,} elements")
        parts.append(f"{human_bytes(t.data_bytes)} of tensor data")
    if inv.header is not None:
        parts.append(f"header {human_bytes(inv.header.header_size)}")
    danger = ", DANGEROUS (can run code)" if inv.can_run_code else ""
    return f"{inv.path}: {', '.join(parts)}{danger}"


def show_text(shown: Shown) -> str:
    """The whole text of `ckptcompat show` for one file."""
    with no_gc():
        return _show_text(shown)


def _show_text(shown: Shown) -> str:
    inv = shown.inventory
    out = [headline(shown)]
    if inv.header is not None and inv.header.metadata:
        meta = ", ".join(
            f"{k}={v if len(v) <= 40 else v[:37] + '...'}" for k, v in inv.header.metadata.items()
        )
        out.append(f"  metadata: {meta}")
    rows = [(e, _describe(e, shown)) for e in shown.entries if e.path or not _is_root_mapping(e)]
    if rows:
        width = min(max(len(_key_cell(e)) for e, _ in rows), _KEY_WIDTH)
        for entry, text in rows:
            cell = _key_cell(entry)
            out.append(
                f"{cell:<{width}}  {text}"
                if len(cell) <= width
                else f"{cell}\n{'':<{width}}  {text}"
            )
    if shown.truncated:
        out.append("  ... nested deeper than shown (--depth N to see more, --depth 0 for all)")
    if shown.totals.by_dtype:
        out.append("dtypes:")
        rows_d = sorted(shown.totals.by_dtype.items(), key=lambda kv: -kv[1][2])
        cells = [(d, _plural(c, "tensor"), f"{n:,}", human_bytes(b)) for d, (c, n, b) in rows_d]
        cw = [max(len(row[i]) for row in cells) for i in range(4)]
        for dtype, count, numel, nbytes in cells:
            out.append(
                f"  {dtype:<{cw[0]}}  {count:>{cw[1]}}  {numel:>{cw[2]}} elements  "
                f"{nbytes:>{cw[3]}}"
            )
    if shown.shared:
        out.append("shared storages:")
        for key, paths in shown.shared.items():
            storage = inv.storages.get(key)
            what = f"{storage.dtype}, {human_bytes(storage.nbytes)}" if storage else "?"
            out.append(f"  storage {key} ({what}): {', '.join(paths)}")
    out += _globals_text(inv)
    other = [p for p in inv.pickles[1:]] if inv.root is not None else inv.pickles
    if other:
        out.append(f"other pickles (torch.load does not read them): {', '.join(other)}")
    out += [f"  problem: {p}" for p in inv.problems]
    out += [f"  note: {n}" for n in inv.notes]
    return "\n".join(out)


def _globals_text(inv: Inventory) -> list[str]:
    if not inv.globals and not inv.threats:
        return []
    plain = [g for g in inv.globals if not g.dangerous]
    out = []
    if plain:
        names = ", ".join(g.name for g in plain[:12]) + (", ..." if len(plain) > 12 else "")
        out.append(f"globals ({len(inv.globals)}): {names}")
    for g in inv.dangerous:
        out.append(
            f"  DANGEROUS {g.name} x{g.count}: {g.why} (never load this file with "
            "weights_only=False; `ckptcompat scan` for the verdict)"
        )
    out += [f"  DANGEROUS {threat}" for threat in inv.threats]
    return out


def _is_root_mapping(entry: Entry) -> bool:
    return entry.depth == 0 and isinstance(entry.node, Mapping)


def _key_cell(entry: Entry) -> str:
    if entry.depth == 0:
        return "<root>"
    indent = "  " * min(entry.depth, DEFAULT_DEPTH)
    return f"{indent}{entry.key}"


def _short_type(name: str) -> str:
    if name.startswith("builtins."):
        return name[9:]
    if name in ("collections.OrderedDict", "collections.defaultdict", "collections.Counter"):
        return name[12:]
    return name


def _describe(entry: Entry, shown: Shown) -> str:
    node = entry.node
    if entry.same_as is not None:
        what = "tensor" if isinstance(node, Tensor) else "object"
        return f"(same {what} as {entry.same_as})"
    if not isinstance(node, (Tensor, Mapping, Sequence, SetNode, Object, NdArray, tuple)):
        if isinstance(node, TensorInfo):  # a safetensors tensor
            return shown.tensor_columns(
                node.torch_dtype, shape_text(node.shape), _count(node.numel),
                human_bytes(node.nbytes),
            )  # fmt: skip
        return _value_description(node)
    if isinstance(node, Tensor):
        return _tensor_description(node, entry, shown)
    more = "  ..." if entry.truncated else ""
    if isinstance(node, Mapping):
        extra = ""
        if isinstance(node.state, Mapping):
            names = [str(k) for k, _ in node.state.items if isinstance(k, str)]
            extra = f" (+ attribute{'s' if len(names) != 1 else ''} {', '.join(names)})"
        elif node.state is not None:
            extra = " (+ state)"
        count = len(node.items)
        entries = f"{count:,} {'entry' if count == 1 else 'entries'}"
        return f"{_short_type(node.type_name)}, {entries}{extra}{more}"
    if isinstance(node, (Sequence, SetNode)):
        kind = _short_type(node.type_name)
        if all(is_constant(v) for v in node.items):
            return f"{kind} {short_value(node)}"
        return f"{kind}, {_plural(len(node.items), 'item')}{more}"
    if isinstance(node, tuple):
        if is_constant(node):
            return f"tuple {short_value(node)}"
        return f"tuple, {_plural(len(node), 'item')}{more}"
    if isinstance(node, NdArray):
        return f"{node.type_name} {node.dtype or '?'} {shape_text(node.shape)}"
    assert isinstance(node, Object)
    return _object_description(node, shown) + more


def _tensor_description(t: Tensor, entry: Entry, shown: Shown) -> str:
    text = shown.tensor_columns(
        _tensor_dtype(t), shape_text(t.shape), _count(t.numel), human_bytes(t.nbytes)
    )
    if t.layout != "strided":
        text += f"  ({t.layout})"
    if t.location and t.location != "cpu":
        text += f"  on {t.location}"
    if t.storage is not None and t.storage.key in shown.shared:
        text += f"  storage {t.storage.key} (shared)"
    return text


def _object_description(node: Object, shown: Shown) -> str:
    maker = node.maker or "<computed callable>"
    danger = next((g for g in shown.inventory.dangerous if g.name == node.maker), None)
    args = node.args
    if (
        maker.startswith("pathlib.")
        and isinstance(args, tuple)
        and all(isinstance(a, str) for a in args)
    ):
        parts = [str(a) for a in args]
        joined = parts[0] if parts else ""
        for p in parts[1:]:
            joined = joined.rstrip("/") + "/" + p if joined else p
        text = f"{maker}({joined!r})"
    elif isinstance(args, tuple) and args and is_constant(args):
        inner = ", ".join(short_value(a, 40) for a in args[:8]) + (", ..." if len(args) > 8 else "")
        text = f"{maker}({inner if len(inner) <= 80 else inner[:77] + '...'})"
    elif node.state is None and not node.items and args == ():
        text = f"{maker}()"
    else:
        text = maker
    if danger is not None:
        text += f"  DANGEROUS: {danger.why}"
    return text


def _value_description(node: object) -> str:
    if isinstance(node, bool) or node is None:
        return repr(node)
    if isinstance(node, (int, float, complex, str)):
        return f"{type(node).__name__} {short_value(node)}"
    if isinstance(node, NumpyScalar):
        return f"numpy {node.dtype} {node.value!r}"
    if isinstance(node, GlobalName):
        return f"global {node.name}"
    if isinstance(node, NpDtype):
        return f"numpy.dtype {node.code!r}"
    if isinstance(node, (LongStr, BigInt, Blob, Opaque)):
        return f"{_short_type(type_name(node))} {short_value(node)}"
    return short_value(node)


# --- JSON ---------------------------------------------------------------------------------


def show_json(shown: Shown) -> ShowFile:
    """The `files[]` record of `ckptcompat.show/1`."""
    with no_gc():
        return _show_json(shown)


def _show_json(shown: Shown) -> ShowFile:
    inv, t = shown.inventory, shown.totals
    return {
        "path": inv.path,
        "format": inv.format,
        "error": None,
        "tensors": t.tensors,
        "storages": t.storages,
        "numel": t.numel,
        "bytes": t.data_bytes,
        "dtypes": [
            ShowDtype(dtype=d, tensors=row[0], numel=row[1], bytes=row[2])
            for d, row in sorted(t.by_dtype.items(), key=lambda kv: -kv[1][2])
        ],
        "entries": [_entry_json(e, shown) for e in shown.entries],
        "shared": [
            ShowShared(
                storage=key,
                dtype=inv.storages[key].dtype if key in inv.storages else "?",
                bytes=inv.storages[key].nbytes if key in inv.storages else None,
                tensors=paths,
            )
            for key, paths in shown.shared.items()
        ],
        "globals": [
            ShowGlobal(name=g.name, count=g.count, dangerous=g.dangerous, why=g.why)
            for g in inv.globals
        ],
        "threats": inv.threats,
        "metadata": inv.header.metadata if inv.header is not None else None,
        "pickles": inv.pickles,
        "problems": inv.problems,
        "notes": inv.notes
        + (
            ["nested deeper than the depth limit: not every entry is listed"]
            if shown.truncated
            else []
        ),
    }


def error_json(path: str, error: str) -> ShowFile:
    """The record of a file that could not be read."""
    return {
        "path": path, "format": None, "error": error, "tensors": 0, "storages": 0, "numel": 0,
        "bytes": 0, "dtypes": [], "entries": [], "shared": [], "globals": [], "threats": [],
        "metadata": None,
        "pickles": [], "problems": [], "notes": [],
    }  # fmt: skip


def _entry_json(entry: Entry, shown: Shown) -> ShowEntry:
    node = entry.node
    base: ShowEntry = {
        "path": entry.path,
        "key": entry.key,
        "depth": entry.depth,
        "kind": "value",
        "type": type_name(node),
    }
    if entry.same_as is not None:
        base["kind"] = "ref"
        base["same_as"] = entry.same_as
        return base
    if entry.truncated:
        base["truncated"] = True
    if isinstance(node, TensorInfo):  # a safetensors tensor
        base["kind"] = "tensor"
        base["type"] = "torch.Tensor"
        base["dtype"] = node.torch_dtype
        base["shape"] = list(node.shape)
        base["numel"] = node.numel
        base["bytes"] = node.nbytes
        return base
    if isinstance(node, Tensor):
        base["kind"] = "tensor"
        base["dtype"] = node.dtype
        base["shape"] = None if node.shape is None else list(node.shape)
        base["numel"] = node.numel
        base["bytes"] = node.nbytes
        base["storage"] = node.storage.key if node.storage is not None else None
        base["offset"] = node.offset
        if node.layout != "strided":
            base["layout"] = node.layout
        if node.location:
            base["device"] = node.location
        if node.requires_grad:
            base["requires_grad"] = True
    elif isinstance(node, Mapping):
        base["kind"] = "mapping"
        base["length"] = len(node.items)
    elif isinstance(node, (Sequence, SetNode)):
        base["kind"] = "sequence" if isinstance(node, Sequence) else "set"
        base["length"] = len(node.items)
        if all(is_constant(v) for v in node.items):
            base["value"] = short_value(node)
    elif isinstance(node, tuple):
        base["kind"] = "sequence"
        base["type"] = "builtins.tuple"
        base["length"] = len(node)
        if is_constant(node):
            base["value"] = short_value(node)
    elif isinstance(node, NdArray):
        base["kind"] = "array"
        base["dtype"] = node.dtype
        base["shape"] = None if node.shape is None else list(node.shape)
    elif isinstance(node, Object):
        base["kind"] = "object"
        base["value"] = _object_description(node, shown).split("  DANGEROUS")[0]
        danger = next((g for g in shown.inventory.dangerous if g.name == node.maker), None)
        if danger is not None:
            base["dangerous"] = danger.why
    else:
        base["value"] = short_value(node)
    return base
