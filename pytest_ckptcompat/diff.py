"""`ckptcompat diff A B`: two checkpoints' state dicts, compared without loading them.

Each side is a torch file, a `.safetensors` file, or a directory of shards
(a Hugging Face index names its files; otherwise its `.safetensors` files,
otherwise every checkpoint file in it). Keys, shapes, dtypes and storages come
from `scan.inventory` (nothing is unpickled, no tensor byte is read) and are
compared by `scan.statedict` in `load_state_dict`'s words. Only `--values`
loads anything: torch files with `torch.load(weights_only=True)`,
safetensors files with safetensors, one tensor at a time.

This module also turns live tensors (a model's `state_dict()`, a loaded
checkpoint) into the same `StateDict`, for `ckpt_compat.assert_loads_into`.
"""

from __future__ import annotations

import argparse
import json
import warnings
from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import schemas
from .errors import CkptCompatError
from .scan.discover import find_checkpoints
from .scan.inventory import Inventory, open_inventory
from .scan.statedict import (
    Comparison,
    Other,
    StateDict,
    TensorMeta,
    ValueDiff,
    compare,
    from_inventory,
    is_state_dict,
    strip_prefixes,
)
from .scan.structure import Mapping

EXIT_SAME, EXIT_DIFFERENT = 0, 1
_FLAT_NOTE = "compared by its path (--key to choose)"


@dataclass
class Side:
    """One side of a diff: what was read, and where each key came from."""

    path: str
    format: str
    sd: StateDict
    files: list[str] = field(default_factory=list)
    # key (after prefixes are stripped) -> (file, its format, the key in that file)
    origin: dict[str, tuple[str, str, str]] = field(default_factory=dict)
    dangerous: list[str] = field(default_factory=list)


def read_side(path: str, key: str | None, strip: Sequence[str], name: str) -> Side:
    """Read one side statically; `CkptCompatError` (exit 2) when it cannot be read."""
    p = Path(path)
    if p.is_dir():
        return _read_directory(p, key, strip, name)
    inv = open_inventory(p)
    sd, notes = _state_dict(inv, key, name)
    sd.notes = []
    raw_keys = list(sd.entries)
    sd = strip_prefixes(sd, strip, name)
    sd.notes = notes + sd.notes + [f"{name}: {p}" for p in inv.problems]
    side = Side(
        str(p), inv.format, sd, [str(p)], dangerous=[g.name for g in inv.dangerous] + inv.threats
    )
    for raw, new in zip(raw_keys, _stripped(raw_keys, strip), strict=True):
        side.origin[new] = (str(p), inv.format, raw)
    _warn_dangerous(side, name)
    return side


def _state_dict(inv: Inventory, key: str | None, name: str) -> tuple[StateDict, list[str]]:
    if inv.header is not None and key:
        sd = from_inventory(inv)
        return sd, [f"{name}: --key {key} does not apply to a safetensors file (flat)"]
    try:
        sd = from_inventory(inv, key)
    except CkptCompatError:
        # --key names the other side's state dict; this one is a state dict already
        if not (key and isinstance(inv.root, Mapping) and is_state_dict(inv.root)):
            raise
        sd = from_inventory(inv)
        return sd, [f"{name}: no entry {key!r}; its root is a state dict, compared as it is"]
    return sd, [f"{name}: {note}" for note in sd.notes]


def _stripped(keys: Sequence[str], strip: Sequence[str]) -> list[str]:
    out = []
    for key in keys:
        new = key
        for prefix in strip:
            if prefix and key.startswith(prefix):
                new = key[len(prefix) :]
                break
        out.append(new)
    return out


def _shard_files(directory: Path) -> tuple[list[Path], list[str], set[str] | None]:
    """The weight files of a folder, notes on the choice, and the keys its index lists."""
    indexes = sorted(directory.glob("*.index.json"))
    notes: list[str] = []
    for index in indexes:
        try:
            doc = json.loads(index.read_text(encoding="utf-8"))
            weight_map = doc["weight_map"]
            names = sorted(set(weight_map.values()))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CkptCompatError(f"{index}: not a shard index ({type(exc).__name__})") from None
        files = [directory / n for n in names]
        notes.append(f"the shards {index.name} lists ({len(files)} file(s))")
        return files, notes, {str(k) for k in weight_map}
    found = find_checkpoints([directory])
    files = [f for f in found.files if f.name.endswith(".safetensors")]
    if files:
        notes.append(f"its .safetensors files ({len(files)})")
        return files, notes, None
    if not found.files:
        raise CkptCompatError(f"{directory}: no checkpoint file in this directory")
    notes.append(f"every checkpoint file in it ({len(found.files)})")
    return found.files, notes, None


