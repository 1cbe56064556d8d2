"""A corpus of realistic objects PyTorch projects save, plus an oracle for them.

`CASES` lists objects built deterministically (seeded; nothing touches the global
torch/numpy RNG state).  `torch_truth(path, allow)` reports what the *installed*
`torch.load(path, weights_only=True)` really does with a file, discovering the
blocking globals one at a time by parsing torch's error messages and retrying
with each one allowlisted (see docs in /work/shared/research, sections 3-6).

Test modules import this as the top-level module ``ckpt_corpus`` (tests/ has no
``__init__.py``), so the module-level classes below pickle as
``ckpt_corpus.Color`` etc.  The oracle imports globals by name, so that works as
long as tests/ is on ``sys.path`` (pytest's default "prepend" import mode).

The oracle imports whatever objects torch's error messages name: only use it on
files this corpus (or another trusted test) wrote.
"""

from __future__ import annotations

import argparse
import collections
import enum
import functools
import importlib
import os
import pathlib
import pickle
import random
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

TORCH_VERSION: tuple[int, int] = tuple(  # type: ignore[assignment]
    int(x) for x in torch.__version__.split("+")[0].split(".")[:2]
)
NUMPY_VERSION: tuple[int, int] = tuple(  # type: ignore[assignment]
    int(x) for x in np.__version__.split("+")[0].split(".")[:2]
)


# --------------------------------------------------------------------------
# Module-level types that end up as GLOBALs `ckpt_corpus.<Name>` in pickles.
# --------------------------------------------------------------------------


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Phase(enum.IntEnum):
    TRAIN = 0
    EVAL = 1


@dataclass
class TrainConfig:
    lr: float = 0.1
    epochs: int = 3
    name: str = "baseline"
    milestones: list[int] = field(default_factory=lambda: [2, 4])


class MyTensor(torch.Tensor):
    pass


# --------------------------------------------------------------------------
# Builders (all deterministic, none mutates global RNG state).
# --------------------------------------------------------------------------


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _randn(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.randn(*shape, generator=_gen(seed), dtype=dtype)


def _tiny_model() -> nn.Sequential:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def _train_one_step(model: nn.Module, opt: torch.optim.Optimizer) -> None:
    """One realistic step: forward in train mode (updates BN stats), backward, step."""
    x = _randn(5, 4, seed=1)
    y = _randn(5, 2, seed=2)
    model.train()
    opt.zero_grad()
    loss = nn.functional.mse_loss(model(x), y)
    loss.backward()
    opt.step()


def _trained(kind: str) -> tuple[nn.Sequential, torch.optim.Optimizer]:
    model = _tiny_model()
    opt: torch.optim.Optimizer
    if kind == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    _train_one_step(model, opt)
    return model, opt


def _model_state_dict() -> dict[str, Any]:
    model, _ = _trained("sgd")
    return model.state_dict()


def _sgd_state_dict() -> dict[str, Any]:
    return _trained("sgd")[1].state_dict()


def _adam_state_dict() -> dict[str, Any]:
    return _trained("adam")[1].state_dict()


def _warmup(epoch: int) -> float:
    return min(1.0, (epoch + 1) / 5)


def _scheduler(kind: str) -> tuple[nn.Sequential, torch.optim.Optimizer, Any]:
    model, opt = _trained("sgd")
    sched: Any
    if kind == "step":
        sched = torch.optim.lr_scheduler.StepLR(opt, step_size=2, gamma=0.5)
    else:
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda=_warmup)
    _train_one_step(model, opt)  # optimizer.step() before scheduler.step(): no warning
    sched.step()
    return model, opt, sched


def _steplr_state_dict() -> dict[str, Any]:
    return _scheduler("step")[2].state_dict()


def _lambdalr_state_dict() -> dict[str, Any]:
    return _scheduler("lambda")[2].state_dict()


def _grad_scaler_state_dict() -> dict[str, Any]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaler = torch.amp.GradScaler("cpu")
        scaler.scale(torch.ones(()))  # lazily creates the scale tensor, as training would
        return scaler.state_dict()


def _grad_scaler_available() -> bool:
    try:
        _grad_scaler_state_dict()
    except Exception:
        return False
    return True


def _torch_rng_state() -> torch.Tensor:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(1234)
        return torch.get_rng_state()


