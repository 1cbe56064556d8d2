"""`ckptcompat scan DIR`: a Hugging Face / Trainer checkpoint folder in one command.

Recursive, checkpoint extensions by default (`--include` globs instead),
configuration files skipped and counted, hidden folders not entered, a folder
without any checkpoint an error of its own (exit 2) that does not hide the rest.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys

import pytest
import torch

from pytest_ckptcompat.scan.discover import find_checkpoints

safetensors_torch = pytest.importorskip("safetensors.torch")


def _scan(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pytest_ckptcompat", "scan", "--no-project-config", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture(scope="module")
def trainer_folder(tmp_path_factory):
    """What `transformers.Trainer` leaves in `checkpoint-500/` (small), plus the odd extra."""
    root = tmp_path_factory.mktemp("run") / "checkpoint-500"
    root.mkdir()
    g = torch.Generator().manual_seed(0)
    model = {"linear.weight": torch.randn(4, 4, generator=g), "linear.bias": torch.zeros(4)}
    safetensors_torch.save_file(model, str(root / "model.safetensors"), metadata={"format": "pt"})
    torch.save(
        {"state": {}, "param_groups": [{"lr": 0.1, "params": [0, 1]}]}, root / "optimizer.pt"
    )
    torch.save({"last_epoch": 3, "_step_count": 4}, root / "scheduler.pt")
    torch.save({"python": (3, (1, 2), None), "cpu": torch.get_rng_state()}, root / "rng_state.pth")
    # training_args.bin: the Trainer pickles its TrainingArguments object (blocked by default).
    torch.save(argparse.Namespace(output_dir="out", seed=42), root / "training_args.bin")
    for name in ("config.json", "trainer_state.json", "tokenizer_config.json"):
        (root / name).write_text("{}")
    (root / "README.md").write_text("# run\n")
    (root / "notes").write_text("no extension")
    (root / ".cache").mkdir()
    torch.save({"x": 1}, root / ".cache" / "hidden.pt")
    sub = root / "ema"
    sub.mkdir()
    torch.save({"w": torch.ones(2)}, sub / "ema.pt")
    return root


def test_find_checkpoints_recursive_with_skips(trainer_folder):
    found = find_checkpoints([trainer_folder])
    names = sorted(p.relative_to(trainer_folder).as_posix() for p in found.files)
    assert names == [
        "ema/ema.pt", "model.safetensors", "optimizer.pt", "rng_state.pth", "scheduler.pt",
        "training_args.bin",
    ]  # fmt: skip
    assert found.skipped == {"config": 4, "other": 1}
    assert found.skipped_text() == (
        "skipped 4 configuration files (JSON, TOML, ...) and 1 other file"
    )


def test_include_globs_replace_the_extensions(trainer_folder):
    found = find_checkpoints([trainer_folder], ["*.safetensors", "ema/*"])
    assert sorted(p.name for p in found.files) == ["ema.pt", "model.safetensors"]


def test_scan_of_a_folder(trainer_folder):
    proc = _scan(str(trainer_folder))
    # training_args.bin holds an argparse.Namespace: blocked, so exit 1 (not 2: all readable)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    out = proc.stdout
    assert f"{trainer_folder / 'model.safetensors'}: safetensors: no pickle" in out
    assert f"{trainer_folder / 'training_args.bin'}: torch-zip, NOT loadable" in out
    assert "argparse.Namespace" in out
    assert out.rstrip().endswith(
        f"6 file(s) read under {trainer_folder}; skipped 4 configuration files (JSON, TOML, "
        "...) and 1 other file"
    )
    doc = json.loads(_scan("--json", str(trainer_folder)).stdout)
    assert len(doc["files"]) == 6
    assert doc["skipped"] == {"config": 4, "other": 1}
    loadable = {pathlib.Path(f["path"]).name: f["loadable"] for f in doc["files"]}
    assert loadable == {
        "ema.pt": True, "model.safetensors": True, "optimizer.pt": True, "rng_state.pth": True,
        "scheduler.pt": True, "training_args.bin": False,
    }  # fmt: skip


def test_include_on_the_command_line(trainer_folder):
    proc = _scan("--include", "*.safetensors", "--include", "optimizer.pt", str(trainer_folder))
    assert proc.returncode == 0, proc.stderr
    assert "2 file(s) read under" in proc.stdout


def test_a_folder_without_checkpoints_is_an_error_that_hides_nothing(tmp_path, trainer_folder):
    empty = tmp_path / "configs"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    proc = _scan(str(empty), str(trainer_folder / "optimizer.pt"))
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [
        f"ckptcompat: error: {empty}: no checkpoint file in this directory (1 file(s) skipped "
        "by name)"
    ]
    assert f"{trainer_folder / 'optimizer.pt'}: torch-zip, loadable" in proc.stdout


def test_symlinked_folders_are_not_followed(tmp_path):
    root = tmp_path / "loop"
    root.mkdir()
    torch.save({"a": 1}, root / "a.pt")
    (root / "again").symlink_to(root, target_is_directory=True)
    found = find_checkpoints([root])
    assert [p.name for p in found.files] == ["a.pt"]
