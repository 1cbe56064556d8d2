"""safetensors in pytest: `roundtrip(format=...)`, `check(format=...)`, `assert_loads_into`.

Real pytest runs of a small downstream project (pytester, in a subprocess
because of torch), real safetensors files; goldens written by torch 2.5.1
are read by the suite's torch and the other way round.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("safetensors")

HEADER = """
import argparse, collections, os
import pytest
import torch
from safetensors.torch import save_file


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.tok = torch.nn.Embedding(10, 4)
        self.head = torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.tok.weight  # tied, as language models do
        self.register_buffer("steps", torch.tensor(7))


def clip_state(width=8, patch=16):
    g = torch.Generator().manual_seed(0)
    return collections.OrderedDict(
        positional_embedding=torch.randn(77, width, generator=g),
        text_projection=torch.randn(width, width, generator=g),
        logit_scale=torch.ones([]),
        **{"visual.trunk.patch_embed.proj.weight": torch.randn(width, 3, patch, patch,
                                                               generator=g)},
    )


class Clip(torch.nn.Module):
    def __init__(self, width=8, patch=16):
        super().__init__()
        self.positional_embedding = torch.nn.Parameter(torch.zeros(77, width))
        self.text_projection = torch.nn.Parameter(torch.zeros(width, width))
        self.logit_scale = torch.nn.Parameter(torch.zeros([]))
        self.visual = torch.nn.Module()
        self.visual.trunk = torch.nn.Module()
        self.visual.trunk.patch_embed = torch.nn.Module()
        self.visual.trunk.patch_embed.proj = torch.nn.Conv2d(3, width, patch, bias=False)
"""


def run(pytester: pytest.Pytester, body: str, *args: str) -> pytest.RunResult:
    pytester.makeini("[pytest]\naddopts = -p pytester --strict-markers\n")
    pytester.makepyfile(test_it=HEADER + body)
    return pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)


def test_roundtrip_in_safetensors(pytester):
    result = run(
        pytester,
        """
def test_state_dict(ckpt_compat):
    sd = clip_state()
    loaded = ckpt_compat.roundtrip(sd, format="safetensors")
    assert set(loaded) == set(sd) and all(torch.equal(loaded[k], sd[k]) for k in sd)

def test_module_with_tied_weights(ckpt_compat):
    model = Tied()
    loaded = ckpt_compat.roundtrip(model, format="safetensors")
    assert loaded is not model
    assert loaded.head.weight.data_ptr() == loaded.tok.weight.data_ptr()
    assert torch.equal(loaded.tok.weight, model.tok.weight) and int(loaded.steps) == 7

def test_tied_state_dict(ckpt_compat):
    ckpt_compat.roundtrip(Tied().state_dict(), format="safetensors")

def test_python_values(ckpt_compat):
    ckpt_compat.roundtrip(
        {"w": torch.zeros(2), "epoch": 3, "hparams": argparse.Namespace(lr=0.1)},
        format="safetensors",
    )

def test_nested(ckpt_compat):
    ckpt_compat.roundtrip({"model": clip_state(), "step": torch.tensor(1)}, format="safetensors")

def test_not_contiguous(ckpt_compat):
    ckpt_compat.roundtrip({"w": torch.zeros(3, 4).t()}, format="safetensors")

def test_unknown_format(ckpt_compat):
    ckpt_compat.roundtrip({"w": torch.zeros(2)}, format="onnx")

@pytest.mark.ckpt_compat(expect_blocked=["builtins.set"])
def test_expect_blocked_makes_no_sense(ckpt_compat):
    ckpt_compat.roundtrip({"w": torch.zeros(2)}, format="safetensors")
