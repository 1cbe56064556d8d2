"""The golden store keeps torch and safetensors goldens, one file per writer either way."""

from __future__ import annotations

import io

import torch

from pytest_ckptcompat.fixcheck import check_fix
from pytest_ckptcompat.golden import GoldenStore

WRITER = {"tag": "torch9.9.9-numpy9.9.9-py3.11", "torch": "9.9.9", "numpy": "9.9.9",
          "python": "3.11", "platform": "linux"}  # fmt: skip


def _torch_bytes() -> bytes:
    buffer = io.BytesIO()
    torch.save({"w": torch.ones(2)}, buffer)
    return buffer.getvalue()


def test_a_safetensors_golden_has_its_own_suffix_and_replaces_the_torch_one(tmp_path):
    from safetensors.torch import save

    store = GoldenStore(tmp_path)
    store.write("w", _torch_bytes(), {"writer": WRITER, "globals": []})
    (golden,) = store.goldens("w")
    assert (golden.format, golden.path.suffix) == ("torch", ".pt")
    data = save({"w": torch.ones(2)})
    store.write("w", data, {"writer": WRITER, "globals": [], "format": "safetensors"})
    (golden,) = store.goldens("w")
    assert (golden.format, golden.path.suffix) == ("safetensors", ".safetensors")
    assert golden.read_verified() == data
    assert sorted(p.name for p in (tmp_path / "w").iterdir()) == [
        f"{WRITER['tag']}.json",
        f"{WRITER['tag']}.safetensors",
    ]
    assert store.delete(golden)
    assert not (tmp_path / "w").exists()


def test_check_fix_leaves_safetensors_goldens_alone(tmp_path):
    from safetensors.torch import save

    store = GoldenStore(tmp_path / "goldens")
    store.write("pt", _torch_bytes(), {"writer": WRITER, "globals": []})
    store.write("st", save({"w": torch.ones(2)}), {"writer": WRITER, "format": "safetensors"})
    snippet = tmp_path / "safe_globals.py"
    snippet.write_text("# nothing to allow\n")
    doc = check_fix(snippet, tmp_path / "goldens")
    assert [(r["artifact"], r["loads"]) for r in doc["results"]] == [("pt", True)]
