"""The regex fast path must give exactly the exact machine's verdict whenever it answers."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest
import torch
from ckpt_corpus import CASES, save_case

from pytest_ckptcompat.scan.fastpath import analyze_fast
from pytest_ckptcompat.scan.machine import analyze


def _data_pkl(path):
    with zipfile.ZipFile(path) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


def _verdict(rules, facts):
    v = rules.judge(facts)
    return v.loadable, sorted(v.blocked), sorted(o.code for o in v.obstacles)


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fast_path_agrees_or_declines(tmp_path, rules, case):
    path = tmp_path / "c.pt"
    save_case(case.make(), path, 2)
    data = _data_pkl(path)
    exact = analyze(data)
    fast = analyze_fast(data, supported=rules.supported_opcodes, force=True)
    if fast is None:
        return  # declined: the caller uses the exact machine
    assert _verdict(rules, fast) == _verdict(rules, exact)
    assert {k: v.count for k, v in fast.globals.items()} == {
        k: v.count for k, v in exact.globals.items()
    }
    # The storages, tensors and locations the record checks read.
    assert (fast.storages, fast.locations) == (exact.storages, exact.locations)
    # `_rebuild_tensor_v3`'s tensors (an untyped storage; the dtype follows the
    # geometry) are left to a note by the fast path; every other one is read.
    v3 = [t for t in exact.tensors if t[4] is not None]
    assert fast.tensors == [t for t in exact.tensors if t[4] is None]
    assert fast.unread_tensors == len(v3)


def test_fast_path_takes_the_typical_big_checkpoint(tmp_path, rules):
    obj = {f"k{i}": (np.float32(i), torch.ones(2), np.int64(i)) for i in range(3000)}
    path = tmp_path / "big.pt"
    torch.save(obj, path)
    data = _data_pkl(path)
    fast = analyze_fast(data, supported=rules.supported_opcodes, force=True)
    assert fast is not None
    assert _verdict(rules, fast) == _verdict(rules, analyze(data))
    # numpy.dtypes.Float32DType, or numpy.dtype[float32] before numpy 1.25
    classes = {type(np.dtype(code)) for code in ("float32", "int64")}
    assert {f"{c.__module__}.{c.__qualname__}" for c in classes} <= set(fast.builds)


@pytest.mark.parametrize(
    "obj",
    [{"a": __import__("argparse").Namespace(x=1)}, {"s": torch.ones(2)}],
    ids=["user", "plain"],
)
def test_fast_path_declines_protocol_4_and_unknown_globals(tmp_path, rules, obj):
    path = tmp_path / "p4.pt"
    torch.save(obj, path, pickle_protocol=4)
    assert analyze_fast(_data_pkl(path), supported=rules.supported_opcodes, force=True) is None


def test_dtype_code_followed_by_a_letter_memo_index(tmp_path, rules):
    # 59 strings push the memo index after 'f8' to 0x41 ('A'): the old
    # pattern read 'f8A' as the code and lost the dtype class.
    obj = {"pad": [f"s{i}" for i in range(59)], "x": np.float64(1.5), "y": np.int32(2)}
    path = tmp_path / "memo.pt"
    torch.save(obj, path)
    data = _data_pkl(path)
    fast = analyze_fast(data, supported=rules.supported_opcodes, force=True)
    assert fast is not None
    assert fast.builds == analyze(data).builds