def _read_directory(directory: Path, key: str | None, strip: Sequence[str], name: str) -> Side:
    files, how, listed = _shard_files(directory)
    merged: dict[str, TensorMeta | Other] = {}
    side = Side(str(directory), "directory", StateDict(merged), [str(f) for f in files])
    notes = [f"{name}: read {', '.join(how)}"]
    for i, file in enumerate(files):
        inv = open_inventory(file)
        sd, more = _state_dict(inv, key, name)
        notes += [n for n in more if n not in notes]
        notes += [f"{name}: {file.name}: {p}" for p in inv.problems]
        side.dangerous += [g.name for g in inv.dangerous] + inv.threats
        for raw, new in zip(sd.entries, _stripped(list(sd.entries), strip), strict=True):
            value = sd.entries[raw]
            if isinstance(value, TensorMeta) and value.storage is not None:
                value = TensorMeta(value.dtype, value.shape, f"{i}:{value.storage}")
            if new in merged:
                notes.append(f"{name}: {new!r} is in more than one shard (the last one counts)")
            merged[new] = value
            side.origin[new] = (str(file), inv.format, raw)
    if listed is not None:
        held = {raw for _, _, raw in side.origin.values()}
        absent = sorted(listed - held)
        if absent:
            notes.append(
                f"{name}: the index lists {len(absent)} key(s) no shard holds: "
                f"{', '.join(absent[:5])}"
            )
    if strip:
        notes.append(f"{name}: prefix {' / '.join(repr(p) for p in strip)} stripped")
    side.sd = StateDict(merged, key, notes)
    _warn_dangerous(side, name)
    return side


def _warn_dangerous(side: Side, name: str) -> None:
    """Say it where the keys compare the same: a file that can run code is never 'same'."""
    if side.dangerous:
        names = sorted(set(side.dangerous))
        side.sd.notes.append(
            f"{name}: DANGEROUS: names globals that can run code ({', '.join(names[:3])}"
            f"{', ...' if len(names) > 3 else ''}): never torch.load it"
        )


# --- values (only with --values: loads, under weights_only=True or safetensors) ----------


def compare_values(a: Side, b: Side, comparison: Comparison) -> list[ValueDiff]:
    """The keys whose values differ.

    Tensors of one shape on both sides, element by element; entries that are no tensor
    on either side, as the fixture compares objects (`compare.deep_diff`).
    """
    import torch

    from .compare import deep_diff

    shapes = {k for k, _, _ in comparison.shape}
    keys = [
        k
        for k, v in a.sd.entries.items()
        if k in b.sd.entries
        and isinstance(v, TensorMeta) == isinstance(b.sd.entries[k], TensorMeta)
        and k not in shapes
    ]
    out = []
    with _Loader(a) as load_a, _Loader(b) as load_b:
        for key in keys:
            ea, eb = load_a(key), load_b(key)
            if isinstance(a.sd.entries[key], TensorMeta):
                found = _value_diff(torch, key, ea, eb)
            else:
                found = _other_diff(key, deep_diff(ea, eb, limit=1))
            if found is not None:
                out.append(found)
    return out


def _other_diff(key: str, mismatches: Any) -> ValueDiff | None:
    """A non-tensor entry's first difference (`compare.deep_diff`'s), or None when equal."""
    if not mismatches:
        return None
    first = mismatches[0]
    at = "" if first.path == "<root>" else first.path  # deep_diff's path inside the entry
    return ValueDiff(
        key, mismatches.total, 0, (), first.expected, first.actual, tensor=False, at=at
    )


def load_side(side: Side, safe_globals: Sequence[Any] = ()) -> dict[str, Any]:
    """Every tensor of a side, loaded (weights_only=True with `safe_globals`, or safetensors)."""
    with _Loader(side, safe_globals) as load:
        return {key: load(key) for key in side.origin}


