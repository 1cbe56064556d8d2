"""The golden store under killed writers, concurrent writers, and every option: never lost.

Writers are real processes killed with SIGKILL mid-write; concurrency is two
xdist workers and two pytest processes writing at once. Afterwards every
golden the store lists must verify (its sha256 is its metadata's), and no
temporary or half-written file may be taken for a golden.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from pytest_ckptcompat.errors import GoldenError
from pytest_ckptcompat.golden import GoldenStore

# Writes goldens of one artifact in a loop, alternating two payloads, until
# killed. With PAUSE_AFTER_CHECKPOINT it stops right after replacing the
# checkpoint and before committing the metadata (the worst moment to die),
# says so on stdout, and waits to be killed.
_WRITER = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    from pytest_ckptcompat.golden import GoldenStore

    root, size, pause = Path(sys.argv[1]), int(sys.argv[2]), sys.argv[3] == "1"
    payloads = [bytes([i]) * size for i in (0xA0, 0xB0)]
    real_replace = os.replace

    cut = False

    def replace(src, dst):
        real_replace(src, dst)
        if cut and str(dst).endswith(".pt"):
            print("checkpoint replaced, metadata not committed", flush=True)
            time.sleep(600)

    os.replace = replace
    store = GoldenStore(root)
    env = {"tag": "torch0.0.0-numpy0.0.0-py3.11"}
    print("ready", flush=True)
    for i in range(10**6):
        cut = pause and i == 1  # the first golden lands whole, the second is cut
        store.write("big", payloads[i % 2], {"writer": env, "round": i})
    """
)
SIZE = 8 << 20
DIGESTS = {hashlib.sha256(bytes([i]) * SIZE).hexdigest() for i in (0xA0, 0xB0)}


def _start(root: Path, pause: bool) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root), str(SIZE), "1" if pause else "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert _line(proc) == "ready"
    return proc


def _line(proc: subprocess.Popen[str], timeout: float = 60) -> str:
    """The writer's next line on stdout; kills it and fails after `timeout` seconds."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        proc.kill()
        proc.wait()
        pytest.fail(f"the writer said nothing for {timeout} s")
    return proc.stdout.readline().strip()


def _kill(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.stdout is not None
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL


def _check_store(root: Path) -> list[str]:
    """Every listed golden verifies; returns the digests read."""
    read = []
    for golden in GoldenStore(root).goldens("big"):
        data = golden.read_verified()  # GoldenError fails the test
        read.append(hashlib.sha256(data).hexdigest())
    return read


def test_writer_killed_at_random_moments_never_leaves_a_bad_golden(tmp_path):
    rng = random.Random(5)
    strays = rounds = 0
    # Six kills at least, and more until one lands mid-file (leaves a temporary
    # file): a busy machine can make a kill miss every write.
    while rounds < 6 or (strays == 0 and rounds < 30):
        proc = _start(tmp_path, pause=False)
        deadline = time.monotonic() + 60
        while not (tmp_path / "big" / "torch0.0.0-numpy0.0.0-py3.11.json").exists():
            if time.monotonic() > deadline:
                _kill(proc)
                pytest.fail("the writer wrote nothing in 60 s")
            time.sleep(0.001)
        time.sleep(rng.uniform(0.0, 0.1))
        _kill(proc)
        assert set(_check_store(tmp_path)) <= DIGESTS
        strays += len(list((tmp_path / "big").glob(".*.tmp")))
        rounds += 1
    assert strays, "no kill interrupted a write"


def test_writer_killed_between_checkpoint_and_metadata(tmp_path):
    proc = _start(tmp_path, pause=True)
    assert _line(proc) == "checkpoint replaced, metadata not committed"
    _kill(proc)
    folder = tmp_path / "big"
    meta = json.loads((folder / "torch0.0.0-numpy0.0.0-py3.11.json").read_text())
    assert meta["round"] == 0  # the commit of round 1 never happened
    # The checkpoint is round 1's; its pending metadata says so, and the reader takes it.
    (digest,) = _check_store(tmp_path)
    assert digest == hashlib.sha256(bytes([0xB0]) * SIZE).hexdigest()
    assert digest != meta["sha256"]
    # A tampered checkpoint is still refused (pending or not).
    pt = folder / "torch0.0.0-numpy0.0.0-py3.11.pt"
    pt.write_bytes(b"\x00" + pt.read_bytes()[1:])
    with pytest.raises(GoldenError, match="modified since it was written"):
        _check_store(tmp_path)
    # The next write cleans up and commits normally.
    store = GoldenStore(tmp_path)
    store.write("big", b"fresh", {"writer": {"tag": "torch0.0.0-numpy0.0.0-py3.11"}})
    assert sorted(p.name for p in folder.iterdir()) == [
        "torch0.0.0-numpy0.0.0-py3.11.json",
        "torch0.0.0-numpy0.0.0-py3.11.pt",
    ]
    assert store.goldens("big")[0].read_verified() == b"fresh"


BIG_TEST = """
import os
import torch

