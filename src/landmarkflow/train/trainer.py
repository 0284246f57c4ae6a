"""The training loop. The same code runs as a plain process and under torchrun (DDP).

Rank 0 alone logs to MLflow, writes checkpoints and computes the per-epoch validation NME; every rank
trains on its shard of the epoch (data.dataset.shard_sampler) with its share of the global batch
(`train.batch_size` / world size), so that N processes take the optimiser steps of one process on the global
batch. DDP averages the gradients over ranks, which is that step for a loss averaged over the batch; a model whose
loss sums over the batch (LGCN) has its loss multiplied by the world size, both for the gradient and the logged
loss. A checkpoint is written after every epoch (and uploaded to
the MLflow run, so that it outlives the pod: train/durable.py), and a restarted run continues from the last one
when the config hash matches.
"""

from __future__ import annotations

import logging
import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from mlflow.tracking import MlflowClient
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from landmarkflow.config import ExperimentConfig, TrainConfig
from landmarkflow.data.dataset import FaceDataset, shard_sampler
from landmarkflow.data.manifest import FaceRecord
from landmarkflow.evaluation.metrics import mean_nme
from landmarkflow.evaluation.predictions import predict_records, torch_predictor
from landmarkflow.layouts import get_layout
from landmarkflow.models.base import LandmarkModel
from landmarkflow.runtime import CHECKPOINT_FILE
from landmarkflow.tracking import log_metrics
from landmarkflow.train.calibrate import calibrate_shapes
from landmarkflow.train.checkpoint import BEST, CALIBRATED_VAL_NME, LAST, load_state, save_checkpoint
from landmarkflow.train.distributed import DistEnv, barrier, mean_across_ranks, rank_batch_size
from landmarkflow.train.durable import upload_checkpoint
from landmarkflow.train.rng import capture_rng, restore_rng
from landmarkflow.upright import UprightPass

log = logging.getLogger(__name__)


@dataclass
class TrainHistory:
    """Per-epoch numbers, kept in the checkpoint so a resumed run logs a continuous curve."""

    train_loss: list[float] = field(default_factory=list)
    val_nme: list[float] = field(default_factory=list)
    images_per_s: list[float] = field(default_factory=list)


def seed_everything(seed: int) -> None:
    """Same seed, same initial weights and data order."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def build_optimizer(model: torch.nn.Module, config: ExperimentConfig) -> torch.optim.Optimizer:
    """Adam, AdamW or SGD with momentum, from the config's train section.

    Fused (one kernel over all parameters) wherever the weights are float tensors on CPU or CUDA: PyTorch's
    default per-tensor loop on CPU costs a few small ops per parameter tensor, and the fused step measured
    1.14-1.31x faster training for the small hourglass models (DSAT, HIH, RDFN: 300-600 parameter tensors each).
    """
    train = config.train
    params = list(model.parameters())
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    if train.optimizer == "adam":
        return torch.optim.Adam(params, lr=train.lr, betas=train.betas, weight_decay=train.weight_decay, fused=fused)
    if train.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=train.lr, betas=train.betas, weight_decay=train.weight_decay, fused=fused)
    return torch.optim.SGD(
        params,
        lr=train.lr,
        momentum=train.momentum,
        weight_decay=train.weight_decay,
        nesterov=train.nesterov,
        fused=fused,
    )


def lr_factor(progress: float, train: TrainConfig) -> float:
    """The LR multiplier `progress` epochs (fractional) into training: linear warm-up, then step or cosine decay."""
    ramp = min(1.0, progress / train.warmup_epochs) if train.warmup_epochs else 1.0
    if train.schedule == "cosine":
        return ramp * 0.5 * (1.0 + math.cos(math.pi * min(progress / max(train.epochs, 1), 1.0)))
    return ramp * train.gamma ** sum(progress >= m for m in train.milestones)


def build_scheduler(
    optimizer: torch.optim.Optimizer, config: ExperimentConfig, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """Stepped after every optimiser step, so that warm-up and cosine are smooth even over a few epochs."""
    steps = max(steps_per_epoch, 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_factor(step / steps, config.train))


def cpu_computes_bfloat16() -> bool:
    """Whether this CPU has bfloat16 arithmetic (AVX512-BF16 or AMX); elsewhere PyTorch emulates it, slower than
    float32, so `train.amp` trains in float32 there."""
    return torch.cpu._is_avx512_bf16_supported()


def mixed_precision_dtype(amp: bool, device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training, None for float32: on CUDA bfloat16 where the GPU computes it natively
    (Ampere and later: float32's range, so no loss scaling), else float16 with loss scaling; bfloat16 on a CPU
    that computes it natively (AVX512-BF16 or AMX; elsewhere bf16 is emulated and slower than float32)."""
    if not amp:
        return None
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported(including_emulation=False) else torch.float16
    if device.type == "cpu" and cpu_computes_bfloat16():
        return torch.bfloat16
    log.info("train.amp: this CPU has no native bfloat16; training in float32")
    return None


