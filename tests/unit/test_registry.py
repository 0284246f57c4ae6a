"""Logging the ONNX model: its signature comes from the file's deploy metadata, its requirements match MLflow's."""

from __future__ import annotations

from pathlib import Path

import mlflow
import onnx
from mlflow.models import Model
from mlflow.tracking import MlflowClient
from onnx import TensorProto, helper

from landmarkflow.export.metadata import DeployInfo
from landmarkflow.registry import log_onnx_model, onnx_pip_requirements

INFO = DeployInfo(model="hih", layout="68", num_points=68, input_size=64, box_scale=1.25, config_hash="0123abcd")


def tiny_landmark_model(path: Path) -> Path:
    """An ONNX file shaped like an exported model: (N, 3, 64, 64) images in, (N, 68, 2) points out, deploy metadata."""
    constants = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [68 * 2]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("points", TensorProto.INT64, [3], [0, 68, 2]),
    ]
    nodes = [
        helper.make_node("Flatten", ["images"], ["flat"]),
        helper.make_node("Slice", ["flat", "starts", "ends", "axes"], ["first"]),
        helper.make_node("Reshape", ["first", "points"], ["landmarks"]),
    ]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, 64, 64])],
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["batch", 68, 2])],
        initializer=constants,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    helper.set_model_props(proto, INFO.to_props())
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(path))
    return path


def test_logged_model_has_the_signature_of_its_deploy_metadata(tmp_path: Path) -> None:
    client = MlflowClient()
    run = client.create_run(client.create_experiment("tiny", (tmp_path / "artifacts").as_uri()))
    uri = log_onnx_model(run.info.run_id, tiny_landmark_model(tmp_path / "model.onnx"))
    signature = Model.load(uri).signature.to_dict()
    assert '"shape": [-1, 3, 64, 64]' in signature["inputs"]
    assert '"shape": [-1, 68, 2]' in signature["outputs"]


def test_stated_requirements_are_what_mlflow_would_infer(tmp_path: Path) -> None:
    model = onnx.load(str(tiny_landmark_model(tmp_path / "model.onnx")))
    mlflow.onnx.save_model(model, str(tmp_path / "inferred"))
    mlflow.onnx.save_model(model, str(tmp_path / "stated"), pip_requirements=onnx_pip_requirements())
    for name in ("requirements.txt", "conda.yaml", "python_env.yaml"):
        assert (tmp_path / "stated" / name).read_text() == (tmp_path / "inferred" / name).read_text(), name
