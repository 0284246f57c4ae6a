"""What paper recipes need of the trainer: Adam betas (DSAT), plain momentum, element-wise clipping and keeping
the epoch of best validation (LGCN); mixed precision; validating every few epochs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from mlflow.tracking import MlflowClient

from landmarkflow.config import load_config
from landmarkflow.runtime import CHECKPOINT_FILE
from landmarkflow.tracking import ensure_experiment
from landmarkflow.train.checkpoint import BEST, LAST, kept_val_nme, load_state, save_checkpoint
from landmarkflow.train.trainer import Trainer, build_optimizer, mixed_precision_dtype
from tests.fakes import ONE_CPU, dot_face_record, dots_hih

MODEL = dots_hih()


def test_adam_takes_the_configured_betas_and_sgd_is_plain_momentum_unless_asked() -> None:
    dsat = load_config("configs/dsat_300w.yaml")
    assert build_optimizer(MODEL, dsat).param_groups[0]["betas"] == (0.5, 0.999)
    lgcn = load_config("configs/lgcn_300w.yaml")
    group = build_optimizer(MODEL, lgcn).param_groups[0]
    assert (group["momentum"], group["nesterov"]) == (0.9, False)
    nesterov = load_config("configs/lgcn_300w.yaml", {"train.nesterov": True})
    assert build_optimizer(MODEL, nesterov).param_groups[0]["nesterov"] is True
    assert all(build_optimizer(MODEL, c).param_groups[0]["fused"] for c in (dsat, lgcn))


def _largest_update(tmp_path: Path, clip: float | None) -> float:
    """One SGD step (lr 1, no momentum) on two faces; the largest change of any weight."""
    torch.manual_seed(0)
    model = dots_hih()
    overrides = {
        "train.optimizer": "sgd",
        "train.lr": 1.0,
        "train.momentum": 0.0,
        "train.batch_size": 2,
        "train.num_workers": 0,
        "train.grad_clip_value": clip,
    }
    config = load_config("configs/hih_synthetic_tiny.yaml", overrides)
    records = [dot_face_record(tmp_path, i) for i in range(2)]
    trainer = Trainer(config, model, records, [], tmp_path, tmp_path / "out", ONE_CPU)
    before = [p.detach().clone() for p in model.parameters()]
    trainer._step(next(iter(trainer.loader)), 0)
    return max(float((p.detach() - b).abs().max()) for p, b in zip(model.parameters(), before, strict=True))


def test_gradient_clipping_bounds_every_element_of_the_step(tmp_path: Path) -> None:
    assert _largest_update(tmp_path, None) > 5e-3
    assert _largest_update(tmp_path, 1e-4) == pytest.approx(1e-4, rel=1e-3)


VALIDATIONS = [0.30, 0.20, 0.40]
"""Validation NMEs the three epochs report: the middle one best. Scripted, because which epoch a real trajectory of
three epochs on four faces validates best depends on the CPU's float32 arithmetic (AVX2 and AVX512 disagreed)."""