def test_big(ckpt_compat):
    n = 32_000_000 if os.environ.get("BIG") else 4
    ckpt_compat.check("big", {"w": torch.ones(n)})
"""


def test_pytest_killed_while_writing_a_golden(pytester):
    """A real `pytest --ckpt-compat-update` killed mid-write: the next run sees no golden.

    And says so: a check whose golden is absent fails with how to write it.
    """
    pytester.makeini("[pytest]\naddopts = -p pytester\n")
    pytester.makepyfile(test_big=BIG_TEST)
    folder = pytester.path / "ckpt_goldens" / "big"
    # The kill follows the sight of a temporary file; on a busy machine the write
    # can end in between (seen: no stray file left). Such a kill is not the one
    # this test is about: start over, a few times at most.
    for _ in range(5):
        shutil.rmtree(folder, ignore_errors=True)
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "--ckpt-compat-update", "-q"],
            cwd=pytester.path,
            env={**os.environ, "BIG": "1"},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        # Wait until the checkpoint is being written.
        while not (folder.is_dir() and any(folder.glob(".*.tmp"))):
            assert proc.poll() is None, "pytest finished before it was killed"
            assert time.monotonic() < deadline
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        if list(folder.glob(".*.tmp")) and not list(folder.glob("*.json")):
            break  # killed mid-write
    assert not list(folder.glob("*.json")), "a golden was committed"
    assert list(folder.glob(".*.tmp")), "the stray temporary file is the proof of the kill"
    result = pytester.runpytest_inprocess("--ckpt-compat")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*no golden of this artifact under *--ckpt-compat-update*"])


MANY_TESTS = """
import pytest
import torch

@pytest.mark.parametrize("i", range(8))
def test_state(ckpt_compat, i):
    # Random content: two runs write different bytes for the same golden.
    ckpt_compat.check(f"state{i}", {"w": torch.randn(20_000)}, compare="structure")
"""


def test_xdist_workers_and_two_pytest_processes_writing_at_once(pytester):
    pytester.makeini("[pytest]\naddopts = -p pytester\n")
    pytester.makepyfile(test_many=MANY_TESTS)
    runs = [
        subprocess.Popen(
            [sys.executable, "-m", "pytest", "--ckpt-compat-update", "-q", *extra],
            cwd=pytester.path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for extra in (["-n", "2"], ["-p", "no:xdist"])
    ]
    for run in runs:
        out, _ = run.communicate(timeout=300)
        assert run.returncode == 0, out
    store = GoldenStore(pytester.path / "ckpt_goldens")
    assert store.artifacts() == [f"state{i}" for i in range(8)]
    for artifact in store.artifacts():
        (golden,) = store.goldens(artifact)
        golden.read_verified()
        names = sorted(p.name for p in golden.path.parent.iterdir())
        assert names == [f"{golden.writer}.json", f"{golden.writer}.pt"], names
    result = pytester.runpytest_inprocess("--ckpt-compat")
    result.assert_outcomes(passed=8)
    result.stdout.fnmatch_lines(["reader torch*: 16 ok (16 loads)"])


def test_no_option_deletes_a_golden_and_prune_names_what_it_deletes(pytester):
    pytester.makeini("[pytest]\naddopts = -p pytester\n")
    pytester.makepyfile(
        test_two="""
def test_a(ckpt_compat):
    ckpt_compat.check("a", [1, 2])

def test_b(ckpt_compat):
    ckpt_compat.check("b", {"x": 1})
