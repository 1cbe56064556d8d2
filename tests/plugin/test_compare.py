from __future__ import annotations

import argparse
import collections
import dataclasses
import enum
import functools
import io
import os
import pathlib
import subprocess
import sys
import warnings
from typing import Any, NamedTuple

import numpy as np
import pytest
import torch

from pytest_ckptcompat.compare import (
    MAX_DEPTH,
    Mismatch,
    deep_diff,
    format_mismatches,
    short_repr,
)


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Point(NamedTuple):
    x: int
    y: float


@dataclasses.dataclass
class Optim:
    lr: float
    betas: tuple[float, float] = (0.9, 0.999)


@dataclasses.dataclass
class Config:
    name: str
    optim: Optim
    out: pathlib.Path | str = pathlib.Path("/tmp/out")


class Plain:
    def __init__(self, **kw: Any) -> None:
        self.__dict__.update(kw)


def roundtrip(obj: object) -> object:
    buffer = io.BytesIO()
    # torch's own deprecation warnings (TypedStorage for quantized tensors) are not under test.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.save(obj, buffer)
        buffer.seek(0)
        return torch.load(buffer, weights_only=False)


def paths(ms: list[Mismatch]) -> list[str]:
    return [m.path for m in ms]


def quantized(values: list[float], scale: float, zero_point: int) -> torch.Tensor:
    # Quantized tensor creation is deprecated (and warns) but still loads from old checkpoints.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.quantize_per_tensor(torch.tensor(values), scale, zero_point, torch.quint8)


def rich_checkpoint() -> dict[str, object]:
    nan = float("nan")
    return {
        "model": torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU()),
        "state": {"weight": torch.randn(2, 3), "nan": torch.tensor([1.0, nan])},
        "param": torch.nn.Parameter(torch.ones(2)),
        "half": torch.ones(3, dtype=torch.float16),
        # build in float32 and cast: older torch has no float8 fill kernel
        "f8": torch.ones(2).to(torch.float8_e4m3fn),
        "bools": torch.tensor([True, False]),
        "complex": torch.tensor([1 + 2j, complex(nan, 1)]),
        "sparse": torch.eye(3).to_sparse(),
        "meta": torch.empty(2, 2, device="meta"),
        "quant": quantized([0.1, 0.2], 0.1, 3),
        "hparams": argparse.Namespace(lr=0.1, data_dir=pathlib.Path("/data")),
        "cfg": Config("run", Optim(1e-3)),
        "ordered": collections.OrderedDict([("b", 1), ("a", 2)]),
        "counts": collections.Counter("hello"),
        "buckets": [1, collections.defaultdict(list, {"k": [1, 2]})],
        "point": Point(1, nan),
        "tags": {"a", "b"},
        "frozen": frozenset({1, 2}),
        "color": Color.RED,
        "fn": functools.partial(int, base=2),
        "misc": (range(3), slice(1, 5, 2), b"\x00\x01", bytearray(b"ab"), 1 + 2j, None),
        "torch_misc": (torch.device("cpu"), torch.Size([2, 3]), torch.float16),
        "np_array": np.array([1.0, np.nan]),
        "np_strings": np.array(["a", "bc"]),
        "np_objects": np.array([{"a": 1}, None], dtype=object),
        "np_scalar": np.float64(np.nan),
        "np_int": np.int32(7),
        "np_dtype": np.dtype("float32"),
        "rng": np.random.default_rng(0),
        "legacy_rng": np.random.RandomState(0),
        "nan": nan,
        "plain": Plain(a=1, b=[2, 3]),
    }


# --------------------------------------------------------------------------
# Equality


def test_rich_checkpoint_survives_torch_roundtrip() -> None:
    ckpt = rich_checkpoint()
    assert deep_diff(ckpt, roundtrip(ckpt)) == []


def _set_attr(obj: Any, name: str, value: object) -> None:
    setattr(obj, name, value)


