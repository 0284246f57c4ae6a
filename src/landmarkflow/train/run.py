"""One training job from a manifest: what a plain process and each torchrun rank both execute."""

from __future__ import annotations

from pathlib import Path

from landmarkflow.config import ExperimentConfig
from landmarkflow.data.dataset import split_train_val
from landmarkflow.data.manifest import read_manifest, to_records
from landmarkflow.logs import configure_logging
from landmarkflow.models.zoo import build_model
from landmarkflow.tracking import setup_tracking
from landmarkflow.train.distributed import init_distributed, shutdown
from landmarkflow.train.trainer import Trainer, TrainHistory, seed_everything


def fit_from_manifest(
    config: ExperimentConfig, manifest: Path, root: Path, out_dir: Path, run_id: str | None
) -> TrainHistory:
    """Build model and data, resume if a checkpoint of this config exists, train, leave model.pt."""
    env = init_distributed()
    configure_logging(quiet=not env.is_main)
    if run_id and env.is_main:
        setup_tracking()
    try:
        seed_everything(config.train.seed)
        records = to_records(read_manifest(manifest))
        train_records, val_records = split_train_val(records, config.data.val_fraction, config.train.seed)
        if not train_records:
            raise ValueError(f"{manifest}: no faces in the train split")
        trainer = Trainer(config, build_model(config.model), train_records, val_records, root, out_dir, env, run_id)
        trainer.resume()
        return trainer.fit()
    finally:
        shutdown(env)
