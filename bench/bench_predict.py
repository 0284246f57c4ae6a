"""Deployed-model latency: onnxruntime per batch of crops, face detection on a real photo, and one face upright and
rolled by 30 degrees (where the model's upright pass reads it twice).

Prints one JSON object. Usage:
    .venv/bin/python bench/bench_predict.py [MODEL.onnx | bundle folder | models:/name@alias] [--runs 30]
Without a model it times a tiny constant graph (Shape/Concat/Expand), which measures the fixed
cost of an ORT call plus input transfer, not a network; the JSON says which model was used.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import tempfile
from pathlib import Path

import cv2
import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper
from skimage import data

from landmarkflow.detection import DETECTOR, detect_faces
from landmarkflow.export.latency import median_ms
from landmarkflow.inference import Predictor
from landmarkflow.runtime import DeployInfo

ROLL_DEG = 30.0
"""How far `predict_image_ms_rolled_30` rolls the photo: past the upright pass's threshold, so it times two passes."""
CONSTANT_INFO = DeployInfo(model="constant", layout="68", num_points=68, input_size=256, box_scale=1.25)


def constant_onnx(path: Path, info: DeployInfo = CONSTANT_INFO) -> Path:
    """A landmarkflow-valid .onnx answering the crop centre for every point, whatever the pixels."""
    size, centre = info.input_size, (info.input_size - 1) / 2
    graph = helper.make_graph(
        [
            helper.make_node("Shape", ["images"], ["shape"], start=0, end=1),
            helper.make_node("Concat", ["shape", "point_dims"], ["out_shape"], axis=0),
            helper.make_node("Expand", ["pattern", "out_shape"], ["landmarks"]),
        ],
        "constant_landmarks",
        [helper.make_tensor_value_info("images", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["N", info.num_points, 2])],
        [
            numpy_helper.from_array(np.array([info.num_points, 2], dtype=np.int64), "point_dims"),
            numpy_helper.from_array(np.full((1, info.num_points, 2), centre, dtype=np.float32), "pattern"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)
    helper.set_model_props(model, info.to_props())
    onnx.save(model, path)
    return path


def bench(model_ref: str, runs: int, warmup: int, model_label: str) -> dict:
    predictor = Predictor.load(model_ref)
    size = predictor.info.input_size
    rng = np.random.default_rng(0)
    result: dict = {
        "model": model_label,
        "model_name": predictor.info.model,
        "input_size": size,
        "num_points": predictor.info.num_points,
        "providers": predictor.session.get_providers(),
        "backend": predictor.backend,
        "onnxruntime": ort.__version__,
        "cpu": platform.processor() or platform.machine(),
        "runs": runs,
    }
    for batch in (1, 16):
        crops = rng.random((batch, 3, size, size), dtype=np.float32)
        result[f"ort_ms_batch{batch}"] = median_ms(lambda c=crops: predictor.predict_crops(c), runs, warmup)
    photo = data.astronaut()
    faces = detect_faces(photo)
    result["detector"] = DETECTOR
    result["detect_faces_found"] = len(faces)
    for name in dict.fromkeys((DETECTOR, "lbp")):  # the default, and the cascade it replaces where YuNet installs
        result[f"detect_ms_astronaut_512_{name}"] = median_ms(
            lambda n=name: detect_faces(photo, detector=n), runs, warmup
        )
    box = faces[0].bbox if faces else np.array([175.0, 70.0, 268.0, 163.0])
    result["predict_image_ms_given_box"] = median_ms(lambda: predictor.predict_image(photo, [box]), runs, warmup)
    rolled = rolled_about(photo, box, ROLL_DEG)
    first = predictor.crop_faces(rolled, [box])
    upright = predictor.upright_crops(first, first.image_points(predictor.predict_crops(first.crops)))
    result["upright_above_deg"] = predictor.info.upright_above_deg if predictor.upright is not None else None
    limit = predictor.info.max_crop_shrink
    result["max_crop_shrink"] = limit if math.isfinite(limit) else None
    result[f"rolled_{ROLL_DEG:g}_read_again"] = upright is not None
    result[f"predict_image_ms_rolled_{ROLL_DEG:g}"] = median_ms(
        lambda: predictor.predict_image(rolled, [box]), runs, warmup
    )
    return result


def rolled_about(photo: np.ndarray, box: np.ndarray, degrees: float) -> np.ndarray:
    """The photo rolled by `degrees` about the box centre: the same box then holds a tilted head."""
    centre = (float((box[0] + box[2]) / 2), float((box[1] + box[3]) / 2))
    turn = cv2.getRotationMatrix2D(centre, degrees, 1.0)
    return cv2.warpAffine(photo, turn, (photo.shape[1], photo.shape[0]), flags=cv2.INTER_LINEAR)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", help=".onnx file, bundle folder or models:/ URI (default: constant graph)")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    if args.model:
        print(json.dumps(bench(args.model, args.runs, args.warmup, args.model)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = constant_onnx(Path(tmp) / "constant.onnx")
        label = "built-in constant graph (no network: fixed ORT call cost)"
        print(json.dumps(bench(str(path), args.runs, args.warmup, label)))


if __name__ == "__main__":
    main()