MUTATIONS: dict[str, tuple[Any, str, str]] = {
    # name: (mutate the loaded copy, expected path, expected reason prefix)
    "path_to_str": (
        lambda c: _set_attr(c["hparams"], "data_dir", "/data"),
        "hparams.data_dir",
        "type",
    ),
    "tensor_value": (lambda c: c["state"]["nan"].__setitem__(1, 0.0), "state.nan", "values differ"),
    "param_grad": (lambda c: c["param"].requires_grad_(False), "param", "requires_grad"),
    "np_scalar": (lambda c: c.__setitem__("np_scalar", np.float64(1.0)), "np_scalar", "value"),
    "defaultdict_item": (lambda c: c["buckets"][1]["k"].append(3), "buckets[1].k", "length"),
    "nested_dataclass": (
        lambda c: _set_attr(c["cfg"].optim, "betas", (0.9, 0.99)),
        "cfg.optim.betas[1]",
        "value",
    ),
    "rng_advanced": (lambda c: c["rng"].random(), "rng.bit_generator.state.state.state", "value"),
    "set_grew": (lambda c: c["tags"].add("c"), "tags", "set elements"),
    "namedtuple": (lambda c: c.__setitem__("point", Point(2, float("nan"))), "point.x", "value"),
    "meta_shape": (
        lambda c: c.__setitem__("meta", torch.empty(2, 3, device="meta")),
        "meta",
        "shape",
    ),
    "module_weight": (
        lambda c: c["model"][0].weight.data.add_(1),
        "model.state_dict.0.weight",
        "values differ",
    ),
    "object_array": (
        lambda c: c["np_objects"][0].__setitem__("a", 2),
        "np_objects[0].a",
        "value",
    ),
}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_mutation_after_roundtrip_is_found(name: str) -> None:
    mutate, path, reason = MUTATIONS[name]
    ckpt = rich_checkpoint()
    loaded = roundtrip(ckpt)
    mutate(loaded)
    ms = deep_diff(ckpt, loaded)
    assert [(m.path, m.reason.startswith(reason)) for m in ms] == [(path, True)]


def test_identical_objects_have_no_mismatch() -> None:
    ckpt = rich_checkpoint()
    assert deep_diff(ckpt, ckpt) == []


@pytest.mark.parametrize(
    ("expected", "actual"),
    [
        (float("nan"), float("nan")),
        (complex(float("nan"), 1.0), complex(float("nan"), 1.0)),
        (torch.tensor([1.0, float("nan")]), torch.tensor([1.0, float("nan")])),
        (
            torch.tensor([float("nan")], dtype=torch.bfloat16),
            torch.tensor([float("nan")], dtype=torch.bfloat16),
        ),
        (np.array([np.nan, 2.0]), np.array([np.nan, 2.0])),
        (np.float64(np.nan), np.float64(np.nan)),
        (np.float16(np.nan), np.float16(np.nan)),
        (np.datetime64("NaT"), np.datetime64("NaT")),
    ],
)
def test_nan_equals_nan(expected: object, actual: object) -> None:
    assert expected is not actual
    assert deep_diff(expected, actual) == []


def test_nan_at_different_positions_differs() -> None:
    nan = float("nan")
    ms = deep_diff(torch.tensor([1.0, nan, 3.0]), torch.tensor([1.0, 2.0, nan]))
    assert len(ms) == 1
    assert ms[0].reason == "values differ at 2 of 3 elements, first at [1]"
    assert (ms[0].expected, ms[0].actual) == ("nan", "2.0")
    assert deep_diff(np.array([np.nan, 1.0]), np.array([1.0, np.nan]))[0].path == "<root>"
    assert deep_diff(float("nan"), 1.0)[0].reason == "value"


# --------------------------------------------------------------------------
# Messages and paths


def test_value_line_format() -> None:
    ms = deep_diff({"hparams": argparse.Namespace(lr=0.1)}, {"hparams": argparse.Namespace(lr=0.2)})
    assert ms == [Mismatch("hparams.lr", "0.1", "0.2", "value")]
    assert format_mismatches(ms) == "  hparams.lr: expected 0.1, got 0.2"