"""
    )
    import io

    import torch

    root = pytester.path / "ckpt_goldens"
    store = GoldenStore(root)

    def saved(obj: object) -> bytes:
        buf = io.BytesIO()
        torch.save(obj, buf)
        return buf.getvalue()

    # Another writer's golden of `a`, a retired artifact, and the leftover of a killed run.
    old = {"writer": {"tag": "torch0.0.1-numpy0.0.1-py3.11"}}
    other = store.write("a", saved([1, 2]), {**old, "test": "test_two.py::test_a"})
    # Written by a test that no longer exists in a file this run collects: unused.
    store.write("retired", saved([0]), {**old, "test": "test_two.py::test_retired"})
    stray = root / "a" / ".torch0.0.1-numpy0.0.1-py3.11.pt.x1y2z3.tmp"
    stray.write_bytes(b"half")

    def files() -> set[str]:
        return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}

    # In-process runs (the subprocess ones are the tests above): every option but prune.
    before = files()
    full = pytester.runpytest_inprocess(
        "--ckpt-compat", "--ckpt-compat-update", "--ckpt-compat-report=r.json", "-x"
    )
    full.assert_outcomes(passed=2)
    full.stdout.fnmatch_lines(["*1 golden(s) no collected test produces*", "*retired*"])
    assert files() >= before  # only added: this writer's goldens of a and b
    written = files()
    partial = pytester.runpytest_inprocess("--ckpt-compat", "-k", "test_a", "--ckpt-compat-prune")
    partial.assert_outcomes(passed=1, deselected=1)
    partial.stdout.fnmatch_lines(["*--ckpt-compat-prune deleted nothing*"])
    assert files() == written

    retired = sorted(str(p) for p in (root / "retired").glob("*"))
    assert len(retired) == 2
    pruned = pytester.runpytest_inprocess("--ckpt-compat", "--ckpt-compat-prune")
    pruned.assert_outcomes(passed=2)
    pruned.stdout.fnmatch_lines(
        ["*pruned 1 golden(s) no collected test produces (--ckpt-compat-prune deleted these*"]
        + [f"  {path}" for path in retired]
    )
    assert files() == {f for f in written if not f.startswith("retired/")}
    assert other.path.exists()  # another writer's golden of a used artifact is never stale
    assert stray.exists()  # not a golden: only the next write of that golden removes it


def test_a_crashed_xdist_worker_makes_prune_delete_nothing(pytester):
    # test_a writes its golden on a worker that then dies (os._exit): the controller saw
    # test_a pass but never got that worker's list of the goldens it produced. Calling
    # `a` unused then would delete a golden a passing test checks.
    pytester.makeini("[pytest]\naddopts = -p no:cacheprovider\n")
    pytester.makepyfile(
        test_crash="""
import os

def test_a(ckpt_compat):
    ckpt_compat.check("a", [1, 2])

def test_b():
    os._exit(3)
"""
    )
    write = pytester.runpytest_subprocess("-n", "1", "--ckpt-compat-update")
    golden = sorted(p.name for p in (pytester.path / "ckpt_goldens" / "a").glob("*.pt"))
    assert golden, write.stdout.str()
    again = pytester.runpytest_subprocess("-n", "1", "--ckpt-compat", "--ckpt-compat-prune")
    assert sorted(p.name for p in (pytester.path / "ckpt_goldens" / "a").glob("*.pt")) == golden
    again.stdout.fnmatch_lines(["*--ckpt-compat-prune deleted nothing*"])


class _Killed(BaseException):
    """Stands for SIGKILL inside this process: nothing after it runs."""


def _write_killed_after_pending(monkeypatch, root: Path, data: bytes) -> None:
    """A `GoldenStore.write` that dies right after its step 1 (pending metadata written)."""
    from pytest_ckptcompat import golden as golden_module

    real = golden_module.atomic_write

    def dies_after_pending(path, payload):
        real(path, payload)
        if path.name.endswith(".pending"):
            raise _Killed

    with monkeypatch.context() as patch:
        patch.setattr(golden_module, "atomic_write", dies_after_pending)
        with pytest.raises(_Killed):
            GoldenStore(root).write("big", data, {"writer": {"tag": TAG}})


TAG = "torch0.0.0-numpy0.0.0-py3.11"


def test_writer_killed_after_pending_metadata_of_the_write_after_a_killed_one(
    tmp_path, monkeypatch
):
    """Two kills in a row: between steps 2 and 3, then the next write after its step 1.

    The first kill leaves a checkpoint only its pending metadata vouches for;
    the second write must settle that before its own pending metadata
    replaces it (seen in CI: the random-kill test found a golden no metadata
    vouched for).
    """
    proc = _start(tmp_path, pause=True)
    assert _line(proc) == "checkpoint replaced, metadata not committed"
    _kill(proc)
    (first,) = _check_store(tmp_path)
    _write_killed_after_pending(monkeypatch, tmp_path, bytes([0xA0]) * SIZE)
    assert _check_store(tmp_path) == [first]
    meta = json.loads((tmp_path / "big" / f"{TAG}.json").read_text())
    # Committed by the second writer before it wrote its own pending metadata.
    assert meta["sha256"] == first
    assert meta["round"] == 1


def test_a_pending_metadata_whose_checkpoint_never_landed_is_not_committed(tmp_path, monkeypatch):
    """Settling a killed write commits only a pending file that matches the checkpoint."""
    store = GoldenStore(tmp_path)
    store.write("big", b"one", {"writer": {"tag": TAG}})
    pending = tmp_path / "big" / f".{TAG}.json.pending"
    # A write killed after its step 1: its pending file describes bytes never written.
    pending.write_text(json.dumps({"sha256": "0" * 64, "writer": {"tag": TAG}}))
    _write_killed_after_pending(monkeypatch, tmp_path, b"two")
    assert [g.read_verified() for g in store.goldens("big")] == [b"one"]
    store.write("big", b"three", {"writer": {"tag": TAG}})
    assert not pending.exists()
    assert [g.read_verified() for g in store.goldens("big")] == [b"three"]
