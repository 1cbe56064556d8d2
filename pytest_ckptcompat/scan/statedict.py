"""Two state dicts compared by keys, shapes, dtypes and storage sharing, in load_state_dict's words.

A state dict here is what `load_state_dict` would see, without any tensor:
key -> `TensorMeta` (dtype, shape, and which storage it uses), or `Other` for
an entry that is no tensor. `from_inventory` finds one in a checkpoint's
static tree (`scan.inventory`) or a safetensors header; `fixture` and `diff`
build one from live tensors too. `compare(a, b)` reads B as the checkpoint
loaded into a model shaped like A, as `model.load_state_dict(b, strict=True)`
would, and says what that call would say:

    Missing key(s) in state_dict: "positional_embedding", "text_projection".
    Unexpected key(s) in state_dict: "text_model.embeddings.position_ids".
    size mismatch for visual.conv1.weight: copying a param with shape
    torch.Size([768, 3, 16, 16]) from checkpoint, the shape in current model is
    torch.Size([768, 3, 14, 14]).

plus what it would not say (it casts dtypes silently; it knows nothing of
storages): dtype changes and storage sharing that differs. Nothing here
imports torch or executes anything.
"""

from __future__ import annotations

import sys
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from typing import Final

from ..errors import CkptCompatError
from .inventory import Inventory, walk_entries
from .safetensors import Header
from .structure import LongStr, Mapping, Object, Tensor, no_gc, type_name

#: Keys under which training checkpoints keep the model's state dict, tried in order.
NESTED_KEYS: Final = ("state_dict", "model_state_dict", "model", "module", "net", "network")
_SHORT_DTYPES: Final = {
    "float32": "fp32", "float16": "fp16", "bfloat16": "bf16", "float64": "fp64",
    "float8_e4m3fn": "fp8e4m3", "float8_e5m2": "fp8e5m2",
}  # fmt: skip
_LIST_KEYS: Final = 10  # dtype and sharing lines name this many keys, then "and N more"


@dataclass(frozen=True)
class TensorMeta:
    """What load_state_dict looks at in a tensor, and which storage it uses."""

    dtype: str  # torch's name: float32, bfloat16, ...
    shape: tuple[int, ...] | None
    storage: str | None = None  # tensors with the same value share one storage


@dataclass(frozen=True)
class Other:
    """An entry that is no tensor."""

    type: str


@dataclass
class StateDict:
    """The entries of one side, and how they were found."""

    entries: dict[str, TensorMeta | Other]
    key: str | None = None  # where in the file (`state_dict`); None: the root, or every tensor
    notes: list[str] = field(default_factory=list)

    @property
    def tensors(self) -> int:
        """How many entries are tensors."""
        return sum(isinstance(v, TensorMeta) for v in self.entries.values())


# --- finding the state dict -------------------------------------------------------------


def from_header(header: Header, prefix: str = "") -> StateDict:
    """A safetensors file's tensors (each its own storage: the format has no sharing)."""
    return StateDict(
        {
            info.name: TensorMeta(info.torch_dtype, info.shape, f"{prefix}{info.name}")
            for info in header.tensors
        }
    )


def from_inventory(inv: Inventory, key: str | None = None) -> StateDict:
    """The state dict of a checkpoint: at `key`, or found as `NESTED_KEYS` describes.

    Without `key`: the root when it is a state dict; else the first entry of
    `NESTED_KEYS` that is one; else every tensor of the file by its path.
    Raises `CkptCompatError` naming the file when `key` is not there.
    """
    if inv.header is not None:
        if key:
            raise CkptCompatError(f"{inv.path}: --key {key}: a safetensors file is flat")
        return from_header(inv.header)
    root = inv.root
    if key:
        node = _find(root, key)
        if node is None:
            raise CkptCompatError(f"{inv.path}: no entry {key!r} ({_top_keys(root)})")
        if not isinstance(node, Mapping):
            raise CkptCompatError(f"{inv.path}: {key!r} is {type_name(node)}, not a mapping")
        return StateDict(_entries(node), key)
    if isinstance(root, Mapping) and is_state_dict(root):
        return StateDict(_entries(root))
    if isinstance(root, Mapping):
        for name in NESTED_KEYS:
            node = root.get(name)
            if isinstance(node, Mapping) and is_state_dict(node):
                note = f"the state dict is its {name!r} entry (--key to choose another)"
                return StateDict(_entries(node), name, [note])
    flat: dict[str, TensorMeta | Other] = {}
    with no_gc():
        for entry in walk_entries(root, None):
            node = entry.node
            if isinstance(node, Tensor) and entry.path not in flat:
                flat[entry.path or "<root>"] = _meta(node)
    note = "no state dict at the root: every tensor is compared by its path (--key to choose)"
    return StateDict(flat, None, [note])


