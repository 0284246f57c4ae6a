"""Freshness: which models have new data to learn from; none -> the run ends here, as a logged outcome."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def freshness(ingest_result: Input[Artifact], configs: list, force: bool, result: Output[Artifact]) -> bool:
    """Compare the ingested data's hash with what each model's champion and newest version were trained on.

    Args:
        ingest_result: Ingest's result (the data hash).
        configs: Experiment config files, one model each.
        force: Retrain every model even on data it was trained on.
        result: The models to retrain and why each is or is not (JSON).

    Returns:
        True when any model is to be retrained.
    """
    from pathlib import Path

    from landmarkflow import steps
    from landmarkflow.services import start_step

    image_dir = Path.cwd()  # a relative config path is inside the image's working directory, which the step leaves
    start_step()
    configs = [str(image_dir / config) for config in configs]  # as validate and train receive them
    checked = steps.check_freshness(steps.IngestResult.load(ingest_result.path), configs, force=force)
    print(checked.message)
    checked.save(result.path)
    return bool(checked.retrain)
