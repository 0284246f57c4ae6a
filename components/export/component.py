"""Export: ONNX of predict (coordinates out) with onnxruntime parity; TensorRT on a GPU."""

from kfp import dsl
from kfp.dsl import Artifact, Dataset, Input, Model, Output

from components.image import IMAGE


@dsl.component(base_image=IMAGE, install_kfp_package=False)
def export(
    manifest: Input[Dataset],
    checkpoint: Input[Model],
    train_result: Input[Artifact],
    onnx_model: Output[Model],
    result: Output[Artifact],
):
    """Export the model to ONNX and measure its NME against PyTorch on the test split.

    Args:
        manifest: The validated manifest.
        checkpoint: The trained model folder.
        train_result: Train's result (MLflow run; data hash and DVC remote: the test split is fetched from there).
        onnx_model: Folder with model.onnx, and on a GPU the TensorRT engines that matched onnxruntime.
        result: The step's result (JSON).
    """
    from pathlib import Path

    from landmarkflow import steps
    from landmarkflow.runtime import CHECKPOINT_FILE
    from landmarkflow.services import start_step

    scratch = start_step()
    trained = steps.TrainResult.load(train_result.path)
    trained.manifest, trained.checkpoint = manifest.path, str(Path(checkpoint.path) / CHECKPOINT_FILE)
    splits = [trained.experiment_config().data.test_split]
    exported = steps.export(steps.materialise_data(trained, splits, scratch / "data"), onnx_model.path)
    exported.save(result.path)
    onnx_model.metadata.update({"parity_delta_nme": exported.parity_delta, "tensorrt": exported.tensorrt})