def _np_random_get_state() -> tuple[Any, ...]:
    # Same value/type as np.random.get_state() after np.random.seed(1234), without
    # touching numpy's global RandomState.
    return np.random.RandomState(1234).get_state()  # type: ignore[return-value]


def _np_array(dtype: str) -> np.ndarray:
    rng = np.random.default_rng(7)
    if dtype == "float32":
        return rng.standard_normal((3, 4)).astype(np.float32)
    if dtype == "int64":
        return rng.integers(-100, 100, size=(6,), dtype=np.int64)
    return rng.integers(0, 255, size=(2, 3), dtype=np.uint8)


def _noncontiguous() -> torch.Tensor:
    t = torch.arange(12, dtype=torch.float32).reshape(3, 4).t()
    assert not t.is_contiguous()
    return t


def _offset_view() -> torch.Tensor:
    # A view with a storage offset and stride; torch saves the whole storage.
    return torch.arange(20, dtype=torch.float32)[5:15:2]


def _shared_storage() -> dict[str, torch.Tensor]:
    base = _randn(4, 4, seed=3)
    return {"weight": base, "weight_row0": base[0], "tied": base}


def _parameter() -> nn.Parameter:
    return nn.Parameter(_randn(3, 2, seed=4))


def _requires_grad() -> torch.Tensor:
    return _randn(3, seed=5).requires_grad_(True)


def _linear_module() -> nn.Linear:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return nn.Linear(2, 2)


def _torch_version() -> Any:
    tv = getattr(getattr(torch, "torch_version", None), "TorchVersion", None)
    return tv(torch.__version__) if tv is not None else torch.__version__


def _plain_training_state() -> dict[str, Any]:
    return {
        "epoch": 3,
        "global_step": 1200,
        "lr": 0.001,
        "best_metric": 0.913,
        "run_name": "resnet18-baseline",
        "resume_from": None,
        "done": False,
        "losses": [0.9, 0.61, 0.47],
        "per_class_acc": {"cat": 0.93, "dog": 0.88},
        "milestones": (30, 60, 90),
        "nested": [[1, 2], {"a": [3, {"b": None}]}],
        "big_int": 2**70,
        "negative": -17,
    }


def _python_random_state() -> tuple[Any, ...]:
    return random.Random(1234).getstate()


def _ckpt_trainer_full() -> dict[str, Any]:
    """A typical hand-written trainer checkpoint: mixes safe and unsafe pieces."""
    model, opt, sched = _scheduler("step")
    return {
        "model": model.state_dict(),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "epoch": 3,
        "best_metric": np.float64(0.9),
        "rng": {"torch": _torch_rng_state(), "numpy": _np_random_get_state()},
        "hparams": argparse.Namespace(lr=0.1, batch_size=32, data_dir=pathlib.Path("/data")),
        "tags": {"a", "b"},
    }


def _ckpt_weights_safe() -> dict[str, Any]:
    """A checkpoint that sticks to what weights_only accepts by default."""
    model, opt, sched = _scheduler("lambda")
    return {
        "model_state_dict": model.state_dict(),
        "optimizer_state_dict": opt.state_dict(),
        "scheduler_state_dict": sched.state_dict(),
        "scaler": {"scale": 65536.0, "_growth_tracker": 0},
        "epoch": 7,
        "step": 7000,
        "loss": 0.25,
        "torch_rng_state": _torch_rng_state(),
        "device": torch.device("cpu"),
        "input_shape": torch.Size([1, 4]),
        "dtype": torch.float32,
    }


def _ckpt_hf_rng_state() -> dict[str, Any]:
    """Like transformers' Trainer `rng_state.pth`."""
    return {
        "python": _python_random_state(),
        "numpy": _np_random_get_state(),
        "cpu": _torch_rng_state(),
    }


def _ckpt_lightning_like() -> dict[str, Any]:
    """Like a Lightning `.ckpt`: weights plus hyper-parameters and version strings."""
    model, opt, sched = _scheduler("step")
    return {
        "epoch": 4,
        "global_step": 500,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": model.state_dict(),
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [sched.state_dict()],
        "hyper_parameters": {
            "lr": 0.1,
            "phase": Phase.TRAIN,
            "color": Color.GREEN,
            "config": TrainConfig(),
            "data_dir": pathlib.Path("/data/imagenet"),
        },
        "torch_version": _torch_version(),
        "callbacks": {"ModelCheckpoint": {"best_model_score": torch.tensor(0.42)}},
    }


