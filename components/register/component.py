"""Register: a new registry version with lineage tags; `challenger` when it passed the gates and no newer version
holds that alias."""

from kfp import dsl
from kfp.dsl import Artifact, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def register(
    onnx_model: Input[Model],
    train_result: Input[Artifact],
    evaluate_result: Input[Artifact],
    export_result: Input[Artifact],
    gate_result: Input[Artifact],
    result: Output[Artifact],
):
    """Log the ONNX model to the run and register it as `<model>-<dataset>`.

    Args:
        onnx_model: Export's folder with model.onnx.
        train_result: Train's result (run, lineage).
        evaluate_result: Evaluate's result (test NME).
        export_result: Export's result (parity).
        gate_result: The gate's decision.
        result: The registered name and version (JSON).
    """
    from pathlib import Path

    from landmarkflow import steps
    from landmarkflow.runtime import ONNX_FILE
    from landmarkflow.services import start_step

    start_step()
    exported = steps.ExportResult.load(export_result.path)
    exported.onnx_path = str(Path(onnx_model.path) / ONNX_FILE)
    registered = steps.register(
        steps.TrainResult.load(train_result.path),
        steps.EvalResult.load(evaluate_result.path),
        exported,
        steps.GateResult.load(gate_result.path),
    )
    registered.save(result.path)