def test_dtype_line_format() -> None:
    ms = deep_diff(
        {"model": {"weight": torch.zeros(2)}},
        {"model": {"weight": torch.zeros(2, dtype=torch.float16)}},
    )
    assert format_mismatches(ms) == "  model.weight: dtype torch.float32 != torch.float16"


@pytest.mark.parametrize(
    ("expected", "actual", "path"),
    [
        ({"a": {"b": 1}}, {"a": {"b": 2}}, "a.b"),
        ({"a": {0: 1}}, {"a": {0: 2}}, "a[0]"),
        ({"a": {"key with space": 1}}, {"a": {"key with space": 2}}, "a['key with space']"),
        ({"a": [0, 1, 2, 3]}, {"a": [0, 1, 2, 4]}, "a[3]"),
        ({"a": (0, (1, 2))}, {"a": (0, (1, 3))}, "a[1][1]"),
        ([0, 1, 2, 3], [0, 1, 2, 4], "[3]"),
        (1, 2, "<root>"),
        ({"p": Point(1, 2.0)}, {"p": Point(1, 3.0)}, "p.y"),
        ({"o": Plain(attr=1)}, {"o": Plain(attr=2)}, "o.attr"),
        ({"ns": argparse.Namespace(x=[1])}, {"ns": argparse.Namespace(x=[2])}, "ns.x[0]"),
        ({"f": functools.partial(int, "1")}, {"f": functools.partial(int, "2")}, "f.args[0]"),
        (np.array([[1, 2], [3, 4]]), np.array([[1, 2], [3, 5]]), "<root>"),
        (np.array([None, [1]], dtype=object), np.array([None, [2]], dtype=object), "[1][0]"),
    ],
)
def test_path_syntax(expected: object, actual: object, path: str) -> None:
    assert paths(deep_diff(expected, actual)) == [path]


def test_type_mismatch_is_reported_not_descended() -> None:
    ms = deep_diff({"out": pathlib.Path("/x")}, {"out": "/x"})
    assert ms == [Mismatch("out", "pathlib.PosixPath", "str", "type")]
    assert format_mismatches(ms) == "  out: type pathlib.PosixPath != str"
    # bool is not int, tuple is not list, Counter is not dict.
    assert deep_diff(1, True)[0].reason == "type"
    assert deep_diff((1,), [1])[0].reason == "type"
    ms = deep_diff(collections.Counter(a=1), {"a": 1})
    assert (ms[0].expected, ms[0].actual) == ("collections.Counter", "dict")


def test_missing_and_unexpected_keys_are_named() -> None:
    ms = deep_diff({"opt": {"lr": 0.1, "momentum": 0.9}}, {"opt": {"lr": 0.1, "nesterov": True}})
    assert ms == [
        Mismatch("opt.momentum", "0.9", "<missing>", "missing key"),
        Mismatch("opt.nesterov", "<missing>", "True", "unexpected key"),
    ]
    assert format_mismatches(ms).splitlines() == [
        "  opt.momentum: missing key (expected 0.9)",
        "  opt.nesterov: unexpected key (got True)",
    ]


def test_missing_attribute_of_plain_object() -> None:
    ms = deep_diff(Plain(a=1, b=2), Plain(a=1))
    assert ms == [Mismatch("b", "2", "<missing>", "missing attribute")]


def test_short_repr_of_tensor_and_long_values() -> None:
    assert short_repr(torch.zeros(2, 3)) == "tensor(shape=(2, 3), dtype=torch.float32)"
    assert short_repr(torch.nn.Parameter(torch.zeros(1))) == (
        "Parameter(shape=(1,), dtype=torch.float32)"
    )
    assert short_repr(np.zeros(3)) == "array(shape=(3,), dtype=float64)"
    long = short_repr(list(range(1000)))
    assert len(long) <= 80
    assert long.startswith("[0, 1, 2")
    assert long.endswith("...")
    assert len(short_repr("x" * 500)) <= 80
    # A huge tensor inside a container is still summarised, not printed.
    assert "shape=(1000, 1000)" in short_repr({"w": torch.zeros(1000, 1000)})