def select(obj: Any, key: str | None) -> Any:
    """The state dict in a checkpoint held in memory: at `key`, or found as `diff` finds it."""
    from .scan.statedict import NESTED_KEYS

    if key:
        node = _navigate(obj, key)
        if node is None:
            shown = ", ".join(map(str, list(obj)[:12])) if isinstance(obj, MappingABC) else ""
            raise CkptCompatError(f"no entry {key!r} in the checkpoint (top-level keys: {shown})")
        return node
    if isinstance(obj, MappingABC) and not _all_tensors(obj):
        for name in NESTED_KEYS:
            node = obj.get(name)
            if isinstance(node, MappingABC) and _all_tensors(node):
                return node
    return obj


def _all_tensors(obj: MappingABC[Any, Any]) -> bool:
    import sys

    torch = sys.modules.get("torch")
    return (
        bool(obj) and torch is not None and all(isinstance(v, torch.Tensor) for v in obj.values())
    )


class _Loader:
    """Tensors of one side by key: safetensors lazily, torch files with weights_only=True."""

    def __init__(self, side: Side, safe_globals: Sequence[Any] = ()) -> None:
        self.side = side
        self.safe_globals = safe_globals
        self.cache: dict[str, Any] = {}
        self.handles: list[Any] = []
        if side.dangerous:
            raise CkptCompatError(
                f"{side.path}: names globals that can run code "
                f"({', '.join(sorted(set(side.dangerous))[:3])}): refusing to load it"
            )

    def __enter__(self) -> _Loader:
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self.handles:
            handle.__exit__(None, None, None)

    def __call__(self, key: str) -> Any:
        file, fmt, raw = self.side.origin[key]
        if fmt == "safetensors":
            return self._safetensors(file).get_tensor(raw)
        return self._torch(file)[raw]

    def _safetensors(self, file: str) -> Any:
        if file not in self.cache:
            try:
                from safetensors import safe_open
            except ImportError:
                raise CkptCompatError(
                    f"{file}: loading it needs the safetensors package "
                    "(pip install 'pytest-ckptcompat[safetensors]')"
                ) from None
            handle: Any = safe_open(file, framework="pt", device="cpu")
            self.handles.append(handle)
            self.cache[file] = handle.__enter__()
        return self.cache[file]

    def _torch(self, file: str) -> Any:
        if file not in self.cache:
            self.cache[file] = _torch_state_dict(file, self.side, self.safe_globals)
        return self.cache[file]


def _torch_state_dict(file: str, side: Side, safe_globals: Sequence[Any] = ()) -> Any:
    import torch

    from .outcomes import torch_says
    from .torchcompat import safe_globals as registered

    key = side.sd.key
    if key is None and any(n.endswith(_FLAT_NOTE) for n in side.sd.notes):
        raise CkptCompatError(
            f"{file}: loading values needs a state dict (a mapping of tensors): give --key"
        )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            with registered(list(safe_globals)):
                obj = torch.load(file, weights_only=True, map_location="cpu", mmap=_is_zip(file))
        except Exception as exc:  # torch's refusal is the finding
            raise CkptCompatError(
                f"{file}: torch.load(weights_only=True) fails: {torch_says(exc)} "
                f"(`ckptcompat scan {file}` names every blocked global)"
            ) from None
    node = obj
    if key:
        node = _navigate(obj, key)
    if not isinstance(node, MappingABC):
        raise CkptCompatError(f"{file}: no state dict at {key or 'the root'}")
    return node


def _is_zip(file: str) -> bool:
    with open(file, "rb") as fh:
        return fh.read(4) == b"PK\x03\x04"


def _navigate(obj: Any, key: str) -> Any:
    if isinstance(obj, MappingABC) and key in obj:
        return obj[key]
    parts = key.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head, rest = ".".join(parts[:i]), ".".join(parts[i:])
        child = obj.get(head) if isinstance(obj, MappingABC) else getattr(obj, head, None)
        if child is not None:
            return _navigate(child, rest)
    return getattr(obj, key, None)