# --------------------------------------------------------------------------
# The corpus.
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    id: str
    make: Callable[[], object]


def _tensor_case(name: str, dtype: torch.dtype, seed: int) -> Case:
    def make() -> torch.Tensor:
        if dtype.is_floating_point or dtype.is_complex:
            if "float8" in str(dtype):  # no randn kernel: build in float32 then cast
                return _randn(2, 3, seed=seed).to(dtype)
            return _randn(2, 3, seed=seed, dtype=dtype)
        if dtype == torch.bool:
            return torch.randint(0, 2, (2, 3), generator=_gen(seed)).bool()
        lo = 0 if dtype == torch.uint8 else -100
        return torch.randint(lo, 100, (2, 3), generator=_gen(seed), dtype=dtype)

    return Case(f"tensor_{name}", make)


def _build_cases() -> list[Case]:
    dtypes: list[tuple[str, torch.dtype]] = [
        ("float32", torch.float32),
        ("float64", torch.float64),
        ("float16", torch.float16),
        ("bfloat16", torch.bfloat16),
        ("int8", torch.int8),
        ("uint8", torch.uint8),
        ("int64", torch.int64),
        ("bool", torch.bool),
        ("complex64", torch.complex64),
    ]
    for f8 in ("float8_e4m3fn", "float8_e5m2"):
        if hasattr(torch, f8):
            dtypes.append((f8, getattr(torch, f8)))
    cases = [_tensor_case(name, dt, seed) for seed, (name, dt) in enumerate(dtypes)]

    cases += [
        # --- torch tensors and torch objects
        Case("tensor_noncontiguous_transpose", _noncontiguous),
        Case("tensor_offset_view", _offset_view),
        Case("tensor_shared_storage_dict", _shared_storage),
        Case("nn_parameter", _parameter),
        Case("tensor_requires_grad", _requires_grad),
        Case("tensor_subclass", lambda: _randn(2, seed=6).as_subclass(MyTensor)),
        Case("torch_dtype_value", lambda: torch.bfloat16),
        Case("torch_device", lambda: torch.device("cpu")),
        Case("torch_size", lambda: torch.Size([2, 3])),
        Case("torch_version", _torch_version),
        Case("torch_rng_state", _torch_rng_state),
        # --- training state
        Case("model_state_dict", _model_state_dict),
        Case("optim_sgd_momentum_state_dict", _sgd_state_dict),
        Case("optim_adam_state_dict", _adam_state_dict),
        Case("sched_steplr_state_dict", _steplr_state_dict),
        Case("sched_lambdalr_state_dict", _lambdalr_state_dict),
    ]
    if _grad_scaler_available():
        cases.append(Case("grad_scaler_state_dict", _grad_scaler_state_dict))
    cases += [
        Case("nn_module_linear", _linear_module),
        # --- numpy
        Case("np_array_float32", lambda: _np_array("float32")),
        Case("np_array_int64", lambda: _np_array("int64")),
        Case("np_array_uint8", lambda: _np_array("uint8")),
        Case("np_array_0d", lambda: np.array(3.5)),
        Case("np_scalar_float64", lambda: np.float64(0.9)),
        Case("np_scalar_float32", lambda: np.float32(1.5)),
        Case("np_scalar_int64", lambda: np.int64(42)),
        Case("np_scalar_bool", lambda: np.bool_(True)),
        Case("np_dtype_float32", lambda: np.dtype("float32")),
        Case("np_random_get_state", _np_random_get_state),
        Case("np_random_randomstate", lambda: np.random.RandomState(0)),
        Case("np_random_generator", lambda: np.random.default_rng(0)),
        # --- stdlib objects
        Case(
            "argparse_namespace",
            lambda: argparse.Namespace(lr=0.1, data_dir=pathlib.Path("/data")),
        ),
        Case("pathlib_path", lambda: pathlib.Path("/tmp/x")),
        Case("py_set", lambda: {1, 2}),
        Case("py_frozenset", lambda: frozenset({1, 2})),
        Case("py_complex", lambda: complex(1, 2)),
        Case("py_slice", lambda: slice(1, 10, 2)),
        Case("py_range", lambda: range(5)),
        Case("collections_defaultdict", lambda: collections.defaultdict(list, {"a": [1]})),
        Case("collections_counter", lambda: collections.Counter("abca")),
        Case("collections_ordereddict", lambda: collections.OrderedDict(a=1)),
        Case("enum_member", lambda: Color.RED),
        Case("intenum_member", lambda: Phase.EVAL),
        Case("dataclass_instance", TrainConfig),
        Case("functools_partial", lambda: functools.partial(int, base=2)),
        Case("py_bytes", lambda: b"bytes"),
        Case("py_bytes_empty", lambda: b""),
        Case("py_bytearray", lambda: bytearray(b"ab")),
        # --- plain python
        Case("plain_scalars_list", lambda: [1.5, 2, "s", None, True, -3, 1e-8]),
        Case("plain_training_state", _plain_training_state),
        Case("python_random_state", _python_random_state),
        # --- composite checkpoints
        Case("ckpt_trainer_full", _ckpt_trainer_full),
        Case("ckpt_weights_safe", _ckpt_weights_safe),
        Case("ckpt_hf_rng_state", _ckpt_hf_rng_state),
        Case("ckpt_lightning_like", _ckpt_lightning_like),
    ]
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), "duplicate case ids"
    return cases


