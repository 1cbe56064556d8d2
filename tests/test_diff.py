"""`ckptcompat diff A B`: state dicts compared statically, in load_state_dict(strict=True)'s words.

The words are checked against torch itself: a real module shaped like A's
state dict is given B's tensors with `load_state_dict(strict=True)`, and every
line `diff` prints is a line of torch's error. OpenCLIP-like state dicts: a
`.pt` and its `.safetensors` export diff clean; renamed keys, a MobileCLIP-like
shape mismatch, an fp16 export, DDP prefixes, nested checkpoints, shards with
an index, tied weights. Nothing is unpickled without `--values`, and with it
only by `torch.load(weights_only=True)` or safetensors.
"""

from __future__ import annotations

import collections
import json
import subprocess
import sys
import time

import pytest
import torch
from hostile_corpus import p2_posix_system

safetensors_torch = pytest.importorskip("safetensors.torch")
save_file = safetensors_torch.save_file


def _diff(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "diff", *(str(a) for a in args)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def open_clip_like(width: int = 32, layers: int = 2, patch: int = 16, seed: int = 0):
    """Keys and shapes as open_clip's ViT CLIP state dict has them (small)."""
    g = torch.Generator().manual_seed(seed)
    sd: dict[str, torch.Tensor] = collections.OrderedDict()
    sd["positional_embedding"] = torch.randn(77, width, generator=g)
    sd["text_projection"] = torch.randn(width, width, generator=g)
    sd["logit_scale"] = torch.ones([])
    sd["visual.class_embedding"] = torch.randn(width, generator=g)
    sd["visual.positional_embedding"] = torch.randn(5, width, generator=g)
    sd["visual.proj"] = torch.randn(width, width, generator=g)
    sd["visual.trunk.patch_embed.proj.weight"] = torch.randn(width, 3, patch, patch, generator=g)
    for i in range(layers):
        p = f"transformer.resblocks.{i}."
        sd[p + "ln_1.weight"] = torch.ones(width)
        sd[p + "ln_1.bias"] = torch.zeros(width)
        sd[p + "attn.in_proj_weight"] = torch.randn(3 * width, width, generator=g)
        sd[p + "attn.in_proj_bias"] = torch.randn(3 * width, generator=g)
        sd[p + "attn.out_proj.weight"] = torch.randn(width, width, generator=g)
        sd[p + "mlp.c_fc.weight"] = torch.randn(4 * width, width, generator=g)
    sd["token_embedding.weight"] = torch.randn(100, width, generator=g)
    sd["ln_final.weight"] = torch.ones(width)
    return sd


class _Holder(torch.nn.Module):
    pass


def module_like(sd: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A real module whose state_dict() has exactly `sd`'s keys, shapes and dtypes."""
    root = _Holder()
    for key, tensor in sd.items():
        *path, name = key.split(".")
        node = root
        for part in path:
            if not hasattr(node, part):
                node.add_module(part, _Holder())
            node = getattr(node, part)
        node.register_parameter(name, torch.nn.Parameter(torch.empty_like(tensor)))
    return root


def torch_error_lines(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> set[str]:
    """The lines of torch's own error for load_state_dict(b, strict=True) into a module like a."""
    model = module_like(a)
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(b, strict=True)
    text = str(info.value)
    assert text.startswith("Error(s) in loading state_dict for _Holder:")
    return {line.strip() for line in text.splitlines()[1:]}


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    root = tmp_path_factory.mktemp("clip")
    sd = open_clip_like()
    torch.save(sd, root / "open_clip_pytorch_model.bin")
    save_file(sd, str(root / "open_clip_model.safetensors"), metadata={"format": "pt"})
    return root, sd


def test_a_pt_and_its_safetensors_export_diff_clean(clip):
    root, sd = clip
    proc = _diff(root / "open_clip_pytorch_model.bin", root / "open_clip_model.safetensors")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == f"same: {len(sd)} tensors, same keys, shapes, dtypes"
    proc = _diff(
        root / "open_clip_pytorch_model.bin", root / "open_clip_model.safetensors", "--values"
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == (
        f"same: {len(sd)} tensors, same keys, shapes, dtypes and values"
    )


def test_openclip_renamed_keys_in_load_state_dict_words(clip, tmp_path):
    root, sd = clip
    wrong = collections.OrderedDict(
        (k, v) for k, v in sd.items() if k not in ("positional_embedding", "text_projection")
    )
    wrong["text_model.embeddings.position_ids"] = torch.arange(77).unsqueeze(0)
    save_file(wrong, str(tmp_path / "wrong.safetensors"))
    proc = _diff(root / "open_clip_pytorch_model.bin", tmp_path / "wrong.safetensors")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == "2 missing, 1 unexpected"
    ours = {line.strip() for line in lines if line.startswith("\t")}
    assert ours == {
        'Missing key(s) in state_dict: "positional_embedding", "text_projection".',
        'Unexpected key(s) in state_dict: "text_model.embeddings.position_ids".',
    }
    assert ours == torch_error_lines(sd, wrong)


def test_mobileclip_like_shape_mismatch_in_torch_words(clip, tmp_path):
    root, sd = clip
    other = collections.OrderedDict(sd)
    other["visual.trunk.patch_embed.proj.weight"] = torch.zeros(32, 3, 14, 14)
    torch.save(other, tmp_path / "mobileclip.pt")
    proc = _diff(root / "open_clip_model.safetensors", tmp_path / "mobileclip.pt")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == "1 shape"
    ours = {line.strip() for line in proc.stdout.splitlines() if line.startswith("\t")}
    assert ours == {
        "size mismatch for visual.trunk.patch_embed.proj.weight: copying a param with shape "
        "torch.Size([32, 3, 14, 14]) from checkpoint, the shape in current model is "
        "torch.Size([32, 3, 16, 16])."
    }
    assert ours == torch_error_lines(sd, other)


def test_every_difference_at_once_matches_torch(clip, tmp_path):
    root, sd = clip
    other = collections.OrderedDict((k, v) for k, v in sd.items() if k != "logit_scale")
    other["visual.proj"] = torch.zeros(16, 32)
    other["extra.bias"] = torch.zeros(3)
    other["token_embedding.weight"] = torch.zeros(99, 32)
    torch.save(other, tmp_path / "other.pt")
    proc = _diff(root / "open_clip_pytorch_model.bin", tmp_path / "other.pt")
    assert proc.stdout.splitlines()[0] == "1 missing, 1 unexpected, 2 shape"
    ours = {line.strip() for line in proc.stdout.splitlines() if line.startswith("\t")}
    assert ours == torch_error_lines(sd, other)


def test_an_fp16_export_is_one_summary_line(tmp_path):
    g = torch.Generator().manual_seed(1)
    sd = {f"blocks.{i}.weight": torch.randn(4, generator=g) for i in range(62)}
    sd["step"] = torch.tensor(3)
    torch.save(sd, tmp_path / "fp32.pt")
    save_file({k: v.half() if v.is_floating_point() else v for k, v in sd.items()},
              str(tmp_path / "fp16.safetensors"))  # fmt: skip
    proc = _diff(tmp_path / "fp32.pt", tmp_path / "fp16.safetensors")
    assert proc.returncode == 1
    lines = proc.stdout.splitlines()
    assert lines[0] == "62 dtype fp32->fp16"
    assert "Error(s) in loading state_dict:" not in proc.stdout  # load_state_dict would cast them
    (dtype_line,) = [line for line in lines if "dtype float32 -> float16" in line]
    assert dtype_line.strip().startswith(
        "dtype float32 -> float16 for 62 key(s) (load_state_dict casts them to the model's "
        "dtype): blocks.0.weight, blocks.1.weight,"
    )
    assert dtype_line.endswith("blocks.9.weight, ... and 52 more")
    values = _diff(tmp_path / "fp32.pt", tmp_path / "fp16.safetensors", "--values")
    assert values.stdout.splitlines()[0].startswith("62 dtype fp32->fp16, ")
    assert "max |a - b|" in values.stdout


def test_nested_and_ddp_prefixed(clip, tmp_path):
    root, sd = clip
    ddp = collections.OrderedDict(("module." + k, v) for k, v in sd.items())
    torch.save({"epoch": 3, "state_dict": ddp, "optimizer": {}}, tmp_path / "train.pt")
    proc = _diff(root / "open_clip_model.safetensors", tmp_path / "train.pt")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == f"{len(sd)} missing, {len(sd)} unexpected"
    assert "note: B: the state dict is its 'state_dict' entry" in proc.stdout
    proc = _diff(
        root / "open_clip_model.safetensors", tmp_path / "train.pt",
        "--key", "state_dict", "--strip-prefix", "module.",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    assert f"note: B: prefix 'module.' stripped from {len(sd)} key(s)" in proc.stdout
    missing = _diff(root / "open_clip_pytorch_model.bin", tmp_path / "train.pt", "--key", "model")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"ckptcompat: error: {tmp_path / 'train.pt'}: no entry 'model' (top-level keys: epoch, "
        "state_dict, optimizer)"
    )


def test_a_directory_of_shards(clip, tmp_path):
    root, sd = clip
    keys = list(sd)
    shards = tmp_path / "hf"
    shards.mkdir()
    halves = {
        "model-00001-of-00002.safetensors": keys[:9],
        "model-00002-of-00002.safetensors": keys[9:],
    }
    for name, part in halves.items():
        save_file({k: sd[k] for k in part}, str(shards / name))
    index = {"metadata": {}, "weight_map": {k: n for n, part in halves.items() for k in part}}
    (shards / "model.safetensors.index.json").write_text(json.dumps(index))
    (shards / "config.json").write_text("{}")
    proc = _diff(root / "open_clip_pytorch_model.bin", shards)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"B  {shards}: directory, 2 files, {len(sd)} tensors" in proc.stdout
    assert "read the shards model.safetensors.index.json lists (2 file(s))" in proc.stdout
    bins = tmp_path / "bins"
    bins.mkdir()
    torch.save({k: sd[k] for k in keys[:5]}, bins / "pytorch_model-00001-of-00002.bin")
    torch.save({k: sd[k] for k in keys[5:]}, bins / "pytorch_model-00002-of-00002.bin")
    proc = _diff(bins, shards, "--values")
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_storage_sharing_differences(tmp_path):
    g = torch.Generator().manual_seed(2)
    emb = torch.randn(10, 4, generator=g)
    tied = {"tok.weight": emb, "head.weight": emb, "bias": torch.zeros(4)}
    torch.save(tied, tmp_path / "tied.pt")
    untied = {k: v.clone() for k, v in tied.items()}
    torch.save(untied, tmp_path / "untied.pt")
    proc = _diff(tmp_path / "tied.pt", tmp_path / "untied.pt")
    assert proc.returncode == 1
    assert proc.stdout.splitlines()[0] == "1 sharing"
    assert (
        "storage sharing: tok.weight, head.weight share one storage in A, not in B" in proc.stdout
    )
    # safetensors has no sharing: save_model keeps one of the tied names
    model = module_like(tied)
    model.head.weight = model.tok.weight
    safetensors_torch.save_model(model, str(tmp_path / "model.safetensors"))
    proc = _diff(tmp_path / "tied.pt", tmp_path / "model.safetensors")
    assert proc.stdout.splitlines()[0] == "1 missing"
    assert 'Missing key(s) in state_dict: "tok.weight".' in proc.stdout


def test_json(clip, tmp_path):
    root, sd = clip
    other = collections.OrderedDict((k, v.half()) for k, v in sd.items() if k != "logit_scale")
    save_file(other, str(tmp_path / "half.safetensors"))
    proc = _diff(root / "open_clip_pytorch_model.bin", tmp_path / "half.safetensors", "--json")
    doc = json.loads(proc.stdout)
    assert doc["schema"] == "ckptcompat.diff/1"
    assert doc["same"] is False
    assert doc["summary"] == f"1 missing, {len(sd) - 1} dtype fp32->fp16"
    assert doc["missing"] == ["logit_scale"]
    assert doc["counts"]["dtype"] == len(sd) - 1
    assert doc["dtype"][0] == {"key": "positional_embedding", "a": "float32", "b": "float16"}
    assert doc["a"]["format"] == "torch-zip"
    assert doc["b"]["format"] == "safetensors"
    assert doc["values"] is None
    assert doc["messages"] == ['Missing key(s) in state_dict: "logit_scale".']


def test_unreadable_is_exit_2(tmp_path, clip):
    root, _ = clip
    (tmp_path / "cut.safetensors").write_bytes(b"\x20\0\0\0\0\0\0\0{}")
    proc = _diff(root / "open_clip_model.safetensors", tmp_path / "cut.safetensors")
    assert proc.returncode == 2
    assert proc.stderr.startswith(
        f"ckptcompat: error: {tmp_path / 'cut.safetensors'}: invalid safetensors file"
    )
    assert proc.stdout == ""


def test_nothing_is_unpickled_without_values(tmp_path, clip):
    root, _ = clip
    sentinel = tmp_path / "sentinel"
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(p2_posix_system(sentinel))
    # torch cannot even be imported: the comparison is static
    code = (
        "import sys\n"
        "sys.modules['torch'] = None\n"
        "from pytest_ckptcompat.cli import main\n"
        f"sys.exit(main(['diff', {str(root / 'open_clip_model.safetensors')!r}, "
        f"{str(root / 'open_clip_pytorch_model.bin')!r}]))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    proc = _diff(root / "open_clip_model.safetensors", evil)
    assert proc.returncode == 1
    assert "no state dict at the root" in proc.stdout
    proc = _diff(root / "open_clip_model.safetensors", evil, "--values")
    assert proc.returncode == 2
    assert "names globals that can run code (posix.system): refusing to load it" in proc.stderr
    time.sleep(0.1)
    assert not sentinel.exists()


def test_values_load_only_with_weights_only(tmp_path, clip):
    import argparse

    root, sd = clip
    torch.save({"state_dict": sd, "args": argparse.Namespace(lr=0.1)}, tmp_path / "ckpt.pt")
    static = _diff(root / "open_clip_model.safetensors", tmp_path / "ckpt.pt")
    assert static.returncode == 0, static.stdout
    proc = _diff(root / "open_clip_model.safetensors", tmp_path / "ckpt.pt", "--values")
    assert proc.returncode == 2
    assert "torch.load(weights_only=True) fails: UnpicklingError:" in proc.stderr
    assert "argparse.Namespace" in proc.stderr


def test_values_compares_the_entries_that_are_no_tensor(tmp_path):
    # `_extra_state` and step counts are state too: --values must not call them the same
    # when they differ, nor call same files different.
    w = torch.arange(3.0)
    torch.save({"w": w, "x._extra_state": {"step": 1}}, tmp_path / "a.pt")
    torch.save({"w": w, "x._extra_state": {"step": 2}}, tmp_path / "b.pt")
    torch.save({"w": w.clone(), "x._extra_state": {"step": 1}}, tmp_path / "c.pt")
    proc = _diff(tmp_path / "a.pt", tmp_path / "b.pt", "--values")
    assert proc.returncode == 1, proc.stdout
    assert "values differ for x._extra_state at step: 1 in A, 2 in B" in proc.stdout
    doc = json.loads(_diff(tmp_path / "a.pt", tmp_path / "b.pt", "--values", "--json").stdout)
    assert [(v["key"], v["tensor"]) for v in doc["values"]] == [("x._extra_state", False)]
    same = _diff(tmp_path / "a.pt", tmp_path / "c.pt", "--values")
    assert same.returncode == 0, same.stdout
    assert "same keys, shapes, dtypes and values" in same.stdout


@pytest.mark.slow
def test_a_state_dict_written_by_torch_2_5_diffs_clean_against_2_13(tmp_path, old_python, clip):
    root, sd = clip
    code = (
        "import sys, torch\n"
        f"sd = torch.load({str(root / 'open_clip_pytorch_model.bin')!r}, weights_only=True)\n"
        f"torch.save(sd, {str(tmp_path / 'old.pt')!r})\n"
        f"torch.save(sd, {str(tmp_path / 'old_legacy.pt')!r}, "
        "_use_new_zipfile_serialization=False)\n"
        "print(torch.__version__)\n"
    )
    proc = subprocess.run([str(old_python), "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("2.5.1")
    for name in ("old.pt", "old_legacy.pt"):
        for other in ("open_clip_pytorch_model.bin", "open_clip_model.safetensors"):
            diff = _diff(root / other, tmp_path / name, "--values")
            assert diff.returncode == 0, (name, other, diff.stdout, diff.stderr)
    assert len(sd) > 10


def test_a_side_that_can_run_code_is_never_just_the_same(tmp_path):
    """Its state dict matches, keys and all; a pickle beside data.pkl names posix.system."""
    import io
    import zipfile

    state = collections.OrderedDict(w=torch.zeros(2))
    clean, evil = tmp_path / "clean.pt", tmp_path / "evil.pt"
    torch.save(state, clean)
    buf = io.BytesIO()
    torch.save(state, buf)
    with zipfile.ZipFile(io.BytesIO(buf.getvalue())) as src, zipfile.ZipFile(evil, "w") as dst:
        for item in src.infolist():
            dst.writestr(item, src.read(item))
        folder = src.namelist()[0].split("/")[0]
        dst.writestr(f"{folder}/extra.pkl", p2_posix_system(tmp_path / "never"))
    proc = _diff(str(clean), str(evil))
    assert "DANGEROUS: names globals that can run code (posix.system)" in proc.stdout
    assert not (tmp_path / "never").exists()
