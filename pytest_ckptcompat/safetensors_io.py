"""safetensors in the fixture: what a file can hold, writing it, and reading it back.

A safetensors file is a flat map of names to dense tensors, and nothing else:
no nesting, no Python values, no two names for one storage. `to_safetensors`
says so in one message naming every key that breaks a rule (and what to do),
before safetensors itself refuses with the first one. An `nn.Module` is saved
with `save_model`, which keeps one name of each group of tied weights (and
records the others in the metadata) so that `load_model` can tie them again.

Imports torch and safetensors only when called: `pip install
"pytest-ckptcompat[safetensors]"` brings safetensors; nothing static needs it.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import CkptCompatError

FORMATS: Final = ("torch", "safetensors")


class SafetensorsError(CkptCompatError):
    """What safetensors cannot hold, or safetensors is not installed; one message."""


def require() -> Any:
    """The `safetensors.torch` module; `SafetensorsError` with the install line when missing."""
    try:
        import safetensors.torch
    except ImportError as exc:
        raise SafetensorsError(
            f"format='safetensors' needs the safetensors package ({exc}): "
            "pip install 'pytest-ckptcompat[safetensors]'"
        ) from None
    return safetensors.torch


@dataclass
class Saved:
    """What was written: the file's bytes, and what loading it must give back."""

    data: bytes
    expected: dict[str, Any]  # name -> the tensor as safetensors must return it (CPU, plain)
    aliases: dict[str, str] = field(default_factory=dict)  # dropped tied name -> the kept one


def check_format(fmt: object, where: str) -> str:
    """`fmt` when it is a known format; `CkptCompatError` naming `where` otherwise."""
    if fmt not in FORMATS:
        raise CkptCompatError(f"{where}: format={fmt!r}; use 'torch' or 'safetensors'")
    return str(fmt)


def problems(obj: object) -> list[str]:
    """Why `obj` (a mapping of tensors) cannot be a safetensors file; empty when it can."""
    torch = sys.modules["torch"]
    if not isinstance(obj, Mapping):
        return [
            f"safetensors holds a flat mapping of names to tensors, not {_type(obj)}: pass a "
            "state dict, or the nn.Module itself"
        ]
    out: list[str] = []
    not_tensors = []
    for key, value in obj.items():
        if not isinstance(key, str):
            out.append(f"key {key!r} is not a string: safetensors names are strings")
        elif isinstance(value, Mapping):
            out.append(
                f"{key!r} is a {_type(value)}: safetensors files are flat; pass the inner state "
                "dict, or flatten its keys ('model.layer.weight')"
            )
        elif not isinstance(value, torch.Tensor):
            not_tensors.append(f"{key!r} is {_type(value)}")
        elif value.layout != torch.strided or value.is_quantized:
            out.append(
                f"{key!r} is a {'quantized' if value.is_quantized else str(value.layout)} tensor: "
                "safetensors holds dense tensors only (.to_dense() / .dequantize() it)"
            )
        elif not value.is_contiguous():
            out.append(f"{key!r} is not contiguous: safetensors refuses it (.contiguous() it)")
    if not_tensors:
        out.insert(
            0,
            "safetensors holds only tensors: "
            + ", ".join(not_tensors)
            + " (keep Python values out of the file: in metadata= as strings, or in a "
            "torch.save file)",
        )
    shared = shared_groups({k: v for k, v in obj.items() if isinstance(v, torch.Tensor)})
    for group in shared:
        names = " and ".join(repr(k) for k in group)
        out.append(
            f"{names} share one storage (tied weights or views): safetensors stores no aliases; "
            "pass the nn.Module (roundtrip(model, format='safetensors') uses save_model / "
            "load_model, which keep one name and tie them again), or .clone() one of them"
        )
    return out


def shared_groups(tensors: Mapping[str, Any]) -> list[list[str]]:
    """Names whose tensors share a storage, as safetensors' own check groups them."""
    groups: dict[tuple[str, int], list[str]] = {}
    for key, t in tensors.items():
        if t.device.type == "meta":
            continue
        try:
            ptr = t.untyped_storage().data_ptr()
        except (RuntimeError, NotImplementedError, TypeError):
            continue
        if ptr:
            groups.setdefault((str(t.device), ptr), []).append(key)
    return [names for names in groups.values() if len(names) > 1]


def plain(t: Any) -> Any:
    """A tensor as safetensors gives it back: on the CPU, detached, a plain `torch.Tensor`."""
    torch = sys.modules["torch"]
    out = t.detach().to("cpu")
    return out.as_subclass(torch.Tensor) if type(out) is not torch.Tensor else out


def save(obj: object, metadata: dict[str, str] | None = None) -> Saved:
    """`obj` as safetensors bytes: a mapping with `save`, an `nn.Module` with `save_model`.

    Raises `SafetensorsError` listing every reason it cannot be saved.
    """
    st = require()
    torch = sys.modules["torch"]
    if isinstance(obj, torch.nn.Module):
        return _save_model(st, obj, metadata)
    found = problems(obj)
    if found:
        raise SafetensorsError("cannot be saved as safetensors:\n  " + "\n  ".join(found))
    assert isinstance(obj, Mapping)
    data = st.save(dict(obj), metadata=metadata)
    return Saved(data, {k: plain(v) for k, v in obj.items()})


def _save_model(st: Any, model: Any, metadata: dict[str, str] | None) -> Saved:
    state = model.state_dict()
    found = [p for p in problems(state) if "share one storage" not in p]
    if found:
        raise SafetensorsError("cannot be saved as safetensors:\n  " + "\n  ".join(found))
    with tempfile.TemporaryDirectory(prefix="ckptcompat-") as folder:
        path = os.path.join(folder, "model.safetensors")
        st.save_model(model, path, metadata=dict(metadata or {}))
        with open(path, "rb") as fh:
            data = fh.read()
    kept = st.load(data)
    aliases = {k: _kept_name(state, k, kept) for k in state if k not in kept}
    return Saved(data, {k: plain(state[k]) for k in kept}, aliases)


def _kept_name(state: Mapping[str, Any], key: str, kept: Mapping[str, Any]) -> str:
    ptr = state[key].untyped_storage().data_ptr()
    for name in kept:
        if state[name].untyped_storage().data_ptr() == ptr:
            return name
    return "?"


def load(data: bytes) -> dict[str, Any]:
    """The tensors of safetensors bytes, read by the installed safetensors."""
    loaded: dict[str, Any] = require().load(data)
    return loaded


def load_into_copy(model: Any, data: bytes) -> Any:
    """A copy of `model` whose tensors were zeroed, then filled by `load_model` from `data`."""
    import copy

    st = require()
    torch = sys.modules["torch"]
    clone = copy.deepcopy(model)
    with torch.no_grad():
        for t in clone.state_dict(keep_vars=True).values():
            if t.device.type != "meta":
                t.zero_()
    with tempfile.TemporaryDirectory(prefix="ckptcompat-") as folder:
        path = os.path.join(folder, "model.safetensors")
        with open(path, "wb") as fh:
            fh.write(data)
        st.load_model(clone, path, strict=True)
    return clone


def _type(value: object) -> str:
    t = type(value)
    module = getattr(t, "__module__", "builtins")
    name = getattr(t, "__qualname__", t.__name__)
    return name if module == "builtins" else f"{module}.{name}"