def _value_diff(torch: Any, key: str, ea: Any, eb: Any) -> ValueDiff | None:
    from .compare import _item_text, _tensor_elements_differ, _unravel

    shape = tuple(int(s) for s in ea.shape)
    x = ea.detach().contiguous().reshape(-1)
    y = eb.detach().contiguous().reshape(-1)
    if x.dtype == y.dtype:
        differ = _tensor_elements_differ(torch, x, y)
    else:
        wide = torch.complex128 if (x.is_complex() or y.is_complex()) else torch.float64
        x, y = x.to(wide), y.to(wide)
        differ = (x != y) & ~(x.isnan() & y.isnan())
    if differ is None:
        return ValueDiff(key, -1, x.numel(), (), "?", "?")
    count = int(differ.sum().item())
    if count == 0:
        return None
    flat = int(differ.nonzero()[0, 0].item())
    peak = None
    if x.is_floating_point() or x.is_complex():
        wide = torch.complex128 if (x.is_complex() or y.is_complex()) else torch.float64
        try:
            gap = (x[differ].to(wide) - y[differ].to(wide)).abs()
            finite = gap[torch.isfinite(gap)]
            peak = float(finite.max().item()) if finite.numel() else None
        except (RuntimeError, TypeError):
            peak = None
    return ValueDiff(
        key, count, x.numel(), _unravel(flat, shape), _item_text(x[flat]), _item_text(y[flat]), peak
    )


# --- the command ----------------------------------------------------------------------------


def run_diff(args: argparse.Namespace) -> int:
    """`ckptcompat diff`: print the comparison; 0 same, 1 different (2 is raised as an error)."""
    a = read_side(args.a, args.key, args.strip_prefix, "A")
    b = read_side(args.b, args.key, args.strip_prefix, "B")
    comparison = compare(a.sd, b.sd)
    if args.values:
        comparison.values = compare_values(a, b, comparison)
    if args.json:
        print(json.dumps(diff_json(a, b, comparison), indent=2))
    else:
        print(diff_text(a, b, comparison))
    return EXIT_SAME if comparison.same else EXIT_DIFFERENT


def _side_line(label: str, side: Side, role: str) -> str:
    files = f", {len(side.files)} files" if side.format == "directory" else ""
    return f"{label}  {side.path}: {side.format}{files}, {side.sd.tensors:,} tensors ({role})"


def diff_text(a: Side, b: Side, c: Comparison) -> str:
    """The text of `ckptcompat diff`: the summary line first."""
    out = [c.summary()]
    out.append(_side_line("A", a, "the model's side"))
    out.append(_side_line("B", b, "the checkpoint's side"))
    errors = c.load_state_dict_lines()
    if errors:
        out.append("load_state_dict(strict=True) of B into a model shaped like A:")
        out.append("Error(s) in loading state_dict:")
        out += [f"\t{line}" for line in errors]
    others = c.other_lines()
    if others:
        out.append("Also (load_state_dict does not check these):" if errors else "Differences:")
        out += [f"\t{line}" for line in others]
    out += [f"  note: {n}" for n in a.sd.notes + b.sd.notes]
    return "\n".join(out)


def diff_json(a: Side, b: Side, c: Comparison) -> schemas.DiffDoc:
    """`ckptcompat.diff/1`."""

    def side(s: Side) -> schemas.DiffSide:
        return {
            "path": s.path, "format": s.format, "files": s.files, "key": s.sd.key,
            "tensors": s.sd.tensors, "notes": s.sd.notes,
        }  # fmt: skip

    def shape(v: tuple[int, ...] | None) -> list[int] | None:
        return None if v is None else list(v)

    return {
        "schema": schemas.DIFF,
        "a": side(a),
        "b": side(b),
        "same": c.same,
        "summary": c.summary(),
        "counts": c.counts(),
        "compared": c.compared,
        "missing": c.missing,
        "unexpected": c.unexpected,
        "shape": [{"key": k, "a": shape(x), "b": shape(y)} for k, x, y in c.shape],
        "dtype": [{"key": k, "a": x, "b": y} for k, x, y in c.dtype],
        "sharing": [{"keys": keys, "shared_in": s} for keys, s in c.sharing],
        "not_tensor": [{"key": k, "a": x, "b": y} for k, x, y in c.not_tensor],
        "values": None
        if c.values is None
        else [
            {
                "key": v.key,
                "differ": v.differ,
                "numel": v.numel,
                "first": list(v.first),
                "a": v.a,
                "b": v.b,
                "max_abs_diff": v.max_abs_diff,
                "tensor": v.tensor,
                "at": v.at,
            }
            for v in c.values
        ],
        "messages": c.load_state_dict_lines(),
    }