def from_live(tensors: object) -> StateDict:
    """A `StateDict` of live objects: a model's `state_dict()`, a loaded checkpoint.

    torch is not imported: an object can only be a tensor if torch already is.
    Storage sharing is told by the storage's address (and device).
    """
    torch = sys.modules.get("torch")
    entries: dict[str, TensorMeta | Other] = {}
    items = tensors.items() if isinstance(tensors, MappingABC) else ()
    for key, value in items:
        if torch is not None and isinstance(value, torch.Tensor):
            storage = None
            try:
                ptr = value.untyped_storage().data_ptr()
                storage = f"{value.device}:{ptr}" if ptr else None
            except (RuntimeError, NotImplementedError, TypeError):
                storage = None
            dtype = str(value.dtype).removeprefix("torch.")
            entries[str(key)] = TensorMeta(dtype, tuple(int(d) for d in value.shape), storage)
        else:
            t = type(value)
            entries[str(key)] = Other(f"{t.__module__}.{t.__qualname__}")
    return StateDict(entries)


def is_state_dict(node: Mapping) -> bool:
    """String keys, at least one tensor, and tensors only (or `*_extra_state` entries)."""
    if not node.items:
        return False
    tensors = 0
    for key, value in node.items:
        if not isinstance(key, str):
            return False
        if isinstance(value, Tensor):
            tensors += 1
        elif not key.endswith("_extra_state"):
            return False
    return tensors > 0


def _find(root: object, key: str) -> object | None:
    """The node at `key`: an exact entry, else a dotted path whose parts are entries."""
    node = root
    rest = key
    while rest:
        if not isinstance(node, (Mapping, Object)):
            return None
        found = _child(node, rest)
        if found is not None:
            return found
        # the longest first part that is an entry
        parts = rest.split(".")
        for i in range(len(parts) - 1, 0, -1):
            head = ".".join(parts[:i])
            child = _child(node, head)
            if child is not None:
                node, rest = child, ".".join(parts[i:])
                break
        else:
            return None
    return node


def _child(node: Mapping | Object, key: str) -> object | None:
    if isinstance(node, Mapping):
        return node.get(key)
    state = node.state
    if isinstance(state, Mapping):  # an object's attribute (`model.ema` of a trainer)
        return state.get(key)
    return None


def _top_keys(root: object) -> str:
    if not isinstance(root, Mapping):
        return f"the root is {type_name(root)}"
    keys = [k if isinstance(k, str) else repr(k) for k, _ in root.items]
    shown = ", ".join(keys[:12]) + (", ..." if len(keys) > 12 else "")
    return f"top-level keys: {shown}" if keys else "the root is empty"


def _entries(node: Mapping) -> dict[str, TensorMeta | Other]:
    out: dict[str, TensorMeta | Other] = {}
    for key, value in node.items:
        name = (
            key
            if isinstance(key, str)
            else key.text(200)
            if isinstance(key, LongStr)
            else repr(key)
        )
        out[name] = _meta(value) if isinstance(value, Tensor) else Other(type_name(value))
    return out


def _meta(t: Tensor) -> TensorMeta:
    storage = t.storage.key if t.storage is not None else None
    return TensorMeta(t.dtype or "?", t.shape, storage)


def strip_prefixes(sd: StateDict, prefixes: Sequence[str], side: str) -> StateDict:
    """`sd` with each key's first matching prefix removed (`module.` of DDP)."""
    if not prefixes:
        return sd
    out: dict[str, TensorMeta | Other] = {}
    stripped = 0
    notes = list(sd.notes)
    for key, value in sd.entries.items():
        new = key
        for prefix in prefixes:
            if prefix and key.startswith(prefix):
                new = key[len(prefix) :]
                stripped += 1
                break
        if new in out:
            notes.append(f"{side}: two keys are {new!r} once {', '.join(prefixes)} is stripped")
        out[new] = value
    if stripped:
        shown = " / ".join(repr(p) for p in prefixes)
        notes.append(f"{side}: prefix {shown} stripped from {stripped} key(s)")
    return StateDict(out, sd.key, notes)