def autocast_for(amp_dtype: torch.dtype | None, device: torch.device) -> torch.autocast:
    """The autocast context of a training step with `mixed_precision_dtype`'s choice (off for None)."""
    return torch.autocast(device.type, dtype=amp_dtype or torch.float32, enabled=amp_dtype is not None)


class Trainer:
    """Fits one model on one dataset; `fit()` returns the history and leaves `model.pt` in `out_dir`."""

    def __init__(
        self,
        config: ExperimentConfig,
        model: LandmarkModel,
        train_records: list[FaceRecord],
        val_records: list[FaceRecord],
        root: Path,
        out_dir: Path,
        env: DistEnv,
        run_id: str | None = None,
    ) -> None:
        self.config = config
        self.model = model.to(env.device, memory_format=model.memory_format())
        self.train_records = train_records
        self.val_records = val_records
        self.root = Path(root)
        self.out_dir = Path(out_dir)
        self.env = env
        self.run_id = run_id if env.is_main else None
        self.layout = get_layout(config.data.layout)
        self.train_set = FaceDataset(
            train_records,
            root,
            model.codec,
            config.crop_spec,
            config.augment,
            config.train.seed,
            config.train.cache_images,
        )
        largest_shrink = self.train_set.largest_shrink()
        if largest_shrink > config.crop_spec.max_shrink:
            log.warning(
                "data.max_crop_shrink %.2f is below the most this training set's crops shrink (%.2f): those crops are "
                "area-averaged to it first, as the deployed model's will be; the default configs set it to that "
                "largest shrink, which keeps every training crop a plain bilinear one",
                config.crop_spec.max_shrink,
                largest_shrink,
            )
        self.sampler = shard_sampler(self.train_set, env.world_size, env.rank, config.train.seed)
        batch = rank_batch_size(config.train.batch_size, env)
        self.loader = DataLoader(
            self.train_set,
            batch_size=batch,
            sampler=self.sampler,
            num_workers=config.train.num_workers,
            drop_last=len(self.train_set) // env.world_size > batch,
            persistent_workers=config.train.num_workers > 0,
            pin_memory=env.device.type == "cuda",  # page-locked batches: the non_blocking copies below overlap
        )
        self.loss_weight = env.world_size if model.loss_sums_over_batch else 1
        self.net = (
            DistributedDataParallel(self.model, device_ids=[env.local_rank] if env.device.type == "cuda" else None)
            if env.distributed
            else self.model
        )
        self.optimizer = build_optimizer(self.model, config)
        self.scheduler = build_scheduler(self.optimizer, config, self.steps_per_epoch)
        self.amp_dtype = mixed_precision_dtype(config.train.amp, env.device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp_dtype == torch.float16)
        self.history = TrainHistory()
        self.start_epoch = 0
        if env.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fixed crop and batch sizes: pick the fastest kernels once

    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps in one epoch on this rank (capped by `max_steps_per_epoch`)."""
        cap = self.config.train.max_steps_per_epoch
        return min(len(self.loader), cap) if cap else len(self.loader)

    def resume(self) -> bool:
        """Continue from `last.pt` if it belongs to this exact config; True when it did.

        Everything that decides the next epochs comes back: weights and buffers, optimiser, LR schedule, loss
        scaler, history and the global random generators. The sampler and the augmentation draw from the seed
        and the epoch, so they need nothing. With one process on a deterministic device the run then ends with
        exactly the weights of an uninterrupted one; under DDP every rank takes rank 0's generators.
        """
        path = self.out_dir / LAST
        if not path.is_file():
            return False
        state = load_state(path)
        if state.get("config_hash") != self.config.config_hash():
            log.warning("%s belongs to another config; starting afresh", path)
            return False
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["scaler"] and self.scaler.is_enabled():
            self.scaler.load_state_dict(state["scaler"])
        self.history = TrainHistory(**state["history"])
        self.start_epoch = state["epoch"] + 1
        if self.loader.persistent_workers:
            # Persistent workers draw their seed from torch's generator once, when they start: an uninterrupted
            # run did that before its first epoch, so they start here, before the generators are put back.
            iter(self.loader)
        restore_rng(state["rng"])
        if self.run_id and not self._logged(self.start_epoch):
            self._log_epoch(self.start_epoch - 1)  # the kill came after the checkpoint's upload, before its metrics
        log.info("resumed from %s at epoch %d", path, self.start_epoch + 1)
        return True

    def _logged(self, step: int) -> bool:
        """Whether the MLflow run has the per-epoch metrics of `step`."""
        return any(metric.step == step for metric in MlflowClient().get_metric_history(self.run_id, "train_loss"))

    def fit(self) -> TrainHistory:
        """Train for the configured epochs (from where a resume left off)."""
        epochs = self.config.train.epochs
        if self.start_epoch == 0 and self.env.is_main:
            (self.out_dir / BEST).unlink(missing_ok=True)  # a best epoch of an earlier run is not this run's
        for epoch in range(self.start_epoch, epochs):
            started = time.perf_counter()
            loss, seen = self._train_epoch(epoch)
            loss = mean_across_ranks(loss, self.env)
            if self.env.is_main:
                elapsed = time.perf_counter() - started
                rate = seen * self.env.world_size / max(elapsed, 1e-9)
                val_nme = self.validate() if self._validates(epoch) else float("nan")
                self._record_epoch(epoch, loss, val_nme, rate, elapsed)
            barrier(self.env)
        if self.env.is_main:
            self._save_final(epochs - 1)
            self._calibrate_final()
        return self.history

    def _save_final(self, last_epoch: int) -> None:
        """model.pt: the last epoch, or with `keep: best_val` the best one's weights with the whole history."""
        best = self.out_dir / BEST
        if self.config.train.keep != "best_val" or not best.is_file():
            self._save(self.out_dir / CHECKPOINT_FILE, last_epoch)
            return
        state = load_state(best)
        state["history"] = vars(self.history)
        save_checkpoint(self.out_dir / CHECKPOINT_FILE, state)
        log.info(
            "kept epoch %d of %d: best validation NME %.2f%%",
            state["epoch"] + 1,
            last_epoch + 1,
            100 * self.history.val_nme[state["epoch"]],
        )

    def _calibrate_final(self) -> None:
        """Fit model.pt's shape calibration, where its model has one, on its answers for the train faces; log the
        train and validation NME before and after (the history keeps the uncorrected model's, model.pt's
        `calibrated_val_nme` the corrected one's)."""
        calibration = self.model.shape_calibration
        if calibration is None:
            return
        if len(self.train_records) < calibration.min_faces:
            log.warning(
                "shape calibration skipped: %d modes need at least %d train faces, this run has %d",
                calibration.gain.numel(),
                calibration.min_faces,
                len(self.train_records),
            )
            return
        path = self.out_dir / CHECKPOINT_FILE
        state = load_state(path)
        self.model.load_state_dict(state["model"])
        # Validation reads the graph's points: where the calibration corrects a post-step's instead (LGCN's shape fit),
        # they do not move, and the two passes would only cost time.
        before = self.validate() if self.model.calibrates_graph else math.nan
        # A post-step's model (LGCN's shape fit) as export builds it: from the whole train split, validation's included.
        whole_split = [*self.train_records, *self.val_records]
        fit = calibrate_shapes(self.model, self.train_records, self.root, self.config, self.env.device, whole_split)
        after = self.validate() if self.model.calibrates_graph else math.nan
        state["model"] = self.model.state_dict()
        if math.isfinite(after):
            state[CALIBRATED_VAL_NME] = after
        save_checkpoint(path, state)
        validation = f", validation {100 * before:.2f}% -> {100 * after:.2f}%" if math.isfinite(after) else ""
        log.info(
            "shape calibration of %d modes on %d train faces: train NME %.2f%% -> %.2f%%%s",
            calibration.gain.numel(),
            fit.faces,
            100 * fit.nme_before,
            100 * fit.nme_after,
            validation,
        )
        if self.run_id:
            metrics = {"calibration_train_nme_before": fit.nme_before, "calibration_train_nme": fit.nme_after}
            if math.isfinite(after):
                metrics |= {"calibration_val_nme_before": before, "calibration_val_nme": after}
            log_metrics(MlflowClient(), self.run_id, metrics)

    def _validates(self, epoch: int) -> bool:
        """Every `train.val_every`-th epoch and the last, whose NME the run reports."""
        return (epoch + 1) % self.config.train.val_every == 0 or epoch + 1 == self.config.train.epochs

    def _is_best(self, val_nme: float) -> bool:
        earlier = [v for v in self.history.val_nme[:-1] if math.isfinite(v)]
        return math.isfinite(val_nme) and (not earlier or val_nme < min(earlier))

    def _train_epoch(self, epoch: int) -> tuple[float, int]:
        self.net.train()
        self.sampler.set_epoch(epoch)
        steps = self.steps_per_epoch
        total, seen = 0.0, 0
        with self._progress(epoch) as progress:
            task = progress.add_task("train", total=steps)
            for step, batch in enumerate(self.loader):
                if step >= steps:
                    break
                loss = self._step(batch, epoch)
                count = batch["image"].shape[0]
                total += loss * count
                seen += count
                progress.update(task, advance=1, description=f"loss {total / seen:.4f}")
        return total / max(seen, 1), seen

    def _step(self, batch: dict[str, torch.Tensor], epoch: int) -> float:
        device = self.env.device
        images = batch["image"].to(device, non_blocking=True)
        if device.type == "cuda":  # NHWC like the weights, so cuDNN's tensor-core kernels need no transpose
            images = images.contiguous(memory_format=self.model.memory_format())
        targets = {k: v.to(device, non_blocking=True) for k, v in batch.items() if k not in ("image", "matrix")}
        with autocast_for(self.amp_dtype, device):
            outputs = self.net(images, **self.model.training_inputs(targets, epoch))
            loss, _ = self.model.loss(outputs, targets)
        if self.loss_weight != 1:
            loss = loss * self.loss_weight
        self.optimizer.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        if self.config.train.grad_clip_value is not None:
            self.scaler.unscale_(self.optimizer)
            torch.nn.utils.clip_grad_value_(self.model.parameters(), self.config.train.grad_clip_value)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        return float(loss.detach())

    def validate(self) -> float:
        """Mean NME on the held-out part of train, in the image frame (nan when there is none)."""
        if not self.val_records:
            return float("nan")
        predict = torch_predictor(self.model, self.env.device)
        preds = predict_records(
            predict,
            self.val_records,
            self.root,
            self.config.crop_spec,
            self.config.eval.batch_size,
            upright=UprightPass.maybe(self.config.data.layout, self.config.data.upright_above_deg),
        )
        return mean_nme(preds, self.val_records, self.layout, self.config.data.normaliser)

    def _record_epoch(self, epoch: int, loss: float, val_nme: float, rate: float, elapsed: float) -> None:
        self.history.train_loss.append(loss)
        self.history.val_nme.append(val_nme)
        self.history.images_per_s.append(rate)
        lr = self.optimizer.param_groups[0]["lr"]
        log.info(
            "epoch %d/%d  train_loss %.5f  val_nme %s  lr %.2e  %.1fs  %.0f img/s",
            epoch + 1,
            self.config.train.epochs,
            loss,
            f"{100 * val_nme:.2f}%" if math.isfinite(val_nme) else "-",
            lr,
            elapsed,
            rate,
        )
        if self.config.train.keep == "best_val" and self._is_best(val_nme):
            self._checkpoint(BEST, epoch)  # before last.pt: no last.pt is ever newer than the best.pt it goes with
        self._checkpoint(LAST, epoch)
        self._log_epoch(epoch)

    def _checkpoint(self, name: str, epoch: int) -> None:
        """Write checkpoint `name`; in an MLflow run, upload it too, so that it outlives this pod."""
        path = self._save(self.out_dir / name, epoch)
        if self.run_id:
            upload_checkpoint(MlflowClient(), self.run_id, path)

    def _log_epoch(self, epoch: int) -> None:
        """Epoch `epoch`'s numbers from the history (and the current LR) into the MLflow run, at step epoch + 1."""
        if not self.run_id:
            return
        metrics = {
            "train_loss": self.history.train_loss[epoch],
            "train_images_per_s": self.history.images_per_s[epoch],
            "lr": self.optimizer.param_groups[0]["lr"],
        }
        if math.isfinite(self.history.val_nme[epoch]):
            metrics["val_nme"] = self.history.val_nme[epoch]
        log_metrics(MlflowClient(), self.run_id, metrics, step=epoch + 1)

    def _save(self, path: Path, epoch: int) -> Path:
        return save_checkpoint(
            path,
            {
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "epoch": epoch,
                "config": self.config.to_dict(),
                "config_hash": self.config.config_hash(),
                "history": vars(self.history),
                "scaler": self.scaler.state_dict(),
                "rng": capture_rng(),
            },
        )

    def _progress(self, epoch: int) -> Progress:
        return Progress(
            TextColumn(f"epoch {epoch + 1}/{self.config.train.epochs}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.description}"),
            TimeRemainingColumn(),
            transient=True,
            disable=not self.env.is_main,
        )