CASES: list[Case] = _build_cases()
CASES_BY_ID: dict[str, Case] = {c.id: c for c in CASES}


def save_case(obj: object, path: str | os.PathLike[str], protocol: int) -> None:
    """Save *obj* exactly as a project would, with an explicit pickle protocol."""
    torch.save(obj, path, pickle_protocol=protocol)


# --------------------------------------------------------------------------
# The oracle.
# --------------------------------------------------------------------------


@dataclass
class Truth:
    loadable: bool  # loaded on the first try, with only `allow` allowlisted
    blocked: list[str]  # global names discovered (in order) beyond `allow`
    error: str | None  # terminal error that is not "this global is blocked", else None


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_GLOBAL_PATTERNS = (
    re.compile(r"GLOBAL (\S+) was not an allowed global by default"),  # 2.4+
    re.compile(r"Unsupported class (\S+)"),  # <= 2.3
)
# 2.5+: modules sys/os/posix/nt are blocklisted; allowlisting cannot override that.
_BLOCKLIST_PATTERN = re.compile(r"GLOBAL (\S+) whose module (\S+) is blocked")
# BUILD / NEWOBJ on a type that is not allowlisted.  Deliberately NOT applied to
# "Can only SETITEM(S) ...", "Can only append/extend ..." which are terminal.
_TYPE_PATTERN = re.compile(
    r"(?:Can only build|Can only create new object)[^\n]*but got <class '([^']+)'>"
)
_DTYPE_BRACKET = re.compile(r"^(?:[\w.]+\.)?dtype\[(\w+)\]$")  # numpy < 1.25 DType class
_MAX_ROUNDS = 50


def _normalise(name: str) -> str:
    if name.startswith("__builtin__."):
        return "builtins." + name[len("__builtin__.") :]
    if "." not in name:  # torch >= 2.7 strips a leading "builtins."
        return "builtins." + name
    return name


def _resolve(name: str) -> Any:
    """Import the object a torch error message names (trusted corpus data only)."""
    m = _DTYPE_BRACKET.match(name)
    if m:
        return type(np.dtype(m.group(1)))
    parts = name.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            obj: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for attr in parts[i:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"cannot resolve {name!r}")


def _entry(name: str) -> Any:
    obj = _resolve(name)
    # The tuple form (2.6+) makes the key exactly `name` (numpy.core vs numpy._core).
    return (obj, name) if TORCH_VERSION >= (2, 6) else obj


_BOILERPLATE = (
    "Re-running `torch.load` with `weights_only` set to `False`",  # UNSAFE_MESSAGE
    "Please file an issue with the following",
    "Check the documentation of torch.load",  # DOCS_MESSAGE
)


