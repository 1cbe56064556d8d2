from __future__ import annotations

import argparse
import collections
import dataclasses
import enum
import pathlib
import pickle
import threading
from typing import Any

import numpy as np
import pytest
import torch

from pytest_ckptcompat.locate import describe_location, locate_globals


@dataclasses.dataclass
class Optim:
    lr: float
    schedule_dir: pathlib.Path | None = None


@dataclasses.dataclass
class Config:
    optim: Optim
    seed: int = 0


class Mode(enum.Enum):
    TRAIN = "train"


class Opaque:
    """Keeps a path in its __dict__ but pickles only a string."""

    def __init__(self, where: pathlib.Path) -> None:
        self.where = where

    def __reduce__(self) -> tuple[Any, ...]:
        return (str, (str(self.where),))


def one(obj: object, name: str, **kw: Any) -> list[str]:
    return locate_globals(obj, [name], **kw)[name]


def test_brief_examples() -> None:
    ckpt = {"hparams": argparse.Namespace(data_dir=pathlib.Path("/x"), lr=0.1)}
    assert locate_globals(ckpt, ["pathlib.PosixPath", "argparse.Namespace"]) == {
        "pathlib.PosixPath": ["hparams.data_dir"],
        "argparse.Namespace": ["hparams"],
    }


def test_name_not_needed_maps_to_empty_list() -> None:
    ckpt = {"lr": 0.1, "w": torch.zeros(2)}
    assert locate_globals(ckpt, ["pathlib.PosixPath", "builtins.set"]) == {
        "pathlib.PosixPath": [],
        "builtins.set": [],
    }
    assert locate_globals(ckpt, []) == {}


@pytest.mark.parametrize(
    "name",
    [
        "numpy._core.multiarray.scalar",
        "numpy.core.multiarray.scalar",  # the numpy 1 spelling finds the same object
        "numpy.dtypes.Float64DType",  # never written as a GLOBAL
        "numpy.dtype[float64]",  # numpy < 1.25 name of the same dtype class
    ],
)
def test_numpy_scalar_names(name: str) -> None:
    ckpt = {"metrics": {"best": np.float64(0.5), "count": 3, "arr": np.zeros(2, np.float32)}}
    assert one(ckpt, name) == ["metrics.best"]


def test_numpy_dtype_classes_of_arrays_and_dtypes() -> None:
    ckpt = {"arr": np.zeros(2, np.float32), "dt": np.dtype("int16"), "x": 1}
    assert one(ckpt, "numpy.dtypes.Float32DType") == ["arr"]
    assert one(ckpt, "numpy.dtypes.Int16DType") == ["dt"]
    assert one(ckpt, "numpy.ndarray") == ["arr"]
    assert one(ckpt, "numpy.dtype") == ["arr", "dt"]
    assert one(ckpt, "numpy.dtypes.Float64DType") == []


def test_numpy_random_hidden_classes() -> None:
    # RandomState is BUILT, never written as a GLOBAL; torch still requires it.
    ckpt = {"state": {"rng": np.random.RandomState(0), "gen": np.random.default_rng(0)}}
    assert one(ckpt, "numpy.random.mtrand.RandomState") == ["state.rng"]
    assert one(ckpt, "numpy.random._pickle.__generator_ctor") == ["state.gen"]


def test_defaultdict_inside_list() -> None:
    ckpt = {"buckets": [[1, 2], collections.defaultdict(list, {"a": [1]}), "x"]}
    found = locate_globals(ckpt, ["collections.defaultdict", "builtins.list"])
    # The defaultdict needs `list` itself (its default_factory), not via its items.
    assert found == {"collections.defaultdict": ["buckets[1]"], "builtins.list": ["buckets[1]"]}


@pytest.mark.parametrize("name", ["builtins.set", "__builtin__.set"])
def test_python2_spelling_is_the_same_global(name: str) -> None:
    # Protocol 2 writes `__builtin__ set`; both spellings must find it.
    assert one({"tags": {"a"}, "frozen": frozenset()}, name) == ["tags"]
    assert one({"frozen": frozenset({1})}, "builtins.frozenset") == ["frozen"]


def test_module_paths() -> None:
    ckpt = {"model": torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.ReLU()), "epoch": 1}
    found = locate_globals(
        ckpt,
        [
            "torch.nn.modules.container.Sequential",
            "torch.nn.modules.linear.Linear",
            "torch.nn.modules.activation.ReLU",
            "torch._utils._rebuild_parameter",
        ],
    )
    assert found == {
        "torch.nn.modules.container.Sequential": ["model"],
        "torch.nn.modules.linear.Linear": ["model.0"],
        "torch.nn.modules.activation.ReLU": ["model.1"],
        "torch._utils._rebuild_parameter": ["model.0.weight", "model.0.bias"],
    }


