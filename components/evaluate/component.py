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
    real_faces: str = "",
    real_faces_dataset: str = "300w",
):
    """NME / FR / AUC on the test split, the mean-shape baseline, CED and overlay images; the same on real faces
    when given.

    Args:
        manifest: The validated manifest.
        checkpoint: The trained model folder.
        train_result: Train's result (MLflow run; data hash and DVC remote: the test split is fetched from there).
        metrics: Test metrics (and the private split's, where there is one), shown by the KFP UI.
        result: The step's result (JSON).
        real_faces: DVC hash (`<md5>.dir`) of a folder of real annotated faces in the data's DVC remote ("" = none):
            fetched and measured as real_nme, with its CED and overlay.
        real_faces_dataset: The format of the real faces: 300w, wflw, cofw, cofw68 or aflw.
    """
    from pathlib import Path

    from landmarkflow import steps
    from landmarkflow.data.manifest import PRIVATE_SPLIT
    from landmarkflow.evaluation.real_faces import PREFIX as REAL_PREFIX
    from landmarkflow.evaluation.real_faces import RealFaces
    from landmarkflow.runtime import CHECKPOINT_FILE
    from landmarkflow.services import start_step

    scratch = start_step()
    trained = steps.TrainResult.load(train_result.path)
    trained.manifest, trained.checkpoint = manifest.path, str(Path(checkpoint.path) / CHECKPOINT_FILE)
    splits = [trained.experiment_config().data.test_split, PRIVATE_SPLIT]
    real = None
    if real_faces:
        real = RealFaces(real_faces_dataset, steps.materialise_folder(real_faces, trained, scratch / "real_faces"))
    evaluated = steps.evaluate(
        steps.materialise_data(trained, splits, scratch / "data"), Path(result.path).with_suffix(".d"), real
    )
    evaluated.save(result.path)
    for key, value in evaluated.metrics.items():
        metrics.log_metric(f"test_{key}", float(value))
    for key, value in evaluated.private_metrics.items():
        metrics.log_metric(f"{PRIVATE_SPLIT}_{key}", float(value))
    for key, value in evaluated.real_metrics.items():
        metrics.log_metric(f"{REAL_PREFIX}_{key}", float(value))
    metrics.log_metric("baseline_nme", float(evaluated.baseline_metrics["nme"]))