def test_limit_stops_early() -> None:
    ms = deep_diff(list(range(100)), list(range(1, 101)), limit=5)
    assert paths(ms) == ["[0]", "[1]", "[2]", "[3]", "[4]"]
    assert deep_diff(1, 2, limit=0) == []


# --------------------------------------------------------------------------
# torch


def test_tensor_shape_device_and_requires_grad() -> None:
    ms = deep_diff(torch.zeros(2, 3), torch.zeros(3, 2))
    assert ms == [Mismatch("<root>", "(2, 3)", "(3, 2)", "shape")]
    ms = deep_diff(torch.zeros(2), torch.zeros(2, device="meta"))
    assert [(m.reason, m.expected, m.actual) for m in ms] == [("device", "cpu", "meta")]
    ms = deep_diff(torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(2), False))
    assert [(m.reason, m.expected, m.actual) for m in ms] == [("requires_grad", "True", "False")]
    ms = deep_diff(torch.nn.Parameter(torch.zeros(2)), torch.zeros(2))
    assert ms[0].reason == "type"
    assert ms[0].expected == "torch.nn.parameter.Parameter"


def test_meta_tensors_compare_shape_and_dtype_only() -> None:
    assert deep_diff(torch.empty(2, device="meta"), torch.empty(2, device="meta")) == []
    ms = deep_diff(torch.empty(2, device="meta"), torch.empty(2, device="meta", dtype=torch.int8))
    assert [m.reason for m in ms] == ["dtype"]


@pytest.mark.parametrize(
    "dtype", [torch.bool, torch.float8_e4m3fn, torch.float8_e5m2, torch.complex64, torch.uint16]
)
def test_unusual_dtypes(dtype: torch.dtype) -> None:
    a = torch.tensor([0, 1, 1]).to(dtype)
    b = torch.tensor([0, 1, 0]).to(dtype)
    assert deep_diff(a, a.clone()) == []
    ms = deep_diff(a, b)
    assert len(ms) == 1
    assert ms[0].reason == "values differ at 1 of 3 elements, first at [2]"


def test_tensor_value_difference_gives_first_index() -> None:
    e = torch.zeros(2, 3)
    a = e.clone()
    a[1, 2] = 5.0
    ms = deep_diff({"w": e}, {"w": a})
    assert format_mismatches(ms) == (
        "  w: values differ at 1 of 6 elements, first at [1, 2]: expected 0.0, got 5.0"
    )


def test_sparse_and_quantized_tensors() -> None:
    assert deep_diff(torch.eye(3).to_sparse(), torch.eye(3).to_sparse()) == []
    ms = deep_diff(torch.eye(3).to_sparse(), (2 * torch.eye(3)).to_sparse())
    assert ms[0].reason.startswith("values differ at 3 of 9 elements")
    ms = deep_diff(torch.eye(2).to_sparse(), torch.eye(2))
    assert [m.reason for m in ms] == ["layout"]

    q = quantized([0.1, 0.2], 0.1, 3)
    assert deep_diff(q, quantized([0.1, 0.2], 0.1, 3)) == []
    assert [m.reason for m in deep_diff(q, quantized([0.1, 0.2], 0.2, 3))] == ["q_scale"]
    assert [m.reason for m in deep_diff(q, quantized([0.1, 0.2], 0.1, 4))] == ["q_zero_point"]
    ms = deep_diff(q, quantized([0.1, 0.5], 0.1, 3))
    assert ms[0].reason.startswith("values differ at 1 of 2 elements, first at [1]")


def test_module_compares_state_dict() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    other = torch.nn.Sequential(torch.nn.Linear(2, 2))
    other.load_state_dict(model.state_dict())
    assert deep_diff({"model": model}, {"model": other}) == []
    with torch.no_grad():
        other[0].weight[0, 1] += 1
    ms = deep_diff({"model": model}, {"model": other})
    assert paths(ms) == ["model.state_dict.0.weight"]
    assert ms[0].reason.endswith("first at [0, 1]")
    ms = deep_diff(torch.nn.Linear(2, 2), torch.nn.Conv1d(2, 2, 1))
    assert ms[0].reason == "type"