# --- comparing ----------------------------------------------------------------------------


@dataclass
class Comparison:
    """What `load_state_dict(b, strict=True)` into a model shaped like `a` would meet."""

    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    shape: list[tuple[str, tuple[int, ...] | None, tuple[int, ...] | None]] = field(
        default_factory=list
    )
    dtype: list[tuple[str, str, str]] = field(default_factory=list)
    sharing: list[tuple[list[str], str]] = field(default_factory=list)  # (keys, "a" or "b")
    not_tensor: list[tuple[str, str, str]] = field(default_factory=list)
    compared: int = 0  # keys that are tensors on both sides
    values: list[ValueDiff] | None = None  # filled by `diff --values`

    @property
    def same(self) -> bool:
        """Nothing differs."""
        return not (
            self.missing or self.unexpected or self.shape or self.dtype or self.sharing
            or self.not_tensor or self.values
        )  # fmt: skip

    def counts(self) -> dict[str, int]:
        """How many of each kind of difference."""
        return {
            "missing": len(self.missing),
            "unexpected": len(self.unexpected),
            "shape": len(self.shape),
            "dtype": len(self.dtype),
            "sharing": len(self.sharing),
            "not_tensor": len(self.not_tensor),
            "values": len(self.values or ()),
        }

    def summary(self) -> str:
        """One line: `2 missing, 1 unexpected, 1 shape, 62 dtype fp32->fp16`."""
        parts = []
        if self.missing:
            parts.append(f"{len(self.missing)} missing")
        if self.unexpected:
            parts.append(f"{len(self.unexpected)} unexpected")
        if self.shape:
            parts.append(f"{len(self.shape)} shape")
        changes = Counter((a, b) for _, a, b in self.dtype)
        for (a, b), n in changes.most_common():
            parts.append(f"{n} dtype {_short(a)}->{_short(b)}")
        if self.not_tensor:
            parts.append(f"{len(self.not_tensor)} not a tensor")
        if self.sharing:
            parts.append(f"{len(self.sharing)} sharing")
        if self.values:
            parts.append(f"{len(self.values)} values")
        if not parts:
            what = "keys, shapes, dtypes" + (" and values" if self.values is not None else "")
            return f"same: {self.compared:,} tensors, same {what}"
        return ", ".join(parts)

    def load_state_dict_lines(self) -> list[str]:
        """What `load_state_dict(strict=True)` would raise, one line per error, in its words."""
        lines = []
        if self.missing:
            keys = ", ".join(f'"{k}"' for k in self.missing)
            lines.append(f"Missing key(s) in state_dict: {keys}.")
        if self.unexpected:
            keys = ", ".join(f'"{k}"' for k in self.unexpected)
            lines.append(f"Unexpected key(s) in state_dict: {keys}.")
        for key, a_type, b_type in self.not_tensor:
            if a_type == "torch.Tensor":
                lines.append(
                    f'While copying the parameter named "{key}", expected torch.Tensor or '
                    f"Tensor-like object from checkpoint but received {_torch_type_text(b_type)}"
                )
        for key, a_shape, b_shape in self.shape:
            lines.append(
                f"size mismatch for {key}: copying a param with shape {torch_size(b_shape)} from "
                f"checkpoint, the shape in current model is {torch_size(a_shape)}."
            )
        return lines

    def other_lines(self) -> list[str]:
        """What load_state_dict would not complain about: dtype changes, sharing, other entries."""
        lines = []
        groups: dict[tuple[str, str], list[str]] = defaultdict(list)
        for key, a, b in self.dtype:
            groups[(a, b)].append(key)
        for (a, b), keys in groups.items():
            lines.append(
                f"dtype {a} -> {b} for {len(keys)} key(s) (load_state_dict casts them to the "
                f"model's dtype): {_key_list(keys)}"
            )
        for key, a_type, b_type in self.not_tensor:
            if a_type != "torch.Tensor":
                lines.append(f"{key}: {a_type} in A, {b_type} in B")
        for keys, side in self.sharing:
            other = "B" if side == "a" else "A"
            lines.append(
                f"storage sharing: {_key_list(keys)} share one storage in {side.upper()}, "
                f"not in {other}"
            )
        for v in self.values or ():
            lines.append(v.text())
        return lines


