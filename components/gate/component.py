"""Gate: NME threshold, not worse than the champion, ONNX parity. A failure is an outcome, not an error."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def gate(
    manifest: Input[Dataset],
    train_result: Input[Artifact],
    evaluate_result: Input[Artifact],
    export_result: Input[Artifact],
    result: Output[Artifact],
) -> bool:
    """Decide whether the candidate may be promoted.

    Args:
        manifest: The validated manifest (to re-measure a champion trained on other data).
        train_result: Train's result (data hash and DVC remote: the test split is fetched only to re-measure).
        evaluate_result: Evaluate's result (test NME).
        export_result: Export's result (ONNX parity).
        result: The decision with every check and its reason (JSON).

    Returns:
        True when every gate passed.
    """
    from landmarkflow import steps
    from landmarkflow.services import start_step

    scratch = start_step()
    trained = steps.TrainResult.load(train_result.path)
    trained.manifest = manifest.path
    splits = [trained.experiment_config().data.test_split]
    gated = steps.gate(
        trained,
        steps.EvalResult.load(evaluate_result.path),
        steps.ExportResult.load(export_result.path),
        test_data=lambda: steps.materialise_data(trained, splits, scratch / "data"),
    )
    gated.save(result.path)
    return gated.passed