def _key_line(message: str) -> str:
    """The line of a torch error that says what went wrong, without the boilerplate."""
    msg = _ANSI.sub("", message)
    marker = "WeightsUnpickler error:"
    if marker in msg:
        msg = msg.split(marker, 1)[1]
    elif msg.startswith("Weights only load failed."):
        msg = msg[len("Weights only load failed.") :]
    lines = [ln.strip() for ln in msg.splitlines() if ln.strip()]
    for line in lines:
        if not any(b in line for b in _BOILERPLATE):
            return line
    return lines[0] if lines else msg.strip()


def _blocked_name(message: str) -> tuple[str, bool] | None:
    """(global name, whether allowlisting it can help) for a "blocked" error, else None."""
    msg = _ANSI.sub("", message)
    m = _BLOCKLIST_PATTERN.search(msg)
    if m:
        return _normalise(m.group(1)), False
    for pat in _GLOBAL_PATTERNS:
        m = pat.search(msg)
        if m:
            return _normalise(m.group(1).rstrip(".`'\"")), True
    m = _TYPE_PATTERN.search(msg)
    if m:
        return _normalise(m.group(1)), True
    return None


def _load(path: str | os.PathLike[str], entries: list[Any]) -> None:
    """`torch.load(weights_only=True)` with *entries* allowlisted on top of the process's.

    Entries already registered process-wide are not re-added: `safe_globals` removes
    its entries on exit even if they were registered before (2.5+).
    """
    if TORCH_VERSION < (2, 4):
        torch.load(path, weights_only=True, map_location="cpu")
        return
    # A copy: torch 2.4 returns its live list, which add_safe_globals extends.
    present = list(torch.serialization.get_safe_globals())
    extra = [e for e in entries if not any(e is p or e == p for p in present)]
    if TORCH_VERSION >= (2, 5):
        with torch.serialization.safe_globals(extra):
            torch.load(path, weights_only=True, map_location="cpu")
        return
    # 2.4: no context manager and no remove; restore the previous list afterwards.
    torch.serialization.add_safe_globals(extra)
    try:
        torch.load(path, weights_only=True, map_location="cpu")
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(present)


def torch_truth(path: str | os.PathLike[str], allow: Sequence[str] = ()) -> Truth:
    """What the installed `torch.load(path, weights_only=True)` does with *path*.

    Starts from the allowlist *allow* (``module.name`` strings), then repeatedly
    loads, allowlisting each global torch reports as blocked, until it loads or
    fails for another reason.  Globals already registered process-wide stay
    registered (torch itself registers some, e.g. DTensor classes once
    `torch.distributed.tensor` is imported), so the answer is what `torch.load`
    would do in this process; the process-wide list is left as it was.
    """
    has_api = TORCH_VERSION >= (2, 4)
    seen = {_normalise(n) for n in allow}
    blocked: list[str] = []
    error: str | None = None
    loaded = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # protocol warnings, numpy.core deprecation
        entries = [_entry(_normalise(n)) for n in allow]
        for _ in range(_MAX_ROUNDS):
            try:
                _load(path, entries)
            except pickle.UnpicklingError as exc:
                found = _blocked_name(str(exc))
                if found is None or found[0] in seen:
                    error = _key_line(str(exc))
                    break
                name, fixable = found
                blocked.append(name)
                seen.add(name)
                if not fixable:
                    error = _key_line(str(exc))
                    break
                if not has_api:
                    error = f"no allowlist API in torch {torch.__version__}: {_key_line(str(exc))}"
                    break
                try:
                    entries.append(_entry(name))
                except (ImportError, AttributeError) as rexc:
                    error = f"{_key_line(str(exc))} (oracle could not import it: {rexc})"
                    break
            except Exception as exc:  # e.g. raw errors from allowlisted callables (2.5+)
                error = f"{type(exc).__name__}: {_key_line(str(exc))}"
                break
            else:
                loaded = True
                break
        else:
            error = f"gave up after {_MAX_ROUNDS} rounds"
    return Truth(loadable=loaded and not blocked, blocked=blocked, error=error)