def test_module_state_dict_missing_key() -> None:
    ms = deep_diff(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2, bias=False))
    missing = [m for m in ms if m.reason == "missing key"]
    assert [m.path for m in missing] == ["state_dict.bias"]


def test_torch_value_objects() -> None:
    assert deep_diff(torch.Size([2, 3]), torch.Size([2, 3])) == []
    assert deep_diff(torch.Size([2, 3]), torch.Size([3, 2]))[0].expected == "torch.Size([2, 3])"
    assert deep_diff(torch.device("cpu"), torch.device("meta"))[0].reason == "value"
    assert deep_diff(torch.float32, torch.float16)[0].actual == "torch.float16"


# --------------------------------------------------------------------------
# numpy


def test_numpy_scalars_numpy2_spelling() -> None:
    ms = deep_diff({"best": np.float64(1.5)}, {"best": np.float64(2.5)})
    # repr is `np.float64(1.5)` on numpy 2, `1.5` on numpy 1
    expected, got = repr(np.float64(1.5)), repr(np.float64(2.5))
    assert format_mismatches(ms) == f"  best: expected {expected}, got {got}"
    ms = deep_diff(np.float64(1.5), np.float32(1.5))
    assert (ms[0].reason, ms[0].expected, ms[0].actual) == (
        "type",
        "numpy.float64",
        "numpy.float32",
    )
    assert deep_diff(np.int64(3), np.int64(3)) == []
    ms = deep_diff(np.datetime64("2024-01-01", "D"), np.datetime64("2024-01-01", "s"))
    assert ms[0].reason == "dtype"


def test_numpy_arrays() -> None:
    ms = deep_diff(np.zeros(3), np.zeros(3, dtype=np.float32))
    assert (ms[0].reason, ms[0].expected, ms[0].actual) == ("dtype", "float64", "float32")
    assert deep_diff(np.zeros(3), np.zeros(4))[0].reason == "shape"
    assert deep_diff(np.array(["a", "b"]), np.array(["a", "b"])) == []
    ms = deep_diff(np.array(["a", "b"]), np.array(["a", "c"]))
    assert ms[0].reason == "values differ at 1 of 2 elements, first at [1]"
    assert deep_diff(np.dtype("float32"), np.dtype("float32")) == []
    assert deep_diff(np.dtype("<i4"), np.dtype(">i4"))[0].reason == "value"


def test_numpy_generators() -> None:
    rng = np.random.default_rng(0)
    assert deep_diff(rng, np.random.default_rng(0)) == []
    advanced = np.random.default_rng(0)
    advanced.random()
    ms = deep_diff({"rng": rng}, {"rng": advanced})
    assert ms
    assert ms[0].path.startswith("rng.bit_generator.state")
    legacy = np.random.RandomState(0)
    moved = np.random.RandomState(0)
    moved.rand()
    ms = deep_diff(legacy, moved)
    assert ms
    assert ms[0].path.startswith("get_state()")
    assert deep_diff(legacy, np.random.RandomState(0)) == []


# --------------------------------------------------------------------------
# Python containers and objects


def test_nested_dataclass() -> None:
    ms = deep_diff({"cfg": Config("a", Optim(0.1))}, {"cfg": Config("a", Optim(0.2))})
    assert ms == [Mismatch("cfg.optim.lr", "0.1", "0.2", "value")]
    ms = deep_diff(Config("a", Optim(0.1)), Config("a", Optim(0.1), out="/tmp/out"))
    assert ms == [Mismatch("out", "pathlib.PosixPath", "str", "type")]


