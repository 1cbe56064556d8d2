"""CUDA tensors: loaded and compared as a user's torch.load does.

Tensors come back on the device they were saved from when this machine has it
(what `torch.load` does without `map_location`), else on the CPU (what
`map_location="cpu"` does), and the message says which. A checkpoint written on
a GPU is made here by tagging CPU storages `cuda:0` at save time (torch's own
`register_package` hook: the file is byte for byte what a GPU writer's would
be, data aside); the real CUDA roundtrip runs only where a GPU exists.
"""

from __future__ import annotations

import io

import pytest

torch = pytest.importorskip("torch")

from pytest_ckptcompat.outcomes import load_here, load_outcome  # noqa: E402
from pytest_ckptcompat.scan.allowlist import Allowlist  # noqa: E402
from pytest_ckptcompat.scan.rules import TorchRules  # noqa: E402

NO_GPU = "no GPU on this machine: a CUDA tensor's roundtrip keeps it on the GPU where one exists"


def saved_on_cuda(obj: object) -> bytes:
    """`torch.save(obj)` as a machine with a GPU writes it: every storage tagged cuda:0."""
    import torch.serialization as ts

    def tagger(storage):
        return "cuda:0"

    def never(storage, location):
        return None

    ts.register_package(-1000, tagger, never)
    entry = ts._package_registry[0]
    try:
        buffer = io.BytesIO()
        torch.save(obj, buffer)
    finally:
        ts._package_registry.remove(entry)
    data = buffer.getvalue()
    assert b"cuda:0" in data
    return data


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: nothing is mapped")
def test_a_gpu_checkpoint_loads_on_the_cpu_and_says_so():
    data = saved_on_cuda({"w": torch.arange(4.0)})
    loaded, mapped = load_here(data, Allowlist())
    assert mapped == {"cuda:0": "cpu"}
    assert loaded["w"].device.type == "cpu"
    assert torch.equal(loaded["w"], torch.arange(4.0))
    # Torch itself, without map_location, refuses it here: that is what was bridged.
    with pytest.raises(RuntimeError, match="map_location"):
        torch.load(io.BytesIO(data), weights_only=True)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: nothing is mapped")
def test_a_golden_from_a_gpu_writer_compares_by_value(rules_here):
    data = saved_on_cuda({"w": torch.arange(4.0)})
    ok = load_outcome(data, {"w": torch.arange(4.0)}, rules=rules_here, allowlist=Allowlist())
    assert (ok.outcome, ok.message) == ("ok", "")
    differs = load_outcome(data, {"w": torch.zeros(4)}, rules=rules_here, allowlist=Allowlist())
    assert differs.outcome == "mismatch"
    assert differs.message.endswith(
        "(saved on cuda:0, which this machine does not have: loaded with map_location='cpu' "
        "and compared on the CPU)"
    )


def test_another_writers_devices_are_not_a_mismatch(rules_here):
    # A golden written on the CPU, read where the code now saves on another device:
    # its values count, not the writer's hardware (same_devices=False is for goldens).
    data = io.BytesIO()
    torch.save({"w": torch.ones(2)}, data)
    meta = {"w": torch.ones(2, device="meta")}
    same = load_outcome(data.getvalue(), meta, rules=rules_here, allowlist=Allowlist())
    assert same.outcome == "mismatch"
    assert "device" in same.message
    other = load_outcome(
        data.getvalue(), meta, rules=rules_here, allowlist=Allowlist(), same_devices=False
    )
    assert other.outcome == "ok", other.message


@pytest.fixture(scope="module")
def rules_here():
    return TorchRules.from_installed()


def test_a_roundtrip_mismatch_says_where_tensors_were_loaded(pytester):
    pytester.makepyfile(
        """
        import torch

        class Lossy:
            def __init__(self):
                self.a, self.b = 1, 2

            def __getstate__(self):
                return {"a": self.a}  # forgets b: loads, but differs

        def test_it(ckpt_compat):
            ckpt_compat.roundtrip({"t": torch.ones(2), "o": Lossy()}, safe_globals=[Lossy])
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*ckpt_compat.roundtrip: loads under weights_only=True, but differs from what was "
            "saved (tensors loaded on the devices they were saved from):*"
        ]
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_cuda_tensors_roundtrip_on_their_device(pytester):  # pragma: no cover - needs a GPU
    pytester.makepyfile(
        """
        import torch

        def test_roundtrip(ckpt_compat):
            obj = {"w": torch.arange(4.0, device="cuda"), "cpu": torch.ones(1)}
            loaded = ckpt_compat.roundtrip(obj)
            assert loaded["w"].device == obj["w"].device
            assert loaded["cpu"].device.type == "cpu"

        def test_check(ckpt_compat):
            model = torch.nn.Linear(2, 2).cuda()
            ckpt_compat.check("gpu_model", {"state": model.state_dict()})
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "--ckpt-compat-update")
    result.assert_outcomes(passed=2)
    result = pytester.runpytest("-p", "no:cacheprovider", "--ckpt-compat")
    result.assert_outcomes(passed=2)


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: nothing is mapped")
def test_the_scan_names_the_device_the_plugins_own_loads_do_not_need(rules_here):
    """The scan says what a plain torch.load does with a GPU checkpoint; the plugin maps it."""
    from pytest_ckptcompat.outcomes import for_load_here
    from pytest_ckptcompat.scan.scanner import scan_bytes

    data = saved_on_cuda({"w": torch.arange(4.0)})
    scan = scan_bytes(data, rules_here)
    located = [o for o in scan.verdict.obstacles if o.code == "location"]
    notes = [n for n in scan.notes if n.startswith("storages saved on cuda:0")]
    if rules_here.version.endswith("+cpu"):  # a CPU build: torch.load fails here
        assert located
        assert not scan.loadable
    else:  # a CUDA build: it depends on the machine, which the scan does not probe
        assert notes
    assert for_load_here(scan.verdict).loadable
    ok = load_outcome(data, {"w": torch.arange(4.0)}, rules=rules_here, allowlist=Allowlist())
    assert ok.outcome == "ok"