# --------------------------------------------------------------------------
# Oracle results, protocol 2, torch 2.13.0+cpu / numpy 2.4.6 / CPython 3.11.7
# (test_corpus_oracle.py::test_print_truth_table, run with -s).
# Every case saved with protocol 4 instead: blocked=[], error 'Unsupported operand 149'.
#
# Load with no allowlist:
#   tensor_float32, tensor_float64, tensor_float16, tensor_bfloat16,
#   tensor_int8, tensor_uint8, tensor_int64, tensor_bool, tensor_complex64,
#   tensor_float8_e4m3fn, tensor_float8_e5m2, tensor_noncontiguous_transpose,
#   tensor_offset_view, tensor_shared_storage_dict, nn_parameter,
#   tensor_requires_grad, torch_dtype_value, torch_device, torch_size,
#   torch_rng_state, model_state_dict, optim_sgd_momentum_state_dict,
#   optim_adam_state_dict, sched_steplr_state_dict, sched_lambdalr_state_dict,
#   grad_scaler_state_dict, py_set, py_complex, collections_counter,
#   collections_ordereddict, py_bytes, py_bytearray, plain_scalars_list,
#   plain_training_state, python_random_state, ckpt_weights_safe
# Load once these are allowlisted (in discovery order):
#   tensor_subclass: ckpt_corpus.MyTensor
#   torch_version: torch.torch_version.TorchVersion
#   nn_module_linear: torch.nn.modules.linear.Linear
#   np_array_float32: np_core._reconstruct, numpy.ndarray, numpy.dtype,
#         dtypes.Float32DType
#   np_array_int64: np_core._reconstruct, numpy.ndarray, numpy.dtype,
#         dtypes.Int64DType
#   np_array_uint8: np_core._reconstruct, numpy.ndarray, numpy.dtype,
#         dtypes.UInt8DType
#   np_array_0d: np_core._reconstruct, numpy.ndarray, numpy.dtype,
#         dtypes.Float64DType
#   np_scalar_float64: np_core.scalar, numpy.dtype, dtypes.Float64DType
#   np_scalar_float32: np_core.scalar, numpy.dtype, dtypes.Float32DType
#   np_scalar_int64: np_core.scalar, numpy.dtype, dtypes.Int64DType
#   np_scalar_bool: np_core.scalar, numpy.dtype, dtypes.BoolDType
#   np_dtype_float32: numpy.dtype, dtypes.Float32DType
#   np_random_get_state: np_core._reconstruct, numpy.ndarray, numpy.dtype,
#         dtypes.UInt32DType
#   np_random_randomstate: np.random._pickle.__randomstate_ctor,
#         np.random._pickle.__bit_generator_ctor,
#         np.random._mt19937.MT19937, np_core._reconstruct, numpy.ndarray,
#         numpy.dtype, dtypes.UInt32DType, np.random.mtrand.RandomState
#   np_random_generator: np.random._pickle.__generator_ctor,
#         np.random._pickle.__bit_generator_ctor, np.random._pcg64.PCG64,
#         np.random.bit_generator.__pyx_unpickle_SeedSequence,
#         np.random.bit_generator.SeedSequence, np_core._reconstruct,
#         numpy.ndarray, numpy.dtype, dtypes.UInt32DType
#   argparse_namespace: argparse.Namespace, pathlib.PosixPath
#   pathlib_path: pathlib.PosixPath
#   py_frozenset: builtins.frozenset
#   py_slice: builtins.slice
#   py_range: builtins.range
#   enum_member: ckpt_corpus.Color
#   intenum_member: ckpt_corpus.Phase
#   dataclass_instance: ckpt_corpus.TrainConfig
#   functools_partial: functools.partial, builtins.int
#   py_bytes_empty: builtins.bytes
#   ckpt_trainer_full: np_core.scalar, numpy.dtype, dtypes.Float64DType,
#         np_core._reconstruct, numpy.ndarray, dtypes.UInt32DType,
#         argparse.Namespace, pathlib.PosixPath
#   ckpt_hf_rng_state: np_core._reconstruct, numpy.ndarray, numpy.dtype,
#         dtypes.UInt32DType
#   ckpt_lightning_like: ckpt_corpus.Phase, ckpt_corpus.Color,
#         ckpt_corpus.TrainConfig, pathlib.PosixPath,
#         torch.torch_version.TorchVersion
# Never load (terminal error after allowlisting):
#   collections_defaultdict: collections.defaultdict, builtins.list | Can
#         only SETITEM for dict, collections.OrderedDict,
#         collections.Counter, but got <class 'collections.defaultdict'>
# (np_core = numpy._core.multiarray, dtypes = numpy.dtypes)
