"""Small stand-ins that tests in more than one folder build: a face record drawn as dots, a 96 px HIH to
encode its targets, an ONNX file shaped like an exported model, and a candidate for the register and promote steps
made of one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import onnx
import torch
from mlflow.tracking import MlflowClient
from onnx import TensorProto, helper

from landmarkflow import steps
from landmarkflow.config import GateConfig
from landmarkflow.data.formats.w300 import FOLDERS_BY_PATH, read_300w, write_300w
from landmarkflow.data.manifest import FaceRecord, write_manifest
from landmarkflow.geometry import landmark_box
from landmarkflow.models.base import LandmarkModel
from landmarkflow.models.zoo import build_model
from landmarkflow.runtime import DeployInfo
from landmarkflow.tracking import ensure_experiment, experiment_name
from landmarkflow.train.checkpoint import save_checkpoint
from landmarkflow.train.distributed import DistEnv

DOTS_HIH = {
    "name": "hih",
    "stacks": 1,
    "channels": 16,
    "hourglass_depth": 2,
    "input_size": 96,
    "heatmap_size": 24,
    "decimal_size": 6,
    "decimal_channels": 16,
}
"""A narrow HIH on the tiny config's 96 px crops and 24-cell maps: its codec encodes the dot faces' targets."""

TINY_ONNX_INFO = DeployInfo(
    model="hih", layout="68", num_points=68, input_size=64, box_scale=1.25, config_hash="0123abcd"
)


def dots_hih() -> LandmarkModel:
    """A fresh DOTS_HIH model."""
    return build_model(DOTS_HIH)


def dot_face_record(folder: Path, index: int = 0, split: str = "train") -> FaceRecord:
    """A 160 x 150 black image with its 68 random points drawn as white dots, written to `folder`."""
    rng = np.random.default_rng(index)
    pts = rng.uniform(40, 110, size=(68, 2))
    image = np.zeros((150, 160, 3), np.uint8)
    for x, y in pts.round().astype(int):
        cv2.circle(image, (int(x), int(y)), 1, (255, 255, 255), -1)
    path = f"img{index}.png"
    cv2.imwrite(str(folder / path), image)
    return FaceRecord(f"s{index}", "synthetic", split, path, 160, 150, landmark_box(pts), pts, np.ones(68), "68")


def write_random_300w(root: Path, faces: dict[str, int], seed: int = 0) -> list[FaceRecord]:
    """`faces[folder]` faces with random points and pixels in each of 300W's folders, written by the project's own
    writer and read back (every split of the folders)."""
    records, images = [], {}
    for n, (folder, count) in enumerate(faces.items()):
        spec = FOLDERS_BY_PATH[folder]
        for i in range(count):
            rng = np.random.default_rng(seed + 10 * n + i)
            points = rng.uniform(20, 100, size=(68, 2))
            record = FaceRecord(
                f"{folder}/face_{i}", "300w", spec.split, f"{folder}/face_{i}.png", 128, 120,
                landmark_box(points), points, np.ones(68), "68", list(spec.subsets),
            )  # fmt: skip
            records.append(record)
            images[record.sample_id] = rng.integers(0, 256, size=(120, 128, 3), dtype=np.uint8)
    write_300w(records, root, images=images)
    return read_300w(root)


def untrained(
    tmp_path: Path, name: str, model_params: dict, train_faces: int, data: dict | None = None
) -> steps.TrainResult:
    """A freshly initialised model saved as if trained on random 300W faces (2 test faces), with its MLflow run;
    `data`: more of its config's data section."""
    root = tmp_path / "300W"
    faces = write_random_300w(root, {"lfpw/trainset": train_faces, "lfpw/testset": 2})
    manifest = write_manifest(faces, tmp_path / "m.parquet")
    torch.manual_seed(0)
    config = {"name": name, "model": model_params, "data": {"dataset": "300w", "root": str(root), **(data or {})}}
    checkpoint = save_checkpoint(
        tmp_path / "model.pt", {"config": config, "model": build_model(model_params).state_dict()}
    )
    run_id = MlflowClient().create_run(ensure_experiment(experiment_name("300w"))).info.run_id
    return steps.TrainResult(
        run_id, str(checkpoint), "", "", model_params["name"], "300w", "", str(manifest), str(root), 0.0, 0.0, config
    )


def tiny_onnx_model(path: Path, info: DeployInfo = TINY_ONNX_INFO) -> Path:
    """An ONNX file shaped like an exported model: (N, 3, 64, 64) images in, (N, K, 2) points out (K of `info`),
    deploy metadata `info`."""
    points = info.num_points
    constants = [
        helper.make_tensor("starts", TensorProto.INT64, [1], [0]),
        helper.make_tensor("ends", TensorProto.INT64, [1], [points * 2]),
        helper.make_tensor("axes", TensorProto.INT64, [1], [1]),
        helper.make_tensor("points", TensorProto.INT64, [3], [0, points, 2]),
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
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["batch", points, 2])],
        initializer=constants,
    )
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)], ir_version=10)
    helper.set_model_props(proto, info.to_props())
    onnx.checker.check_model(proto, full_check=True)
    onnx.save_model(proto, str(path))
    return path


@dataclass
class Candidate:
    """What the register and promote steps get from the steps before them, for a tiny ONNX model."""

    trained: steps.TrainResult
    evaluated: steps.EvalResult
    exported: steps.ExportResult
    gated: steps.GateResult

    def register(self) -> steps.RegisterResult:
        return steps.register(self.trained, self.evaluated, self.exported, self.gated)


def candidate(folder: Path, model: str, nme: float, champion_seen: str | None, data_hash: str = "data-1") -> Candidate:
    """A new run of `model` on synthetic data in the current MLflow store, its ONNX a `tiny_onnx_model`, with test NME
    `nme`, that passed its gate (default config) against `champion_seen` (None: no champion then)."""
    run_id = MlflowClient().create_run(ensure_experiment("landmarks/synthetic")).info.run_id
    tolerance = GateConfig().champion_tolerance
    onnx = tiny_onnx_model(folder / f"{run_id}.onnx")
    name = f"{model}-synthetic"
    return Candidate(
        steps.TrainResult(
            run_id, "model.pt", "c.yaml", "cfg", model, "synthetic", data_hash, "m.parquet", ".", 1.0, nme, {}
        ),
        steps.EvalResult(run_id, {"nme": nme}, {"nme": 0.5}),
        steps.ExportResult(run_id, str(onnx), nme, nme, 0.0, 0.0, 4, "skipped"),
        steps.GateResult(run_id, name, True, "all gates passed", {"candidate_nme": nme}, champion_seen, tolerance),
    )


ONE_CPU = DistEnv(rank=0, local_rank=0, world_size=1, device=torch.device("cpu"))
"""A single-process, non-distributed trainer's place."""


def assert_same_weights(want: dict[str, torch.Tensor], got: dict[str, torch.Tensor]) -> None:
    """Two state dicts hold the same tensors, bit for bit; a failure names the parameters that differ."""
    assert want.keys() == got.keys()
    assert [name for name in want if not torch.equal(want[name], got[name])] == []
