"""tinytrainer's checkpoint tests, as a downstream project writes them with pytest-ckptcompat.

Each `ckpt_compat.check` names a golden artifact: under `--ckpt-compat-update`
this environment writes its golden, under `--ckpt-compat` every stored golden
(from every torch/numpy that wrote one) is loaded here with
`torch.load(weights_only=True)` and compared.
"""

from __future__ import annotations

import pytest
from tinytrainer import Trainer


@pytest.fixture(scope="module")
def trainer() -> Trainer:
    return Trainer().train()


def test_model_state(ckpt_compat, trainer):
    # Weights differ in the last bits between torch releases: compare structure.
    ckpt_compat.check("model_state", trainer.model.state_dict(), compare="structure")


def test_optimizer_and_scheduler_state(ckpt_compat, trainer):
    state = {
        "optimizer": trainer.optimizer.state_dict(),
        "scheduler": trainer.scheduler.state_dict(),
    }
    ckpt_compat.check("optimizer_state", state, compare="structure")


def test_rng_state(ckpt_compat, trainer):
    ckpt_compat.check("rng_state", trainer.rng_state(), compare="structure")


def test_metric(ckpt_compat, trainer):
    ckpt_compat.check("metric", {"best": trainer.best_metric(), "step": trainer.step})


def test_hparams(ckpt_compat, trainer):
    ckpt_compat.check("hparams", trainer.hparams)


def test_run_info(ckpt_compat, trainer):
    ckpt_compat.check("run_info", {"data_dir": trainer.data_dir, "tags": trainer.tags})


def test_whole_checkpoint(ckpt_compat, trainer):
    ckpt_compat.check("train_state", trainer.checkpoint(), compare="structure")


def test_loader_reads_what_the_trainer_saves(tmp_path, trainer):
    # The project's own loader, with its own allowlist (no plugin involved).
    from tinytrainer import load_checkpoint, save_checkpoint

    save_checkpoint(trainer, tmp_path / "ckpt.pt")
    loaded = load_checkpoint(tmp_path / "ckpt.pt")
    assert loaded["step"] == trainer.step
    assert loaded["hparams"] == trainer.hparams
