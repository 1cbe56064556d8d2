"""Smoke tests for the checkpoint corpus and its oracle (`ckpt_corpus.torch_truth`).

Facts asserted here come from /work/shared/research/torch-weights-only-history.md
(sections 3-6) and are guarded by the torch/numpy versions they hold for.
Run with `-s` to see the protocol-2 truth table.
"""

from __future__ import annotations

from pathlib import Path

import ckpt_corpus as C
import numpy as np
import pytest
import torch
from ckpt_corpus import CASES, NUMPY_VERSION, TORCH_VERSION, Truth, save_case, torch_truth

PROTOCOLS = (2, 4)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> dict[int, dict[str, tuple[Path, Truth]]]:
    """protocol -> case id -> (saved file, oracle truth with an empty allowlist)."""
    root = tmp_path_factory.mktemp("corpus")
    out: dict[int, dict[str, tuple[Path, Truth]]] = {}
    objs = {case.id: case.make() for case in CASES}
    for protocol in PROTOCOLS:
        out[protocol] = {}
        for case in CASES:
            path = root / f"{case.id}.p{protocol}.pt"
            save_case(objs[case.id], path, protocol)
            out[protocol][case.id] = (path, torch_truth(path))
    return out


def _truth(corpus: dict[int, dict[str, tuple[Path, Truth]]], cid: str, protocol: int = 2) -> Truth:
    return corpus[protocol][cid][1]


def test_corpus_shape() -> None:
    ids = [c.id for c in CASES]
    assert len(ids) >= 48
    assert len(set(ids)) == len(ids)
    assert C.CASES_BY_ID.keys() == set(ids)


def test_cases_are_deterministic() -> None:
    for case in CASES:
        a, b = case.make(), case.make()
        if isinstance(a, torch.Tensor):
            assert torch.equal(a, b), case.id
    sd1, sd2 = C.CASES_BY_ID["model_state_dict"].make(), C.CASES_BY_ID["model_state_dict"].make()
    assert sd1.keys() == sd2.keys()
    assert all(torch.equal(sd1[k], sd2[k]) for k in sd1)
    s1 = C.CASES_BY_ID["np_random_get_state"].make()
    s2 = C.CASES_BY_ID["np_random_get_state"].make()
    assert np.array_equal(s1[1], s2[1])


def test_plain_tensor_loads(corpus: dict[int, dict[str, tuple[Path, Truth]]]) -> None:
    assert _truth(corpus, "tensor_float32") == Truth(loadable=True, blocked=[], error=None)
    assert _truth(corpus, "model_state_dict").loadable
    assert _truth(corpus, "ckpt_weights_safe").loadable


@pytest.mark.skipif(TORCH_VERSION < (2, 6), reason="builtins.set is allowlisted from torch 2.6")
def test_set_loads(corpus: dict[int, dict[str, tuple[Path, Truth]]]) -> None:
    assert _truth(corpus, "py_set") == Truth(loadable=True, blocked=[], error=None)


@pytest.mark.skipif(TORCH_VERSION < (2, 4), reason="no allowlist API before torch 2.4")
def test_argparse_namespace_needs_namespace_then_path(
    corpus: dict[int, dict[str, tuple[Path, Truth]]],
) -> None:
    truth = _truth(corpus, "argparse_namespace")
    assert truth == Truth(
        loadable=False, blocked=["argparse.Namespace", "pathlib.PosixPath"], error=None
    )


@pytest.mark.skipif(
    TORCH_VERSION < (2, 5) or NUMPY_VERSION < (2, 0),
    reason="exact chain needs torch>=2.5 (_codecs.encode allowlisted) and numpy>=2",
)
def test_numpy_float64_scalar_chain(corpus: dict[int, dict[str, tuple[Path, Truth]]]) -> None:
    truth = _truth(corpus, "np_scalar_float64")
    assert truth == Truth(
        loadable=False,
        blocked=["numpy._core.multiarray.scalar", "numpy.dtype", "numpy.dtypes.Float64DType"],
        error=None,
    )