""",
    )
    result.assert_outcomes(passed=2, failed=6, errors=0)
    out = result.stdout.str()
    assert (
        "ckpt_compat.roundtrip(format='safetensors'): cannot be saved as safetensors:\n"
        "  'tok.weight' and 'head.weight' share one storage (tied weights or views): "
        "safetensors stores no aliases; pass the nn.Module (roundtrip(model, "
        "format='safetensors') uses save_model / load_model, which keep one name and tie them "
        "again), or .clone() one of them"
    ) in out
    assert (
        "safetensors holds only tensors: 'epoch' is int, 'hparams' is argparse.Namespace "
        "(keep Python values out of the file: in metadata= as strings, or in a torch.save file)"
    ) in out
    assert "'model' is a collections.OrderedDict: safetensors files are flat" in out
    assert "'w' is not contiguous: safetensors refuses it (.contiguous() it)" in out
    assert "ckpt_compat.roundtrip: format='onnx'; use 'torch' or 'safetensors'" in out
    assert "a safetensors file holds no pickle: nothing in it is ever blocked" in out


CHECK = """
def state():
    sd = clip_state()
    if os.environ.get("DRIFT") == "fp16":
        sd = collections.OrderedDict((k, v.half()) for k, v in sd.items())
    elif os.environ.get("DRIFT") == "renamed":
        sd.pop("text_projection")
        sd["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    return sd

def test_weights(ckpt_compat):
    ckpt_compat.check("clip_weights", state(), format="safetensors")

def test_tied(ckpt_compat):
    ckpt_compat.check("tied_model", Tied(), format="safetensors")
"""


def test_check_writes_and_reads_safetensors_goldens(pytester):
    run(pytester, CHECK, "--ckpt-compat-update").assert_outcomes(passed=2)
    folder = pytester.path / "ckpt_goldens" / "clip_weights"
    files = sorted(p.name for p in folder.iterdir())
    assert len(files) == 2
    meta_name = next(f for f in files if f.endswith(".json"))
    assert meta_name.replace(".json", ".safetensors") in files
    meta = json.loads((folder / meta_name).read_text())
    assert meta["format"] == "safetensors"
    assert meta["globals"] == []
    scan = subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "scan", "--no-project-config", str(folder)],
        capture_output=True,
        text=True,
    )
    assert scan.returncode == 0, scan.stderr
    assert "safetensors: no pickle, loads with safetensors (4 tensors" in scan.stdout

    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--ckpt-compat")
    result.assert_outcomes(passed=2)

    os.environ["DRIFT"] = "fp16"
    try:
        drift = pytester.runpytest_subprocess("--ckpt-compat", "-k", "weights")
    finally:
        del os.environ["DRIFT"]
    drift.assert_outcomes(failed=1, deselected=1)
    drift.stdout.fnmatch_lines(
        [
            "*mismatch*",
            "*state_dict: 4 dtype fp16->fp32 (now -> golden)",
            "*dtype mismatch for 4 key(s): torch.float32 in the golden, torch.float16 now: *",
        ]
    )
    os.environ["DRIFT"] = "renamed"
    try:
        renamed = pytester.runpytest_subprocess("--ckpt-compat", "-k", "weights")
    finally:
        del os.environ["DRIFT"]
    renamed.assert_outcomes(failed=1, deselected=1)
    renamed.stdout.fnmatch_lines(
        [
            '*Missing key(s) in state_dict: "text_model.embeddings.position_ids".',
            '*Unexpected key(s) in state_dict: "text_projection".',
        ]
    )

    golden = folder / meta_name.replace(".json", ".safetensors")
    data = bytearray(golden.read_bytes())
    data[-1] ^= 0xFF
    golden.write_bytes(bytes(data))
    broken = pytester.runpytest_subprocess("--ckpt-compat", "-k", "weights")
    broken.assert_outcomes(failed=1, deselected=1)
    broken.stdout.fnmatch_lines(["*error*modified since it was written*"])


def test_a_format_change_replaces_the_old_golden(pytester):
    body = """
def test_it(ckpt_compat):
    fmt = os.environ.get("FMT", "torch")
    ckpt_compat.check("w", {"w": torch.ones(2)}, format=fmt)
"""
    run(pytester, body, "--ckpt-compat-update").assert_outcomes(passed=1)
    os.environ["FMT"] = "safetensors"
    try:
        pytester.runpytest_subprocess("--ckpt-compat-update").assert_outcomes(passed=1)
        both = pytester.runpytest_subprocess("--ckpt-compat")
    finally:
        del os.environ["FMT"]
    both.assert_outcomes(passed=1)
    names = sorted(p.suffix for p in (pytester.path / "ckpt_goldens" / "w").iterdir())
    assert names == [".json", ".safetensors"]


LOADS_INTO = """
@pytest.fixture
def files(tmp_path):
    sd = clip_state()
    torch.save({"epoch": 3, "state_dict": {"module." + k: v for k, v in sd.items()}},
               tmp_path / "train.pt")
    save_file(dict(sd), str(tmp_path / "model.safetensors"))
    wrong = collections.OrderedDict(sd)
    wrong.pop("positional_embedding")
    wrong["text_model.embeddings.position_ids"] = torch.zeros(1, 77, dtype=torch.long)
    wrong["visual.trunk.patch_embed.proj.weight"] = torch.zeros(8, 3, 14, 14)
    save_file(dict(wrong), str(tmp_path / "wrong.safetensors"))
    return tmp_path

def test_loads_from_safetensors(ckpt_compat, files):
    model = Clip()
    result = ckpt_compat.assert_loads_into(model, files / "model.safetensors")
    assert result.missing_keys == [] and result.unexpected_keys == []
    assert torch.equal(model.text_projection, clip_state()["text_projection"])

def test_loads_from_a_nested_ddp_file(ckpt_compat, files):
    model = Clip()
    ckpt_compat.assert_loads_into(model, files / "train.pt", key="state_dict",
                                  strip_prefix="module.")
    assert torch.equal(model.positional_embedding, clip_state()["positional_embedding"])

def test_loads_from_memory(ckpt_compat):
    ckpt_compat.assert_loads_into(Clip(), {"state_dict": clip_state()})

def test_every_difference_at_once(ckpt_compat, files):
    ckpt_compat.assert_loads_into(Clip(), files / "wrong.safetensors")

def test_not_strict_still_refuses_shapes(ckpt_compat, files):
    ckpt_compat.assert_loads_into(Clip(), files / "wrong.safetensors", strict=False)

def test_exact_dtypes(ckpt_compat, files):
    ckpt_compat.assert_loads_into(Clip().half(), files / "model.safetensors", exact_dtypes=True)

def test_dtypes_cast_by_default(ckpt_compat, files):
    ckpt_compat.assert_loads_into(Clip().half(), files / "model.safetensors")
"""


def test_assert_loads_into(pytester):
    report = pytester.path / "report.json"
    result = run(pytester, LOADS_INTO, "--ckpt-compat", f"--ckpt-compat-report={report}")
    result.assert_outcomes(passed=4, failed=3)
    # A checkpoint that does not fit the model is a compatibility finding, not a bug of the
    # project's tests: the matrix's grids show it, and a baseline can hold it.
    failed = [t for t in json.loads(report.read_text())["tests"] if t["outcome"] == "failed"]
    assert len(failed) == 3
    assert all(t["finding"] for t in failed), failed
    out = result.stdout.str()
    every = out[out.index("test_every_difference_at_once") :]
    assert (
        "ckpt_compat.assert_loads_into: 1 missing, 1 unexpected, 1 shape\n"
        "Error(s) in loading state_dict for Clip:\n"
        '\tMissing key(s) in state_dict: "positional_embedding".\n'
        '\tUnexpected key(s) in state_dict: "text_model.embeddings.position_ids".\n'
        "\tsize mismatch for visual.trunk.patch_embed.proj.weight: copying a param with shape "
        "torch.Size([8, 3, 14, 14]) from checkpoint, the shape in current model is "
        "torch.Size([8, 3, 16, 16])."
    ) in every
    not_strict = out[out.index("test_not_strict_still_refuses_shapes") :]
    assert "ckpt_compat.assert_loads_into: 1 missing, 1 unexpected, 1 shape\n" in not_strict
    assert "\tsize mismatch for visual.trunk.patch_embed.proj.weight" in not_strict
    exact = out[out.index("test_exact_dtypes") :]
    assert "ckpt_compat.assert_loads_into: 4 dtype fp16->fp32" in exact
    assert "\tdtype float16 -> float32 for 4 key(s)" in exact


# --- across environments: torch 2.5.1 and this one ------------------------------------


@pytest.fixture(scope="session")
def old_python_safetensors(old_python: Path) -> Path:
    """The torch 2.5.1 environment, with safetensors (an older release than the suite's)."""
    from conftest import OLD_DIR, _uv

    env = {**os.environ, "VIRTUAL_ENV": str(OLD_DIR)}
    subprocess.run([_uv(), "pip", "install", "-q", "safetensors==0.4.5"], check=True, env=env)
    return old_python


@pytest.mark.slow
def test_safetensors_goldens_across_torch_versions(tmp_path, old_python_safetensors):
    project = tmp_path / "downstream"
    project.mkdir()
    (project / "pytest.ini").write_text("[pytest]\n")
    (project / "test_ckpt.py").write_text(HEADER + CHECK)
    new_python = Path(sys.executable)
    for python in (old_python_safetensors, new_python):
        proc = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ckpt-compat-update"],
            cwd=project,
            capture_output=True,
            text=True,
        )
        assert proc.returncode == 0, proc.stdout[-3000:]
    writers = sorted(p.stem for p in (project / "ckpt_goldens" / "clip_weights").glob("*.json"))
    assert len(writers) == 2
    assert any(w.startswith("torch2.5.1-") for w in writers)
    for name, python in (("old", old_python_safetensors), ("new", new_python)):
        report = tmp_path / f"{name}.json"
        proc = subprocess.run(
            [str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "--ckpt-compat",
             f"--ckpt-compat-report={report}"],
            cwd=project,
            capture_output=True,
            text=True,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stdout[-3000:]
        records = [r for r in json.loads(report.read_text())["records"] if r["kind"] == "golden"]
        assert len(records) == 4
        assert {r["outcome"] for r in records} == {"ok"}, records