@pytest.mark.parametrize("keep", ["last", "best_val"])
def test_model_pt_holds_the_last_or_the_best_validation_epoch(
    tmp_path: Path, keep: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    torch.manual_seed(0)
    overrides = {
        "train.epochs": 3,
        "train.batch_size": 2,
        "train.num_workers": 0,
        "train.keep": keep,
        "train.val_every": 1,
        "eval.batch_size": 2,
    }
    config = load_config("configs/hih_synthetic_tiny.yaml", overrides)
    records = [dot_face_record(tmp_path, i) for i in range(6)]
    trainer = Trainer(config, dots_hih(), records[:4], records[4:], tmp_path, tmp_path / "out", ONE_CPU)
    validations = iter(VALIDATIONS)
    monkeypatch.setattr(trainer, "validate", lambda: next(validations))
    history = trainer.fit()
    assert history.val_nme == VALIDATIONS
    final = load_state(tmp_path / "out" / CHECKPOINT_FILE)
    expected = 1 if keep == "best_val" else 2
    assert final["epoch"] == expected
    assert final["history"]["val_nme"] == VALIDATIONS
    assert kept_val_nme(final) == VALIDATIONS[expected]  # what the training step reports
    last = load_state(tmp_path / "out" / LAST)["model"]
    same_as_last = all(torch.equal(value, last[name]) for name, value in final["model"].items())
    assert same_as_last == (keep == "last")


def test_validating_every_second_epoch_skips_the_others_and_trains_the_same_weights(tmp_path: Path) -> None:
    """With val_every 2 over 5 epochs, epochs 2, 4 and 5 (the last) validate, with the NMEs of validating every
    epoch; the others record nan in the history and no val_nme in the run; the weights are those of every epoch."""
    overrides = {"train.epochs": 5, "train.batch_size": 2, "train.num_workers": 0, "eval.batch_size": 2}
    records = [dot_face_record(tmp_path, i) for i in range(6)]
    client = MlflowClient()
    experiment = ensure_experiment("landmarks/val-every")  # artifacts in the test's folder, not ./mlruns
    runs, histories = {}, {}
    for every in (1, 2):
        torch.manual_seed(0)
        config = load_config("configs/hih_synthetic_tiny.yaml", {**overrides, "train.val_every": every})
        runs[every] = client.create_run(experiment).info.run_id
        out = tmp_path / f"every{every}"
        histories[every] = Trainer(
            config, dots_hih(), records[:4], records[4:], tmp_path, out, ONE_CPU, runs[every]
        ).fit()
    every_epoch, every_second = histories[1].val_nme, histories[2].val_nme
    assert [i for i, v in enumerate(every_second) if np.isfinite(v)] == [1, 3, 4]
    assert [every_second[i] for i in (1, 3, 4)] == [every_epoch[i] for i in (1, 3, 4)]
    assert histories[2].train_loss == histories[1].train_loss
    assert sorted(m.step for m in client.get_metric_history(runs[2], "val_nme")) == [2, 4, 5]
    assert sorted(m.step for m in client.get_metric_history(runs[2], "train_loss")) == [1, 2, 3, 4, 5]
    weights = [load_state(tmp_path / f"every{every}" / CHECKPOINT_FILE)["model"] for every in (1, 2)]
    assert all(torch.equal(value, weights[1][name]) for name, value in weights[0].items())


def test_a_fresh_run_ignores_a_best_epoch_left_by_an_earlier_run(tmp_path: Path) -> None:
    overrides = {"train.epochs": 1, "train.batch_size": 2, "train.num_workers": 0, "train.keep": "best_val"}
    config = load_config("configs/hih_synthetic_tiny.yaml", overrides)
    records = [dot_face_record(tmp_path, i) for i in range(4)]
    (tmp_path / "out").mkdir()
    save_checkpoint(tmp_path / "out" / BEST, {"epoch": 7, "model": {}})
    Trainer(config, dots_hih(), records, [], tmp_path, tmp_path / "out", ONE_CPU).fit()
    assert load_state(tmp_path / "out" / CHECKPOINT_FILE)["epoch"] == 0


def test_mixed_precision_is_native_bf16_else_fp16_on_cuda_bf16_on_cpus_with_native_bf16_else_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert mixed_precision_dtype(False, torch.device("cuda")) is None
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: not including_emulation)
    assert mixed_precision_dtype(True, torch.device("cuda")) is torch.bfloat16
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation: False)
    assert mixed_precision_dtype(True, torch.device("cuda")) is torch.float16
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)
    assert mixed_precision_dtype(True, torch.device("cpu")) is torch.bfloat16
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)
    assert mixed_precision_dtype(True, torch.device("cpu")) is None


def test_a_bf16_step_keeps_float32_weights_and_moves_them(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True)  # emulated where not native
    torch.manual_seed(0)
    model = dots_hih()
    overrides = {"train.amp": True, "train.batch_size": 2, "train.num_workers": 0}
    trainer = Trainer(
        load_config("configs/hih_synthetic_tiny.yaml", overrides),
        model,
        [dot_face_record(tmp_path, i) for i in range(2)],
        [],
        tmp_path,
        tmp_path / "out",
        ONE_CPU,
    )
    assert trainer.amp_dtype is torch.bfloat16
    before = [p.detach().clone() for p in model.parameters()]
    loss = trainer._step(next(iter(trainer.loader)), 0)
    assert np.isfinite(loss)
    assert all(p.dtype == torch.float32 for p in model.parameters())
    assert any(not torch.equal(p.detach(), b) for p, b in zip(model.parameters(), before, strict=True))
