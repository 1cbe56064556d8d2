"""The fast path's whole-record sequences change how fast it reads, never what it reads.

`fastpath._token_run` matches torch.save's tensor record and a dict item
holding a numpy scalar in one step. Each is a sequence of the single-opcode
alternatives, so the run must stop at the same byte with and without them, on
pickles that use them (tensors of every rank, with and without gradients,
shared storages, memo indexes past 255, numpy scalars under keys and alone),
and the facts must be the exact machine's.
"""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from pytest_ckptcompat.scan.fastpath import _token_run, analyze_fast
from pytest_ckptcompat.scan.machine import analyze


def _data_pkl(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    with zipfile.ZipFile(buf) as zf:
        return zf.read(next(n for n in zf.namelist() if n.endswith("/data.pkl")))


def _stops(data: bytes, run) -> list[int]:
    """Where the run stops, walking as `analyze_fast` does (past GLOBALs and dtype args)."""
    pos, out = 2, []
    while True:
        pos = run.match(data, pos).end()
        out.append(pos)
        if pos >= len(data) or data[pos] == 0x2E:
            return out
        if data[pos] == 0x63:  # GLOBAL: skip its two lines
            pos = data.index(b"\n", data.index(b"\n", pos + 1) + 1) + 1
        elif data[pos : pos + 3] == b"\x89\x88\x87":
            pos += 3
        else:
            return out  # an opcode the fast path hands to the machine


def _objects() -> dict[str, object]:
    shared = torch.arange(12.0)
    return {
        "ranks": {f"t{i}": torch.zeros((2,) * i) for i in range(6)},
        "grad": {f"p{i}": torch.ones(3, requires_grad=bool(i % 2)) for i in range(300)},
        "shared": {f"v{i}": shared[i:] for i in range(300)},
        "big ints": {f"b{i}": torch.zeros(70_000 + i, dtype=torch.uint8)[i:] for i in range(3)},
        "metrics": {f"m{i}": {"loss": np.float64(i), "acc": np.float32(i)} for i in range(400)},
        "scalars alone": [np.int64(i) for i in range(400)],
        "mixed": {
            f"e{i}": {"w": torch.randn(2, 3), "step": np.int64(i), "lr": 0.1} for i in range(300)
        },
    }


@pytest.mark.parametrize("name", list(_objects()))
def test_records_stop_where_single_opcodes_stop(rules, name):
    data = _data_pkl(_objects()[name])
    with_records = _token_run(rules.supported_opcodes)
    without = _token_run(rules.supported_opcodes, records=False)
    assert with_records.pattern != without.pattern
    assert _stops(data, with_records) == _stops(data, without)


@pytest.mark.parametrize("name", list(_objects()))
def test_fast_facts_are_the_machines(rules, name):
    data = _data_pkl(_objects()[name])
    fast = analyze_fast(data, supported=rules.supported_opcodes, force=True)
    exact = analyze(data)
    if fast is None:
        pytest.fail("the fast path declined a plain torch.save pickle")
    assert {k: v.count for k, v in fast.globals.items()} == {
        k: v.count for k, v in exact.globals.items()
    }
    assert fast.builds == exact.builds
    assert fast.end == exact.end
    assert rules.judge(fast) == rules.judge(exact)
    # What the record checks read: every storage (the first id of each key), every
    # tensor's place in its storage, every location, in the same order.
    assert fast.storages == exact.storages
    assert fast.tensors == exact.tensors
    assert fast.locations == exact.locations
    assert fast.locations <= {"cpu"}
    assert fast.unread_storages == exact.unread_storages == 0