def test_tensors_are_not_charged_for_storage_pickling() -> None:
    ckpt = {"w": torch.zeros(3), "h": torch.zeros(2, dtype=torch.float16)}
    assert one(ckpt, "torch._utils._rebuild_tensor_v2") == ["w", "h"]
    # Without the persistent ids torch.save uses, plain pickle writes these.
    plain_pickle = pickle.dumps(ckpt, protocol=2)
    assert b"_load_from_bytes" in plain_pickle
    assert one(ckpt, "torch.storage._load_from_bytes") == []
    assert one(ckpt, "torch.HalfStorage") == []


def test_nested_dataclass() -> None:
    ckpt = {"cfg": Config(Optim(0.1, schedule_dir=pathlib.Path("s")))}
    found = locate_globals(ckpt, ["pathlib.PosixPath", f"{__name__}.Optim", f"{__name__}.Config"])
    assert found == {
        "pathlib.PosixPath": ["cfg.optim.schedule_dir"],
        f"{__name__}.Optim": ["cfg.optim"],
        f"{__name__}.Config": ["cfg"],
    }


def test_same_global_at_several_depths() -> None:
    inner = argparse.Namespace(x=1)
    ckpt = {"outer": argparse.Namespace(inner=inner), "other": argparse.Namespace()}
    assert one(ckpt, "argparse.Namespace") == ["outer", "outer.inner", "other"]


def test_max_paths() -> None:
    ckpt = {"runs": [pathlib.Path(str(i)) for i in range(5)]}
    assert one(ckpt, "pathlib.PosixPath") == ["runs[0]", "runs[1]", "runs[2]"]
    assert one(ckpt, "pathlib.PosixPath", max_paths=1) == ["runs[0]"]
    assert one(ckpt, "pathlib.PosixPath", max_paths=0) == []


def test_root_object_itself() -> None:
    assert one(pathlib.Path("x"), "pathlib.PosixPath") == ["<root>"]
    assert one([pathlib.Path("x")], "pathlib.PosixPath") == ["[0]"]


def test_global_in_a_dict_key_is_charged_to_the_dict() -> None:
    ckpt = {"modes": {Mode.TRAIN: 1.0}}
    assert one(ckpt, f"{__name__}.Mode") == ["modes"]


def test_path_syntax_for_odd_keys() -> None:
    ckpt = {"a b": {0: pathlib.Path("x")}}
    assert one(ckpt, "pathlib.PosixPath") == ["['a b'][0]"]


def test_custom_reduce_children_not_in_pickle_are_skipped() -> None:
    ckpt = {"opaque": Opaque(pathlib.Path("x"))}
    # The object's __dict__ holds a path, but its pickle does not.
    assert one(ckpt, "pathlib.PosixPath") == []
    assert one(ckpt, "builtins.str") == ["opaque"]


def test_never_raises_on_unpicklable_parts() -> None:
    ckpt: dict[str, object] = {
        "fn": lambda: 0,
        "lock": threading.Lock(),
        "cfg": {"p": pathlib.Path("x")},
    }
    ckpt["self"] = ckpt  # and a cycle
    assert one(ckpt, "pathlib.PosixPath") == ["cfg.p"]
    assert one(ckpt, "builtins.nothing") == []


def test_cycles_terminate() -> None:
    a: list[object] = [pathlib.Path("x")]
    a.append(a)
    assert one(a, "pathlib.PosixPath") == ["[0]"]
    ns = argparse.Namespace(p=pathlib.Path("y"))
    ns.me = ns
    assert one({"ns": ns}, "pathlib.PosixPath") == ["ns.p"]


def test_deep_nesting_does_not_raise() -> None:
    root: list[object] = []
    cur = root
    for _ in range(300):
        nxt: list[object] = []
        cur.append(nxt)
        cur = nxt
    cur.append(pathlib.Path("deep"))
    paths = one(root, "pathlib.PosixPath")
    assert len(paths) == 1
    assert paths[0].startswith("[0][0]")


def test_describe_location() -> None:
    assert describe_location("pathlib.PosixPath", ["hparams.data_dir"]) == (
        "hparams.data_dir -> pathlib.PosixPath"
    )
    assert describe_location("argparse.Namespace", ["a", "b.c"]) == "a, b.c -> argparse.Namespace"
    assert "not located" in describe_location("builtins.set", [])
