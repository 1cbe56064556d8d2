"""Deep comparison of checkpoint objects after a save/load roundtrip.

`deep_diff(expected, actual)` walks both objects side by side and returns the
first few differences as `Mismatch` records, each with a path such as
`hparams.lr`, `optimizer['param groups'][0]` or `model.state_dict.0.weight`.
`format_mismatches` turns them into readable lines for a test failure.

Neither torch nor numpy is imported here: an object can only be a tensor or an
ndarray if its library is already in `sys.modules`, so the modules are looked
up there at comparison time and never loaded on our account.

Equality is roundtrip equality: types must match exactly (a `PosixPath` that
comes back as a `str` is a difference), NaN equals NaN at the same place, and
containers are compared element by element so the path points at the leaf.
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import math
import pathlib
import sys
import types
import warnings
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

__all__ = [
    "COUNT_CAP",
    "MAX_DEPTH",
    "Mismatch",
    "Mismatches",
    "attr_path",
    "deep_diff",
    "display_path",
    "format_mismatch",
    "format_mismatches",
    "index_path",
    "key_path",
    "short_repr",
    "type_name",
]

MAX_DEPTH: Final = 100
"""Nesting deeper than this is reported instead of compared (no RecursionError)."""

COUNT_CAP: Final = 10_000
"""Differences past the listed ones are counted up to this many, then the walk stops."""

_REPR_LIMIT: Final = 80

# Reasons that name one property of the object; formatted `dtype a != b`.
_PROPERTY_REASONS: Final = frozenset(
    {
        "type",
        "dtype",
        "shape",
        "device",
        "layout",
        "requires_grad",
        "length",
        "key order",
        "qscheme",
        "q_scale",
        "q_zero_point",
        "q_per_channel_axis",
    }
)
_VALUE: Final = "value"
_MISSING_KEY: Final = "missing key"
_UNEXPECTED_KEY: Final = "unexpected key"
_MISSING_ATTR: Final = "missing attribute"
_UNEXPECTED_ATTR: Final = "unexpected attribute"
# What compare="structure" keeps: same keys, types, shapes and dtypes; values may differ.
_STRUCTURE_REASONS: Final = frozenset(
    {"type", "dtype", "shape", "device", "layout", "length"}
    | {_MISSING_KEY, _UNEXPECTED_KEY, _MISSING_ATTR, _UNEXPECTED_ATTR}
)
_SET_ELEMENTS: Final = "set elements"
_ABSENT: Final = "<missing>"

# Compared with `==` and nothing else: immutable values with exact equality.
_ATOMIC_TYPES: Final[tuple[type, ...]] = (
    int,
    str,
    bytes,
    bytearray,
    bool,
    type(None),
    type(Ellipsis),
    type(NotImplemented),
    range,
    slice,
    # Classes, functions and modules pickle by reference: equal means the same object.
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.ModuleType,
)


class Mismatches(list["Mismatch"]):
    """The first `limit` mismatches, and how many there are in all (`total`).

    `total` counts every difference the walk found (up to `COUNT_CAP`; `capped`
    says it stopped there), so a message can say how many were not listed.
    """

    total: int = 0
    capped: bool = False

    @property
    def unlisted(self) -> int:
        """How many differences are not in the list."""
        return max(self.total - len(self), 0)


@dataclass(frozen=True)
class Mismatch:
    """One difference between the expected and the actual object.

    `path` locates it (`<root>` for the objects themselves); `reason` says what
    differs (`value`, `type`, `dtype`, `missing key`, ...) and `expected` /
    `actual` are short renderings of the two sides for that reason.
    """

    path: str
    expected: str
    actual: str
    reason: str


# --------------------------------------------------------------------------
# Paths


def key_path(parent: str, key: object) -> str:
    """Return the path of `parent[key]`: `a.b` for identifier keys, else `a['x y']`, `a[0]`."""
    if isinstance(key, str) and key.isidentifier():
        return f"{parent}.{key}" if parent else key
    return f"{parent}[{short_repr(key)}]"


def attr_path(parent: str, name: str) -> str:
    """Return the path of attribute `name` of `parent`: `a.name` (`name` at the root)."""
    return f"{parent}.{name}" if parent else name


def index_path(parent: str, index: int | tuple[int, ...]) -> str:
    """Return the path of item `index` of a sequence (`a[3]`) or array (`a[0, 1]`)."""
    if isinstance(index, tuple):
        return f"{parent}[{', '.join(str(i) for i in index)}]"
    return f"{parent}[{index}]"


def display_path(path: str) -> str:
    """`path`, or `<root>` for the empty path of the top-level object."""
    return path or "<root>"


def _dotted_path(parent: str, name: str) -> str:
    # state_dict keys and submodule names are already dotted paths
    # (`layer.0.weight`): join them as such rather than as `['layer.0.weight']`.
    parts = name.split(".")
    if name and all(p.isidentifier() or p.isdigit() for p in parts):
        return f"{parent}.{name}" if parent else name
    return key_path(parent, name)


# --------------------------------------------------------------------------
# Short renderings


def type_name(t: type) -> str:
    """`module.qualname` of a type, or just the name for builtins (`str`, `dict`)."""
    module = getattr(t, "__module__", None)
    qualname = getattr(t, "__qualname__", getattr(t, "__name__", "?"))
    if module in (None, "builtins"):
        return str(qualname)
    return f"{module}.{qualname}"


def _torch() -> Any:
    # Only a module that is already imported can have produced the object.
    return sys.modules.get("torch")


def _numpy() -> Any:
    return sys.modules.get("numpy")


def _is_tensor(obj: object) -> bool:
    torch = _torch()
    return torch is not None and isinstance(obj, torch.Tensor)


def _is_ndarray(obj: object) -> bool:
    np = _numpy()
    return np is not None and isinstance(obj, np.ndarray)


def _shape_text(shape: Iterable[Any]) -> str:
    return str(tuple(int(s) for s in shape))


def _cut(text: str, limit: int) -> str:
    # Collapse multi-line reprs (modules, arrays) to one line before cutting.
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 1)] + "..."


def short_repr(obj: object, limit: int = _REPR_LIMIT) -> str:
    """Render `obj` on one line in at most about `limit` characters.

    Tensors and arrays are summarised by shape and dtype instead of their
    values, and containers are rendered only as far as the limit reaches, so
    the cost does not depend on the size of the object.
    """
    return _cut(_bounded_repr(obj, limit, 0), limit)


def _bounded_repr(obj: object, budget: int, depth: int) -> str:
    if budget <= 0 or depth > 4:
        return "..."
    if _is_tensor(obj):
        return _tensor_summary(obj)
    if _is_ndarray(obj):
        return _array_summary(obj)
    torch = _torch()
    if torch is not None and isinstance(obj, torch.nn.Module):
        return f"{type(obj).__name__}(...)"
    if isinstance(obj, dict):
        items: Iterator[tuple[str, object]] = (
            (f"{_bounded_repr(k, budget, depth + 1)}: ", v) for k, v in obj.items()
        )
        body = _join_bounded(items, budget, depth, "{", "}")
        return body if type(obj) is dict else f"{type(obj).__name__}({body})"
    if isinstance(obj, tuple) and _namedtuple_fields(obj) is not None:
        names = (f"{f}=" for f in _namedtuple_fields(obj) or ())
        fields = zip(names, obj, strict=False)
        return type(obj).__name__ + _join_bounded(fields, budget, depth, "(", ")")
    if isinstance(obj, (list, tuple)):
        open_, close = ("[", "]") if isinstance(obj, list) else ("(", ")")
        body = _join_bounded((("", v) for v in obj), budget, depth, open_, close)
        if isinstance(obj, tuple) and len(obj) == 1:
            body = body[:-1] + ",)"
        return body if type(obj) in (list, tuple) else f"{type(obj).__name__}({body})"
    if isinstance(obj, (set, frozenset)):
        if not obj:
            return f"{type(obj).__name__}()"
        body = _join_bounded((("", v) for v in _sorted_by_repr(obj)), budget, depth, "{", "}")
        return body if type(obj) is set else f"{type(obj).__name__}({body})"
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        attrs = ((f"{f.name}=", getattr(obj, f.name, _ABSENT)) for f in dataclasses.fields(obj))
        return type(obj).__name__ + _join_bounded(attrs, budget, depth, "(", ")")
    if type(obj).__name__ == "Namespace" and type(obj).__module__ == "argparse":
        ns = ((f"{k}=", v) for k, v in vars(obj).items())
        return "Namespace" + _join_bounded(ns, budget, depth, "(", ")")
    try:
        text = repr(obj)
    except Exception:
        text = f"<{type_name(type(obj))} object>"
    return _cut(text, budget)


def _join_bounded(
    items: Iterable[tuple[str, object]], budget: int, depth: int, open_: str, close: str
) -> str:
    parts: list[str] = []
    used = len(open_) + len(close)
    for prefix, value in items:
        if used >= budget:
            parts.append("...")
            break
        text = prefix + _bounded_repr(value, budget - used - len(prefix), depth + 1)
        parts.append(text)
        used += len(text) + 2
    return open_ + ", ".join(parts) + close


def _sorted_by_repr(items: Iterable[object]) -> list[object]:
    # Sets have no order; sort by repr so messages are stable between runs.
    keyed = []
    for item in items:
        try:
            keyed.append((repr(item), item))
        except Exception:
            keyed.append((f"<{type_name(type(item))}>", item))
    keyed.sort(key=lambda pair: pair[0])
    return [item for _, item in keyed]


def _tensor_summary(t: Any) -> str:
    torch = _torch()
    name = "tensor" if type(t) is torch.Tensor else type(t).__name__
    parts = [f"shape={_shape_text(t.shape)}", f"dtype={t.dtype}"]
    if t.device.type != "cpu":
        parts.append(f"device={t.device}")
    if t.layout != torch.strided:
        parts.append(f"layout={t.layout}")
    return f"{name}({', '.join(parts)})"


def _array_summary(a: Any) -> str:
    name = "array" if type(a) is _numpy().ndarray else type(a).__name__
    return f"{name}(shape={_shape_text(a.shape)}, dtype={a.dtype})"


# --------------------------------------------------------------------------
# Formatting


def format_mismatch(m: Mismatch) -> str:
    """One line for one mismatch, e.g. `model.weight: dtype torch.float32 != torch.float16`."""
    if m.reason == _VALUE:
        return f"{m.path}: expected {m.expected}, got {m.actual}"
    if m.reason in _PROPERTY_REASONS:
        return f"{m.path}: {m.reason} {m.expected} != {m.actual}"
    if m.reason in (_MISSING_KEY, _MISSING_ATTR):
        return f"{m.path}: {m.reason} (expected {m.expected})"
    if m.reason in (_UNEXPECTED_KEY, _UNEXPECTED_ATTR):
        return f"{m.path}: {m.reason} (got {m.actual})"
    if m.reason == _SET_ELEMENTS:
        return f"{m.path}: only in expected: {m.expected}; only in actual: {m.actual}"
    return f"{m.path}: {m.reason}: expected {m.expected}, got {m.actual}"


def format_mismatches(ms: list[Mismatch]) -> str:
    """Render mismatches as indented lines (`  hparams.lr: expected 0.1, got 0.2`).

    When `ms` is a `Mismatches` that holds only the first of them, a last line
    says how many more there are.
    """
    lines = [f"  {format_mismatch(m)}" for m in ms]
    more = ms.unlisted if isinstance(ms, Mismatches) else 0
    if more:
        counted = f"at least {more:,}" if isinstance(ms, Mismatches) and ms.capped else f"{more:,}"
        plural = "" if counted == "1" else "s"
        lines.append(
            f"  ... and {counted} more difference{plural} (the first {len(ms)} are listed)"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------
# Comparison


#: `deep_diff(devices={ANY_DEVICE: ANY_DEVICE})`: the device is not compared (a golden
#: from another writer holds that writer's devices), values are, on the loaded device.
ANY_DEVICE = "*"


def deep_diff(
    expected: object,
    actual: object,
    *,
    limit: int = 20,
    structure: bool = False,
    devices: dict[str, str] | None = None,
    covered: frozenset[tuple[str, str]] = frozenset(),
) -> Mismatches:
    """Compare two checkpoint objects deeply; return at most `limit` mismatches.

    `structure=True` compares only keys, types, shapes and dtypes (for
    artifacts with random content), never values. `covered` holds `(path,
    reason)` pairs already reported another way (a state dict's summary):
    they are neither listed nor counted.

    `devices` says where the load put tensors saved on a device this machine does
    not have (`{"cuda:0": "cpu"}`, what `map_location` did): an expected tensor on
    such a device is expected there, and its values are compared on that device.
    Without it a tensor must come back on the device it was saved from.

    The first `limit` mismatches are listed; the walk goes on counting the
    rest (`Mismatches.total`) up to `COUNT_CAP`. An empty list means the
    objects are equal in every way a save/load roundtrip must preserve.
    This never raises for odd objects: a comparison that fails is reported as a
    mismatch whose reason names the exception.
    """
    if limit <= 0:
        return Mismatches()
    differ = _Differ(limit, structure, covered, devices or {})
    # Comparisons of foreign objects may warn (numpy, torch deprecations); the
    # diff is a diagnostic and must not fail a test run that turns warnings
    # into errors.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        differ.diff(expected, actual, "", 0)
    out = Mismatches(differ.out)
    out.total, out.capped = differ.total, differ.done
    return out


class _Differ:
    """State of one `deep_diff` call: results, cycle memo, keep-alive list."""

    def __init__(
        self,
        limit: int,
        structure: bool = False,
        covered: frozenset[tuple[str, str]] = frozenset(),
        devices: dict[str, str] | None = None,
    ) -> None:
        self.limit = limit
        self.structure = structure
        self.covered = covered
        self.devices = devices or {}
        self.total = 0  # every mismatch found, listed or not
        self.out: list[Mismatch] = []
        self.seen: set[tuple[int, int]] = set()
        # Objects whose ids are in `seen`. Temporaries (state_dict() results,
        # dense copies) would otherwise die and their ids be reused.
        self.keepalive: list[object] = []

    @property
    def full(self) -> bool:
        """The list is full: further mismatches are only counted."""
        return len(self.out) >= self.limit

    @property
    def done(self) -> bool:
        """Enough counted: the walk stops."""
        return self.total >= COUNT_CAP

    def add(self, path: str, expected: str, actual: str, reason: str) -> None:
        if self.structure and reason not in _STRUCTURE_REASONS:
            return
        shown = display_path(path)
        if (shown, reason) in self.covered:
            return
        self.total += 1
        if not self.full:
            self.out.append(Mismatch(shown, expected, actual, reason))

    def value(self, path: str, e: object, a: object) -> None:
        if self.full:  # counted only: no need to render them
            self.add(path, "", "", _VALUE)
        else:
            self.add(path, short_repr(e), short_repr(a), _VALUE)

    def diff(self, e: object, a: object, path: str, depth: int) -> None:
        if self.done or e is a:
            return
        if depth > MAX_DEPTH:
            self.add(
                path,
                short_repr(e),
                short_repr(a),
                f"nested deeper than {MAX_DEPTH} levels, not compared",
            )
            return
        if type(e) is not type(a):
            self.add(path, type_name(type(e)), type_name(type(a)), "type")
            return
        try:
            self._dispatch(e, a, path, depth)
        except Exception as exc:
            # A foreign object whose comparison blows up is a finding, not a crash.
            reason = f"comparison failed ({type(exc).__name__}: {_cut(str(exc), 60)})"
            self.add(path, short_repr(e), short_repr(a), reason)

    def _dispatch(self, e: Any, a: Any, path: str, depth: int) -> None:
        if isinstance(e, _ATOMIC_TYPES) and not isinstance(e, enum.Enum):
            if e != a:
                self.value(path, e, a)
            return
        if isinstance(e, float):
            if not _floats_equal(e, a):
                self.value(path, e, a)
            return
        if isinstance(e, complex):
            if not (_floats_equal(e.real, a.real) and _floats_equal(e.imag, a.imag)):
                self.value(path, e, a)
            return
        if isinstance(e, (enum.Enum, pathlib.PurePath)):
            if e != a:
                self.value(path, e, a)
            return
        if self._torch_dispatch(e, a, path, depth) or self._numpy_dispatch(e, a, path, depth):
            return
        # Everything below may contain itself: compare each pair once.
        pair = (id(e), id(a))
        if pair in self.seen:
            return
        self.seen.add(pair)
        self.keepalive += (e, a)
        if isinstance(e, dict):
            self._diff_dict(e, a, path, depth)
        elif isinstance(e, tuple) and _namedtuple_fields(e) is not None:
            # namedtuple: fields by name, which is how the code reads them.
            for name, ev, av in zip(_namedtuple_fields(e) or (), e, a, strict=False):
                self.diff(ev, av, attr_path(path, name), depth + 1)
            if len(e) != len(a):
                self.add(path, str(len(e)), str(len(a)), "length")
            self._diff_state(e, a, path, depth)
        elif isinstance(e, (list, tuple)):
            self._diff_sequence(e, a, path, depth)
        elif isinstance(e, (set, frozenset)):
            self._diff_set(e, a, path)
        elif isinstance(e, functools.partial):
            self.diff(e.func, a.func, attr_path(path, "func"), depth + 1)
            self.diff(e.args, a.args, attr_path(path, "args"), depth + 1)
            self.diff(e.keywords, a.keywords, attr_path(path, "keywords"), depth + 1)
            self._diff_state(e, a, path, depth)
        elif dataclasses.is_dataclass(e) or _has_state(e) or _has_state(a):
            self._diff_state(e, a, path, depth)
        else:
            self._diff_fallback(e, a, path)

    # -- builtins ----------------------------------------------------------

    def _diff_dict(self, e: dict[Any, Any], a: dict[Any, Any], path: str, depth: int) -> None:
        if isinstance(e, defaultdict) and isinstance(a, defaultdict):
            self.diff(
                e.default_factory, a.default_factory, attr_path(path, "default_factory"), depth + 1
            )
        if isinstance(e, OrderedDict) and list(e) != list(a) and set(e) == set(a):
            # Same keys in another order: OrderedDict equality says unequal.
            self.add(path, short_repr(list(e)), short_repr(list(a)), "key order")
        self._diff_mapping(e, a, path, depth, key_path, _MISSING_KEY, _UNEXPECTED_KEY)
        self._diff_state(e, a, path, depth)

    def _diff_mapping(
        self,
        e: Mapping[Any, Any],
        a: Mapping[Any, Any],
        path: str,
        depth: int,
        join: Callable[[str, Any], str],
        missing: str,
        unexpected: str,
    ) -> None:
        for key, ev in e.items():
            if self.done:
                return
            if key in a:
                self.diff(ev, a[key], join(path, key), depth + 1)
            else:
                self.add(join(path, key), short_repr(ev), _ABSENT, missing)
        for key, av in a.items():
            if self.done:
                return
            if key not in e:
                self.add(join(path, key), _ABSENT, short_repr(av), unexpected)

    def _diff_sequence(self, e: Any, a: Any, path: str, depth: int) -> None:
        if len(e) != len(a):
            self.add(path, str(len(e)), str(len(a)), "length")
        for i, (ev, av) in enumerate(zip(e, a, strict=False)):
            if self.done:
                return
            self.diff(ev, av, index_path(path, i), depth + 1)
        self._diff_state(e, a, path, depth)

    def _diff_set(self, e: Any, a: Any, path: str) -> None:
        only_e, only_a = e - a, a - e
        if only_e or only_a:
            self.add(path, _set_text(only_e), _set_text(only_a), _SET_ELEMENTS)

    def _diff_state(self, e: Any, a: Any, path: str, depth: int) -> None:
        # Attribute by attribute, like pickle's default `__reduce_ex__` sees it.
        es, as_ = _state(e), _state(a)
        if es or as_:
            self._diff_mapping(es, as_, path, depth, attr_path, _MISSING_ATTR, _UNEXPECTED_ATTR)

    def _diff_fallback(self, e: Any, a: Any, path: str) -> None:
        eq: object = type(e).__eq__
        if eq is object.__eq__:
            # Identity equality and no state to look at: nothing can differ.
            return
        result = e == a
        if result is NotImplemented or not bool(result):
            self.value(path, e, a)

    # -- torch -------------------------------------------------------------

    def _torch_dispatch(self, e: Any, a: Any, path: str, depth: int) -> bool:
        torch = _torch()
        if torch is None:
            return False
        if isinstance(e, torch.Tensor):
            pair = (id(e), id(a))
            if pair not in self.seen:
                self.seen.add(pair)
                self.keepalive += (e, a)
                self._diff_tensor(torch, e, a, path, depth)
            return True
        if isinstance(e, torch.nn.Module):
            pair = (id(e), id(a))
            if pair not in self.seen:
                self.seen.add(pair)
                self.keepalive += (e, a)
                es, as_ = e.state_dict(), a.state_dict()
                self.keepalive += (es, as_)
                base = attr_path(path, "state_dict")
                self._diff_mapping(
                    es, as_, base, depth, _dotted_path, _MISSING_KEY, _UNEXPECTED_KEY
                )
            return True
        if isinstance(e, torch.Generator):
            # Generator state is device-bound and not part of a checkpoint's meaning.
            return True
        if isinstance(e, (torch.device, torch.dtype, torch.Size)):
            if e != a:
                self.add(path, str(e), str(a), _VALUE)
            return True
        return False

    def _diff_tensor(self, torch: Any, e: Any, a: Any, path: str, depth: int) -> None:
        differs = False
        # Where the load was to put it: where it was saved, or where map_location sent it.
        mapped = self.devices.get(str(e.device)) or self.devices.get(ANY_DEVICE)
        if mapped == ANY_DEVICE:
            expected_device = a.device
        else:
            expected_device = torch.device(mapped) if mapped else e.device
        for reason, ev, av in (
            ("layout", e.layout, a.layout),
            ("dtype", e.dtype, a.dtype),
            ("shape", _shape_text(e.shape), _shape_text(a.shape)),
            ("device", expected_device, a.device),
            # torch.save keeps requires_grad of every tensor, not just Parameters.
            ("requires_grad", e.requires_grad, a.requires_grad),
        ):
            if ev != av:
                self.add(path, str(ev), str(av), reason)
                differs = True
        # Parameters and tensor subclasses can carry Python attributes.
        self._diff_state(e, a, path, depth)
        if differs or e.device.type == "meta":
            # Meta tensors have no data: shape and dtype are all there is.
            return
        ev, av = e.detach(), a.detach()
        if mapped and ev.device != av.device:
            ev = ev.to(av.device)  # compared where the load put it
        if ev.is_quantized:
            if not self._diff_quantization(e, a, path, depth):
                return
            ev, av = ev.int_repr(), av.int_repr()
        elif ev.layout != torch.strided:
            ev, av = ev.to_dense(), av.to_dense()
        problem = _tensor_values_diff(torch, ev, av)
        if problem is not None:
            reason, first_e, first_a = problem
            self.add(path, first_e, first_a, reason)

    def _diff_quantization(self, e: Any, a: Any, path: str, depth: int) -> bool:
        torch = _torch()
        scheme = e.qscheme()
        if scheme != a.qscheme():
            self.add(path, str(scheme), str(a.qscheme()), "qscheme")
            return False
        if scheme in (torch.per_tensor_affine, torch.per_tensor_symmetric):
            before = self.total
            if not _floats_equal(e.q_scale(), a.q_scale()):
                self.add(path, repr(e.q_scale()), repr(a.q_scale()), "q_scale")
            if e.q_zero_point() != a.q_zero_point():
                self.add(path, repr(e.q_zero_point()), repr(a.q_zero_point()), "q_zero_point")
            return self.total == before
        if e.q_per_channel_axis() != a.q_per_channel_axis():
            self.add(
                path, str(e.q_per_channel_axis()), str(a.q_per_channel_axis()), "q_per_channel_axis"
            )
            return False
        before = self.total
        self.diff(
            e.q_per_channel_scales(),
            a.q_per_channel_scales(),
            attr_path(path, "q_per_channel_scales()"),
            depth + 1,
        )
        self.diff(
            e.q_per_channel_zero_points(),
            a.q_per_channel_zero_points(),
            attr_path(path, "q_per_channel_zero_points()"),
            depth + 1,
        )
        return self.total == before

    # -- numpy -------------------------------------------------------------

    def _numpy_dispatch(self, e: Any, a: Any, path: str, depth: int) -> bool:
        np = _numpy()
        if np is None:
            return False
        if isinstance(e, np.ndarray):
            self._diff_ndarray(np, e, a, path, depth)
            return True
        if isinstance(e, np.generic):
            if e.dtype != a.dtype:
                self.add(path, str(e.dtype), str(a.dtype), "dtype")
            elif not _numpy_scalars_equal(np, e, a):
                self.value(path, e, a)
            return True
        if isinstance(e, np.dtype):
            if e != a:
                self.value(path, e, a)
            return True
        if isinstance(e, np.random.Generator):
            self.diff(
                e.bit_generator.state,
                a.bit_generator.state,
                attr_path(path, "bit_generator.state"),
                depth + 1,
            )
            return True
        if isinstance(e, np.random.RandomState):
            self.diff(e.get_state(), a.get_state(), attr_path(path, "get_state()"), depth + 1)
            return True
        if isinstance(e, np.random.BitGenerator):
            self.diff(e.state, a.state, attr_path(path, "state"), depth + 1)
            return True
        return False

    def _diff_ndarray(self, np: Any, e: Any, a: Any, path: str, depth: int) -> None:
        if e.dtype != a.dtype:
            self.add(path, str(e.dtype), str(a.dtype), "dtype")
            return
        if e.shape != a.shape:
            self.add(path, _shape_text(e.shape), _shape_text(a.shape), "shape")
            return
        if e.dtype.hasobject:
            # Object arrays hold arbitrary Python objects: compare each one deeply.
            for index in np.ndindex(e.shape):
                if self.done:
                    return
                self.diff(e[index], a[index], index_path(path, tuple(index)), depth + 1)
            return
        try:
            equal = bool(np.array_equal(e, a, equal_nan=True))
        except TypeError:
            # equal_nan is refused for dtypes without NaN (strings, structured).
            equal = bool(np.array_equal(e, a))
        if equal:
            return
        problem = _array_values_diff(np, e, a)
        if problem is None:
            self.value(path, e, a)
        else:
            reason, first_e, first_a = problem
            self.add(path, first_e, first_a, reason)


# --------------------------------------------------------------------------
# Helpers


def _namedtuple_fields(obj: object) -> tuple[str, ...] | None:
    fields = getattr(type(obj), "_fields", None)
    if isinstance(obj, tuple) and isinstance(fields, tuple):
        return tuple(str(f) for f in fields)
    return None


def _floats_equal(x: float, y: float) -> bool:
    return x == y or (math.isnan(x) and math.isnan(y))


def _set_text(items: Iterable[object]) -> str:
    elements = _sorted_by_repr(items)
    return short_repr(set(elements)) if elements else "{}"


def _has_state(obj: object) -> bool:
    return bool(getattr(obj, "__dict__", None)) or bool(_slot_names(type(obj)))


def _slot_names(cls: type) -> list[str]:
    names: list[str] = []
    for klass in cls.__mro__:
        slots = klass.__dict__.get("__slots__", ())
        if isinstance(slots, str):
            slots = (slots,)
        for slot in slots:
            if slot in ("__dict__", "__weakref__"):
                continue
            # Private slots are stored under their mangled name.
            if slot.startswith("__") and not slot.endswith("__"):
                slot = f"_{klass.__name__.lstrip('_')}{slot}"
            names.append(slot)
    return names


def _state(obj: object) -> dict[str, object]:
    state: dict[str, object] = {}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if hasattr(obj, f.name):
                state[f.name] = getattr(obj, f.name)
    for name in _slot_names(type(obj)):
        if hasattr(obj, name):
            state.setdefault(name, getattr(obj, name))
    attrs = getattr(obj, "__dict__", None)
    if isinstance(attrs, dict):
        for name, value in attrs.items():
            state.setdefault(str(name), value)
    return state


def _numpy_scalars_equal(np: Any, e: Any, a: Any) -> bool:
    # Identical bytes settle it (NaN with the same payload, NaT); values
    # decide otherwise (-0.0 == 0.0, NaNs with different payloads).
    try:
        if e.tobytes() == a.tobytes():
            return True
    except Exception:
        pass
    if isinstance(e, np.inexact) and np.isnan(e) and np.isnan(a):
        if isinstance(e, np.complexfloating):
            return bool(
                _floats_equal(float(e.real), float(a.real))
                and _floats_equal(float(e.imag), float(a.imag))
            )
        return True
    if isinstance(e, (np.datetime64, np.timedelta64)) and np.isnat(e) and np.isnat(a):
        return True
    return bool(e == a)


def _unravel(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    index: list[int] = []
    for size in reversed(shape):
        flat, rest = divmod(flat, size) if size else (flat, 0)
        index.append(rest)
    return tuple(reversed(index))


def _values_reason(count: int, total: int, index: tuple[int, ...]) -> str:
    where = "[" + ", ".join(str(i) for i in index) + "]"
    return f"values differ at {count} of {total} elements, first at {where}"


def _item_text(value: Any) -> str:
    try:
        return short_repr(value.item())
    except Exception:
        return "?"


def _tensor_values_diff(torch: Any, e: Any, a: Any) -> tuple[str, str, str] | None:
    """None if equal (NaN == NaN), else (reason, first expected, first actual)."""
    try:
        if torch.equal(e, a):
            return None
    except (RuntimeError, NotImplementedError, TypeError):
        pass  # no `equal` kernel for this dtype/backend: find out below.
    shape = tuple(int(s) for s in e.shape)
    e = e.resolve_conj().resolve_neg().contiguous().reshape(-1)
    a = a.resolve_conj().resolve_neg().contiguous().reshape(-1)
    differ = _tensor_elements_differ(torch, e, a)
    if differ is None:
        return ("values differ", _tensor_summary(e), _tensor_summary(a))
    count = int(differ.sum().item())
    if count == 0:
        return None
    flat = int(differ.nonzero()[0, 0].item())
    return (
        _values_reason(count, e.numel(), _unravel(flat, shape)),
        _item_text(e[flat]),
        _item_text(a[flat]),
    )


def _tensor_elements_differ(torch: Any, e: Any, a: Any) -> Any:
    """Return a flat bool tensor marking elements that differ (NaN-aware), None if unknowable."""
    differ: Any = None
    size = e.element_size()
    try:
        # Bit patterns work for every dtype, including float8 and bool, where
        # comparison kernels may be missing.
        eb = e.view(torch.uint8).reshape(-1, size)
        ab = a.view(torch.uint8).reshape(-1, size)
        differ = (eb != ab).any(dim=1)
    except (RuntimeError, NotImplementedError, TypeError):
        try:
            differ = e.float() != a.float()
        except (RuntimeError, NotImplementedError, TypeError):
            return None
    if e.is_floating_point() or e.is_complex():
        parts = [(e.real, a.real), (e.imag, a.imag)] if e.is_complex() else [(e, a)]
        same = torch.ones_like(differ)
        for x, y in parts:
            try:
                same &= (x == y) | (x.isnan() & y.isnan())
            except (RuntimeError, NotImplementedError, TypeError):
                x, y = x.float(), y.float()
                same &= (x == y) | (x.isnan() & y.isnan())
        differ = differ & ~same
    return differ


def _array_values_diff(np: Any, e: Any, a: Any) -> tuple[str, str, str] | None:
    try:
        differ = np.asarray(e != a)
        if np.issubdtype(e.dtype, np.inexact):
            differ &= ~(np.isnan(e) & np.isnan(a))
        elif np.issubdtype(e.dtype, np.datetime64) or np.issubdtype(e.dtype, np.timedelta64):
            differ &= ~(np.isnat(e) & np.isnat(a))
        count = int(differ.sum())
        if count == 0 or differ.shape != e.shape:
            return None
        index = tuple(int(i) for i in np.argwhere(differ)[0])
    except Exception:
        return None
    return (
        _values_reason(count, int(e.size), index),
        short_repr(e[index]),
        short_repr(a[index]),
    )


def state_dict_report(expected: object, actual: object, path: str = "") -> list[str]:
    """Differences between state dicts, worded like `load_state_dict(strict=True)`.

    `expected` is what the code produces now, `actual` what the golden holds.
    Mappings whose values are all tensors are state dicts; they are found at
    any depth of plain dicts (`{"model": sd, "optimizer": ...}`).
    """
    return state_dict_findings(expected, actual, path)[0]


def state_dict_findings(
    expected: object, actual: object, path: str = ""
) -> tuple[list[str], frozenset[tuple[str, str]]]:
    """`state_dict_report`'s lines, and the `(path, reason)` pairs they report.

    Per state dict: a summary (`state_dict (model): 62 dtype fp32->fp16`), the
    missing and unexpected keys and size mismatches in torch's words, and the
    dtype changes as one line per change (not one per key). The pairs are for
    `deep_diff(covered=...)`, so that nothing is said twice.
    """
    if not isinstance(expected, dict) or not isinstance(actual, dict):
        return [], frozenset()
    where = f" ({display_path(path)})" if path else ""
    if not (_is_state_dict(expected) or _is_state_dict(actual)):
        lines: list[str] = []
        covered: frozenset[tuple[str, str]] = frozenset()
        for key in expected:
            if key in actual:
                more, also = state_dict_findings(expected[key], actual[key], key_path(path, key))
                lines += more
                covered |= also
        return lines, covered
    from .scan.statedict import compare, from_live, torch_size

    c = compare(from_live(expected), from_live(actual))
    if c.same:
        return [], frozenset()
    lines = [f"state_dict{where}: {c.summary()} (now -> golden)"]
    if c.missing:
        keys = ", ".join(f'"{k}"' for k in c.missing)
        lines.append(f"Missing key(s) in state_dict{where}: {keys}.")
    if c.unexpected:
        keys = ", ".join(f'"{k}"' for k in c.unexpected)
        lines.append(f"Unexpected key(s) in state_dict{where}: {keys}.")
    for key, now_shape, golden_shape in c.shape:
        lines.append(
            f"size mismatch for {key}{where}: copying a param with shape "
            f"{torch_size(golden_shape)} from checkpoint, the shape in current model is "
            f"{torch_size(now_shape)}."
        )
    changes: dict[tuple[str, str], list[str]] = {}
    for key, now, golden in c.dtype:
        changes.setdefault((now, golden), []).append(key)
    for (now, golden), names in changes.items():
        rest = f", ... and {len(names) - 10} more" if len(names) > 10 else ""
        shown = ", ".join(names[:10]) + rest
        lines.append(
            f"dtype mismatch for {len(names)} key(s){where}: torch.{golden} in the golden, "
            f"torch.{now} now: {shown}."
        )
    pairs = {(display_path(key_path(path, k)), "missing key") for k in c.missing}
    pairs |= {(display_path(key_path(path, k)), "unexpected key") for k in c.unexpected}
    pairs |= {(display_path(key_path(path, k)), "shape") for k, _, _ in c.shape}
    pairs |= {(display_path(key_path(path, k)), "dtype") for k, _, _ in c.dtype}
    return lines, frozenset(pairs)


def _is_state_dict(obj: dict[Any, Any]) -> bool:
    return bool(obj) and all(isinstance(k, str) for k in obj) and all(map(_is_tensor, obj.values()))