@dataclass(frozen=True)
class ValueDiff:
    """Values that differ (`diff --values`): a tensor's elements, or an entry that is none."""

    key: str
    differ: int
    numel: int
    first: tuple[int, ...]
    a: str
    b: str
    max_abs_diff: float | None = None
    tensor: bool = True  # False: an entry that is no tensor (`_extra_state`, a step count)
    at: str = ""  # in such an entry, where the first difference is (`['step']`)

    def text(self) -> str:
        """One line for people."""
        if not self.tensor:
            where = f" at {self.at}" if self.at else ""
            return f"values differ for {self.key}{where}: {self.a} in A, {self.b} in B"
        where = "[" + ", ".join(str(i) for i in self.first) + "]"
        peak = f", max |a - b| {self.max_abs_diff:.6g}" if self.max_abs_diff is not None else ""
        return (
            f"values differ for {self.key}: {self.differ:,} of {self.numel:,} elements, first "
            f"at {where}: {self.a} in A, {self.b} in B{peak}"
        )


def compare(a: StateDict, b: StateDict) -> Comparison:
    """B read as the checkpoint loaded into a model shaped like A."""
    out = Comparison()
    out.missing = [k for k in a.entries if k not in b.entries]
    out.unexpected = [k for k in b.entries if k not in a.entries]
    common_tensors = []
    for key, av in a.entries.items():
        bv = b.entries.get(key)
        if bv is None:
            continue
        if isinstance(av, TensorMeta) and isinstance(bv, TensorMeta):
            common_tensors.append(key)
            if av.shape is not None and bv.shape is not None and av.shape != bv.shape:
                out.shape.append((key, av.shape, bv.shape))
            if av.dtype != bv.dtype:
                out.dtype.append((key, av.dtype, bv.dtype))
        else:
            at, bt = _kind(av), _kind(bv)
            if at != bt or "torch.Tensor" in (at, bt):
                out.not_tensor.append((key, at, bt))
    out.compared = len(common_tensors)
    out.sharing = _sharing(a, b, common_tensors)
    return out


def _kind(value: TensorMeta | Other) -> str:
    return "torch.Tensor" if isinstance(value, TensorMeta) else value.type


def _sharing(a: StateDict, b: StateDict, keys: Iterable[str]) -> list[tuple[list[str], str]]:
    """Groups of keys sharing one storage on one side and not (all together) on the other."""
    keys = list(keys)
    out = []
    for side, this, that in (("a", a, b), ("b", b, a)):
        groups: dict[str, list[str]] = defaultdict(list)
        for key in keys:
            meta = this.entries[key]
            if isinstance(meta, TensorMeta) and meta.storage is not None:
                groups[meta.storage].append(key)
        for group in groups.values():
            if len(group) < 2:
                continue
            there = {
                m.storage if isinstance(m, TensorMeta) else None
                for m in (that.entries[k] for k in group)
            }
            if len(there) != 1 or None in there:
                out.append((group, side))
    return out


def torch_size(shape: tuple[int, ...] | None) -> str:
    """`torch.Size([768, 3, 16, 16])`, as torch prints a shape."""
    if shape is None:
        return "torch.Size([?])"
    return f"torch.Size([{', '.join(str(d) for d in shape)}])"


def _torch_type_text(name: str) -> str:
    # torch prints `type(input_param)`: <class 'int'>
    module, _, attr = name.rpartition(".")
    return f"<class '{attr if module == 'builtins' else name}'>"


def _short(dtype: str) -> str:
    return _SHORT_DTYPES.get(dtype, dtype)


def _key_list(keys: Sequence[str]) -> str:
    shown = ", ".join(keys[:_LIST_KEYS])
    more = len(keys) - _LIST_KEYS
    return shown + (f", ... and {more} more" if more > 0 else "")