def test_defaultdict_inside_list() -> None:
    e = [0, collections.defaultdict(list, {"k": [1]})]
    assert deep_diff(e, [0, collections.defaultdict(list, {"k": [1]})]) == []
    ms = deep_diff(e, [0, collections.defaultdict(set, {"k": [1]})])
    assert paths(ms) == ["[1].default_factory"]
    ms = deep_diff(e, [0, collections.defaultdict(list, {"k": [2]})])
    assert paths(ms) == ["[1].k[0]"]
    ms = deep_diff(e, [0, {"k": [1]}])
    assert (ms[0].path, ms[0].expected, ms[0].actual) == ("[1]", "collections.defaultdict", "dict")


def test_ordered_dict_key_order() -> None:
    e = collections.OrderedDict([("a", 1), ("b", 2)])
    ms = deep_diff(e, collections.OrderedDict([("b", 2), ("a", 1)]))
    assert [m.reason for m in ms] == ["key order"]
    # Plain dicts compare as mappings; order is not part of their equality.
    assert deep_diff({"a": 1, "b": 2}, {"b": 2, "a": 1}) == []


def test_sets_report_one_sided_elements() -> None:
    ms = deep_diff({"tags": {1, 2, 3}}, {"tags": {2, 3, 4}})
    assert format_mismatches(ms) == "  tags: only in expected: {1}; only in actual: {4}"
    assert deep_diff(frozenset({1}), {1})[0].reason == "type"


def test_misc_values() -> None:
    assert deep_diff(Color.RED, Color.BLUE)[0].reason == "value"
    assert deep_diff(range(3), range(4))[0].reason == "value"
    assert deep_diff(slice(1, 2), slice(1, 3))[0].reason == "value"
    assert deep_diff(b"ab", b"ac")[0].reason == "value"
    assert deep_diff(1 + 2j, 1 + 3j)[0].reason == "value"
    ms = deep_diff(functools.partial(int, base=2), functools.partial(float))
    assert "func" in paths(ms)
    assert deep_diff(pathlib.Path("/a"), pathlib.Path("/b"))[0].reason == "value"


def test_cycles_terminate() -> None:
    e: list[object] = [1]
    e.append(e)
    a: list[object] = [1]
    a.append(a)
    assert deep_diff(e, a) == []
    b: list[object] = [2]
    b.append(b)
    assert paths(deep_diff(e, b)) == ["[0]"]

    d1: dict[str, object] = {"x": torch.zeros(1)}
    d1["self"] = d1
    d2: dict[str, object] = {"x": torch.ones(1)}
    d2["self"] = d2
    assert paths(deep_diff(d1, d2)) == ["x"]

    o1, o2 = Plain(v=1), Plain(v=1)
    o1.me, o2.me = o1, o2
    assert deep_diff(o1, o2) == []


def test_deep_nesting_stops_without_recursion_error() -> None:
    def nest(depth: int) -> list[object]:
        root: list[object] = []
        cur = root
        for _ in range(depth):
            nxt: list[object] = []
            cur.append(nxt)
            cur = nxt
        return root

    ms = deep_diff(nest(1000), nest(1000))
    assert len(ms) == 1
    assert ms[0].reason == f"nested deeper than {MAX_DEPTH} levels, not compared"
    assert ms[0].path == "[0]" * (MAX_DEPTH + 1)
    assert deep_diff(nest(50), nest(50)) == []


def test_failing_comparison_is_a_mismatch_not_an_exception() -> None:
    class Weird:
        __slots__ = ()

        def __eq__(self, other: object) -> bool:
            raise ValueError("no")

        __hash__ = object.__hash__

    ms = deep_diff(Weird(), Weird())
    assert len(ms) == 1
    assert ms[0].reason.startswith("comparison failed (ValueError")


def test_fallback_uses_eq() -> None:
    import datetime
    import decimal

    assert deep_diff(decimal.Decimal("1.5"), decimal.Decimal("1.5")) == []
    ms = deep_diff(datetime.date(2024, 1, 1), datetime.date(2024, 1, 2))
    assert ms == [
        Mismatch("<root>", "datetime.date(2024, 1, 1)", "datetime.date(2024, 1, 2)", "value")
    ]


