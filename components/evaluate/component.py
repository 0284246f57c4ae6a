"""Evaluate: the benchmark protocol on the test split, plots and baseline logged to the run."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Metrics, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def evaluate(
    manifest: Input[Dataset],
    checkpoint: Input[Model],
    train_result: Input[Artifact],
    metrics: Output[Metrics],
    result: Output[Artifact],
):
    """NME / FR / AUC on the test split, the mean-shape baseline, CED and overlay images.

    Args:
        manifest: The validated manifest.
        checkpoint: The trained model folder.
        train_result: Train's result (MLflow run; data hash and DVC remote: the test split is fetched from there).
        metrics: Test metrics (and the private split's, where there is one), shown by the KFP UI.
        result: The step's result (JSON).
    """
    from pathlib import Path

    from landmarkflow import steps
    from landmarkflow.data.manifest import PRIVATE_SPLIT
    from landmarkflow.runtime import CHECKPOINT_FILE
    from landmarkflow.services import start_step

    scratch = start_step()
    trained = steps.TrainResult.load(train_result.path)
    trained.manifest, trained.checkpoint = manifest.path, str(Path(checkpoint.path) / CHECKPOINT_FILE)
    splits = [trained.experiment_config().data.test_split, PRIVATE_SPLIT]
    evaluated = steps.evaluate(
        steps.materialise_data(trained, splits, scratch / "data"), Path(result.path).with_suffix(".d")
    )
    evaluated.save(result.path)
    for key, value in evaluated.metrics.items():
        metrics.log_metric(f"test_{key}", float(value))
    for key, value in evaluated.private_metrics.items():
        metrics.log_metric(f"{PRIVATE_SPLIT}_{key}", float(value))
    metrics.log_metric("baseline_nme", float(evaluated.baseline_metrics["nme"]))