@pytest.mark.skipif(TORCH_VERSION < (2, 10), reason="SETITEM restricted from torch 2.10")
def test_defaultdict_ends_in_setitem_error(
    corpus: dict[int, dict[str, tuple[Path, Truth]]],
) -> None:
    truth = _truth(corpus, "collections_defaultdict")
    assert not truth.loadable
    assert truth.blocked == ["collections.defaultdict", "builtins.list"]
    assert truth.error is not None
    assert truth.error.startswith("Can only SETITEM for dict")


def test_protocol_4_fails_on_frame(corpus: dict[int, dict[str, tuple[Path, Truth]]]) -> None:
    for cid, (_, truth) in corpus[4].items():
        assert truth == Truth(loadable=False, blocked=[], error="Unsupported operand 149"), cid


@pytest.mark.skipif(TORCH_VERSION < (2, 4), reason="no allowlist API before torch 2.4")
def test_oracle_is_consistent_with_its_allowlist(
    corpus: dict[int, dict[str, tuple[Path, Truth]]],
) -> None:
    """Allowlisting exactly what the oracle discovered makes the file load first time."""
    for cid, (path, truth) in corpus[2].items():
        if truth.blocked and truth.error is None:
            again = torch_truth(path, allow=truth.blocked)
            assert again == Truth(loadable=True, blocked=[], error=None), cid
            # a partial allowlist only rediscovers the rest
            partial = torch_truth(path, allow=truth.blocked[:1])
            assert partial.blocked == truth.blocked[1:], cid


@pytest.mark.skipif(TORCH_VERSION < (2, 5), reason="safe_globals context manager from 2.5")
def test_oracle_respects_and_keeps_process_safe_globals(tmp_path: Path) -> None:
    path = tmp_path / "slice.pt"
    save_case(C.CASES_BY_ID["py_slice"].make(), path, 2)
    with torch.serialization.safe_globals([slice]):
        before = set(map(repr, torch.serialization.get_safe_globals()))
        assert torch_truth(path) == Truth(loadable=True, blocked=[], error=None)
        # an allow entry equal to a process-wide one must not be removed on exit
        assert torch_truth(path, allow=["builtins.slice"]).loadable
        assert set(map(repr, torch.serialization.get_safe_globals())) == before
    assert torch_truth(path).blocked == ["builtins.slice"]


@pytest.mark.skipif(TORCH_VERSION < (2, 5), reason="module blocklist from torch 2.5")
def test_oracle_stops_on_blocklisted_module(tmp_path: Path) -> None:
    import os

    path = tmp_path / "os.pt"
    save_case({"f": os.getcwd}, path, 2)
    truth = torch_truth(path)
    assert truth.blocked == [f"{os.getcwd.__module__}.getcwd"]  # posix.getcwd / nt.getcwd
    assert truth.error is not None
    assert truth.error.endswith("is blocked.")


def test_tiny_protocol_4_pickle_has_no_frame(tmp_path: Path) -> None:
    """pickle writes FRAME only for frames >= 4 bytes, so `None` at protocol 4 loads."""
    path = tmp_path / "none.pt"
    save_case(None, path, 4)
    assert torch_truth(path) == Truth(loadable=True, blocked=[], error=None)


def test_print_truth_table(corpus: dict[int, dict[str, tuple[Path, Truth]]]) -> None:
    lines = [f"torch {torch.__version__}, numpy {np.__version__}, protocol 2:"]
    for cid, (_, t) in corpus[2].items():
        status = "OK" if t.loadable else ("FAIL" if t.error else "allow")
        detail = ", ".join(t.blocked)
        if t.error:
            detail = (detail + " | " if detail else "") + t.error
        lines.append(f"{cid:32} {status:5} {detail}".rstrip())
    print("\n" + "\n".join(lines))