def test_import_does_not_import_torch_or_numpy() -> None:
    code = (
        "import sys, pytest_ckptcompat.compare, pytest_ckptcompat.locate\n"
        "from pytest_ckptcompat.compare import deep_diff\n"
        "assert deep_diff({'a': 1}, {'a': 2})\n"
        "bad = sorted(m for m in ('torch', 'numpy') if m in sys.modules)\n"
        "assert not bad, bad\n"
    )
    root = str(pathlib.Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert proc.returncode == 0, proc.stderr


# --------------------------------------------------------------------------
# How many: past the listed differences, and state dicts summarised


def test_differences_past_the_limit_are_counted_and_said() -> None:
    ms = deep_diff(list(range(100)), list(range(1, 101)), limit=5)
    assert ms.total == 100
    assert ms.unlisted == 95
    assert format_mismatches(ms).splitlines()[-1] == (
        "  ... and 95 more differences (the first 5 are listed)"
    )
    one_more = deep_diff([1, 2], [3, 4], limit=1)
    assert format_mismatches(one_more).splitlines()[-1] == (
        "  ... and 1 more difference (the first 1 are listed)"
    )
    assert format_mismatches(deep_diff([1], [2])) == "  [0]: expected 1, got 2"


def test_counting_stops_at_the_cap() -> None:
    from pytest_ckptcompat.compare import COUNT_CAP

    ms = deep_diff(list(range(COUNT_CAP * 2)), list(range(1, COUNT_CAP * 2 + 1)))
    assert ms.capped
    assert ms.total == COUNT_CAP
    assert format_mismatches(ms).endswith(
        f"and at least {COUNT_CAP - 20:,} more differences (the first 20 are listed)"
    )


def test_tensor_value_differences_past_20_are_counted() -> None:
    from pytest_ckptcompat.outcomes import _compare

    g = torch.Generator().manual_seed(0)
    expected = {f"layer{i}.weight": torch.randn(3, generator=g) for i in range(30)}
    loaded = {k: v + 1 for k, v in expected.items()}
    text = _compare(expected, loaded, "equal")
    lines = text.splitlines()
    assert len(lines) == 21
    assert lines[-1] == "  ... and 10 more differences (the first 20 are listed)"


def test_fp16_drift_is_one_summary_not_62_lines() -> None:
    from pytest_ckptcompat.outcomes import _compare

    g = torch.Generator().manual_seed(0)
    now = {"model": {f"blocks.{i}.weight": torch.randn(4, generator=g) for i in range(62)}}
    golden = {"model": {k: v.half() for k, v in now["model"].items()}}
    lines = _compare(now, golden, "equal").splitlines()
    assert lines == [
        "state_dict (model): 62 dtype fp32->fp16 (now -> golden)",
        "dtype mismatch for 62 key(s) (model): torch.float16 in the golden, torch.float32 now: "
        "blocks.0.weight, blocks.1.weight, blocks.2.weight, blocks.3.weight, blocks.4.weight, "
        "blocks.5.weight, blocks.6.weight, blocks.7.weight, blocks.8.weight, blocks.9.weight, "
        "... and 52 more.",
    ]


def test_state_dict_report_with_other_differences_says_each_once() -> None:
    from pytest_ckptcompat.outcomes import _compare

    now = {"model": {"w": torch.zeros(2), "b": torch.zeros(3)}, "epoch": 3}
    golden = {"model": {"w": torch.zeros(4), "c": torch.zeros(3)}, "epoch": 4}
    lines = _compare(now, golden, "equal").splitlines()
    assert lines == [
        "state_dict (model): 1 missing, 1 unexpected, 1 shape (now -> golden)",
        'Missing key(s) in state_dict (model): "b".',
        'Unexpected key(s) in state_dict (model): "c".',
        "size mismatch for w (model): copying a param with shape torch.Size([4]) from "
        "checkpoint, the shape in current model is torch.Size([2]).",
        "  epoch: expected 3, got 4",
    ]
