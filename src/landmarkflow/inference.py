"""Predictor: image -> face boxes (given, or detected) -> crops -> ONNX model -> landmarks in image pixels.

A deployed model is a lone .onnx file whose metadata (`runtime.DeployInfo`) says how to crop:
the square of side `box_scale * max(w, h)` around the box, resized to `input_size`, float32 RGB in [0, 1],
NCHW (`runtime.crop_to_input`); with several crop views (`crop_views`) one such crop per view, the square's side
x each. The model answers crop pixels; they are mapped back with each crop's inverse affine (and the views
averaged), so the output is 0-based pixel centres of the original image, the manifest's convention. The crops are
the ones evaluation uses (geometry.CropSpec, runtime.cut_views), so a face scored here matches its evaluated NME.

A model with a shape-fitting post-step (LGCN) comes with export's shape model (`shape_model.npz`) beside the .onnx
or anywhere in its folder, and its graph outputs the heatmaps too: the Predictor fits the shape to them, so a deployed
LGCN answers what evaluate measured as `nme_shape_fitted`.

When export left a TensorRT engine beside the .onnx (only engines that matched onnxruntime on the test split are
kept) and this machine has a GPU and tensorrt, the engine runs the crops instead of onnxruntime; otherwise, or if
the engine was built for another GPU or TensorRT version, onnxruntime does, and `Predictor.backend` says why.

This module needs neither torch nor mlflow (imported only for `models:/` URIs, and torch only where an engine lies
beside the model), so `landmarkflow predict` starts fast and runs where only onnxruntime is installed.
Boxes: a given box is read as it is; a 68-point model reads a detected (loose) face again from its own box, the
tight box of its first answer (`LANDMARK_BOX_LAYOUT`, detection.py).
"""

from __future__ import annotations

import tempfile
import zipfile
from collections.abc import Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnxruntime as ort

from landmarkflow.detection import detect_faces
from landmarkflow.geometry import CropSpec, box_overlaps_image, landmark_box
from landmarkflow.imageio import read_rgb
from landmarkflow.models.crop_predictor import CropPredictor
from landmarkflow.runtime import (
    ENGINE_PRECISIONS,
    SHAPE_MODEL_FILE,
    DeployInfo,
    cut_views,
    engine_file,
    open_session,
)
from landmarkflow.tracking import setup_tracking
from landmarkflow.upright import UprightCrops, UprightPass

if TYPE_CHECKING:
    from landmarkflow.models.lgcn_shape import ShapeModel

MLFLOW_SCHEMES = ("models:/", "runs:/", "mlflow-artifacts:/")
TORCH_CHECKPOINT_SUFFIXES = (".pt", ".pth")
"""Files named as PyTorch checkpoints (train's model.pt), which a user may give where the ONNX model is meant."""
LANDMARK_BOX_LAYOUT = "68"
"""The layout whose training faces are boxed by their own landmarks: 300W's ground-truth boxes and the synthetic 300W
files. WFLW, COFW and AFLW keep their datasets' boxes, and their synthetic files box 68 points besides the layout's,
so a box of their own points is narrower than any they learnt from."""
JSON_DECIMALS = 2


@dataclass(frozen=True)
class FaceResult:
    """One face: the (4,) box it was cropped from and its (K, 2) landmarks, both in image pixels."""

    bbox: np.ndarray
    landmarks: np.ndarray

    def to_json(self) -> dict[str, list]:
        """Plain lists rounded to JSON_DECIMALS (0.01 px is far below any model's error)."""
        return {
            "bbox": np.round(self.bbox, JSON_DECIMALS).tolist(),
            "landmarks": np.round(self.landmarks, JSON_DECIMALS).tolist(),
        }


@dataclass(frozen=True)
class FaceCrops:
    """One image, its N face boxes, the spec that cut their V views, and the views' (N * V, 2, 3) crop affines and
    (N * V, 3, S, S) model inputs; `loose` when the boxes are a detector's (or a caller says they are like one)
    rather than tight landmark boxes."""

    image: np.ndarray
    boxes: np.ndarray
    crop_spec: CropSpec
    matrices: np.ndarray
    crops: np.ndarray
    loose: bool = False

    def image_points(self, points: np.ndarray) -> np.ndarray:
        """The model's (N * V, K, 2) crop-pixel answers for these crops as (N, K, 2) image pixels, views averaged."""
        return self.crop_spec.to_image(points, self.matrices)

    def results(self, image_points: np.ndarray) -> list[FaceResult]:
        """One result per face from (N, K, 2) image-pixel landmarks."""
        return [FaceResult(box, points) for box, points in zip(self.boxes, image_points, strict=True)]


def _hint(source: str) -> str:
    """How to name a registered model, for a `models:/<name>` that MLflow 3 took for a logged model's id."""
    if not source.startswith("models:/") or any(mark in source[len("models:/") :] for mark in "@/"):
        return ""
    return "; a registered model is models:/<name>@<alias>, models:/<name>/<version> or models:/<name>/latest"


def _find_onnx(folder: Path, source: str) -> tuple[Path, Path | None]:
    """The one .onnx inside `folder`, and the shape model inside it if there is one."""
    found, shapes = sorted(folder.rglob("*.onnx")), sorted(folder.rglob(SHAPE_MODEL_FILE))
    if len(found) != 1:
        names = ", ".join(str(p.relative_to(folder)) for p in found) or "none"
        raise ValueError(f"{source}: expected exactly one .onnx file inside, found {len(found)} ({names})")
    if len(shapes) > 1:
        names = ", ".join(str(p.relative_to(folder)) for p in shapes)
        raise ValueError(f"{source}: expected at most one {SHAPE_MODEL_FILE} inside, found {len(shapes)} ({names})")
    return found[0], shapes[0] if shapes else None


def _shape_model(path: Path | None, info: DeployInfo, source: str) -> ShapeModel | None:
    """The shape model the graph's heatmaps are fitted to, checked against the graph's metadata."""
    if path is None:
        return None
    if not info.heatmap_name:
        raise ValueError(f"{source}: has {SHAPE_MODEL_FILE} but its graph outputs no heatmaps to fit it to")
    from landmarkflow.models.lgcn_shape import ShapeModel

    try:
        model = ShapeModel.load(path)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # cut short, or an array missing
        raise ValueError(f"{source}: cannot read {SHAPE_MODEL_FILE}: {type(exc).__name__}: {exc}") from exc
    if model.mean.shape != (info.num_points, 2) or model.size != info.input_size:
        raise ValueError(
            f"{source}: {SHAPE_MODEL_FILE} is for {len(model.mean)} points at {model.size} px, the graph for "
            f"{info.num_points} at {info.input_size}"
        )
    return model


def _engine_beside(onnx_path: Path) -> tuple[CropPredictor | None, str]:
    """Export's preferred engine beside the ONNX, run by TensorRT if it can here; else (None, why not), or (None, '')
    when there is none."""
    found = [path for p in ENGINE_PRECISIONS if (path := onnx_path.parent / engine_file(p)).is_file()]
    if not found:
        return None, ""
    from landmarkflow.export.tensorrt import tensorrt_available

    available, reason = tensorrt_available()
    if not available:
        return None, f"{found[0].name} not used: {reason}"
    from landmarkflow.export.engine_runner import EngineRunner

    try:
        return EngineRunner(found[0]).predict, f"TensorRT engine {found[0].name}"
    except ValueError as exc:
        return None, f"{found[0].name} not used: {exc}"


def parse_box(text: str) -> list[float]:
    """A face box written `x1,y1,x2,y2` (as `predict --bbox` and the server take it), finite and not empty."""
    try:
        box = [float(v) for v in text.split(",")]
    except ValueError:
        box = []
    if len(box) != 4 or not np.isfinite(box).all() or box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError("expected x1,y1,x2,y2 with x2 > x1 and y2 > y1")
    return box


MAX_BOX_OVER_IMAGE = 4.0
"""The longest a given face box's side may be, in the image's longer sides: the crop of a larger box (its side x
`box_scale`, 1.25 in the default models) shows the whole image in a fifth of its side or less, no face a model can
read, and a box of 1e300 px overflows the crop's arithmetic."""


def check_on_image(boxes: np.ndarray | Sequence[Sequence[float]], image_shape: tuple[int, ...]) -> np.ndarray:
    """`_as_boxes(boxes)`, each overlapping the image (it may reach past its edges) and at most `MAX_BOX_OVER_IMAGE`
    times its longer side; ValueError naming the first box that is not."""
    array = _as_boxes(boxes)
    height, width = image_shape[:2]
    for box in array:
        if not box_overlaps_image(box, width, height):
            raise ValueError(f"face box {box.tolist()} lies outside the {width} x {height} image")
        if max(box[2] - box[0], box[3] - box[1]) > MAX_BOX_OVER_IMAGE * max(width, height):
            raise ValueError(
                f"face box {box.tolist()} is more than {MAX_BOX_OVER_IMAGE:g} times the {width} x {height} image's "
                "longer side"
            )
    return array


def _as_boxes(boxes: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    """(N, 4) face boxes, each finite with x2 > x1 and y2 > y1; ValueError naming the first that is not."""
    array = np.asarray(boxes, dtype=np.float64)
    if array.size == 0:
        return np.zeros((0, 4))
    if array.ndim != 2 or array.shape[1] != 4:
        raise ValueError(f"face boxes: expected a list of x1, y1, x2, y2 boxes, got an array of shape {array.shape}")
    ordered = np.isfinite(array).all(axis=1) & (array[:, 2] > array[:, 0]) & (array[:, 3] > array[:, 1])
    bad = np.flatnonzero(~ordered)
    if bad.size:
        raise ValueError(f"face box {array[bad[0]].tolist()}: expected x1, y1, x2, y2 with x2 > x1 and y2 > y1")
    return array


Reading = Generator[np.ndarray, np.ndarray, list[FaceResult]]
"""`Predictor.reading`: yields crops (C, 3, S, S), each face's crop views in a row, is sent the model's (C, K, 2)
answers, returns the faces."""


def advance(reading: Reading, answer: np.ndarray | None = None) -> np.ndarray | list[FaceResult]:
    """A reading's next crops, or its faces once it is done: its first step without an `answer`, then each with the
    model's answer to the crops it last gave."""
    try:
        return next(reading) if answer is None else reading.send(answer)
    except StopIteration as done:
        return done.value


class Predictor:
    """An onnxruntime session (or export's TensorRT engine of the same model) plus the crop convention from the
    model's own metadata."""

    def __init__(
        self,
        session: ort.InferenceSession,
        info: DeployInfo,
        source: str,
        engine: CropPredictor | None = None,
        engine_note: str = "",
        shape_model: ShapeModel | None = None,
    ) -> None:
        self.session = session
        self.info = info
        self.source = source
        self.engine = engine
        self.engine_note = engine_note
        self.shape_model = shape_model
        self.upright = UprightPass.maybe(info.layout, info.upright_above_deg)
        inputs = [i.name for i in session.get_inputs()]
        outputs = [o.name for o in session.get_outputs()]
        wanted = [info.output_name, *([info.heatmap_name] if shape_model is not None else [])]
        if info.input_name not in inputs or not set(wanted) <= set(outputs):
            raise ValueError(
                f"{source}: metadata names input {info.input_name!r} and outputs {wanted}, "
                f"but the graph has inputs {inputs} and outputs {outputs}"
            )

    @classmethod
    def load(cls, model_ref: str | Path) -> Predictor:
        """From an .onnx file, a folder holding exactly one (a model bundle), or an MLflow URI such as
        `models:/<name>@<alias>` or `models:/<name>/<version>` (downloaded to a temporary folder) from the store
        MLFLOW_TRACKING_URI names, or else the project's local store that `make pipeline-run` writes."""
        source = str(model_ref)
        if source.startswith(MLFLOW_SCHEMES):
            import mlflow
            from mlflow.exceptions import MlflowException

            setup_tracking(must_exist=True)
            with tempfile.TemporaryDirectory(prefix="landmarkflow-model-") as tmp:
                try:
                    folder = mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp)
                except MlflowException as exc:
                    raise ValueError(f"{source}: cannot download the model: {exc.message}{_hint(source)}") from exc
                # The session and shape model are held in memory, so the download can go right after.
                return cls._from_file(*_find_onnx(Path(folder), source), source)
        path = Path(model_ref)
        if path.is_dir():
            return cls._from_file(*_find_onnx(path, source), source)
        if not path.is_file():
            raise FileNotFoundError(f"{source}: no such model file or folder")
        if path.suffix.lower() in TORCH_CHECKPOINT_SUFFIXES:
            raise ValueError(
                f"{source}: a PyTorch checkpoint; models are read as the ONNX that export writes: give "
                "<workdir>/export/model.onnx, the workdir, or a models:/ URI"
            )
        beside = path.parent / SHAPE_MODEL_FILE
        return cls._from_file(path, beside if beside.is_file() else None, source)

    @classmethod
    def _from_file(cls, path: Path, shape_path: Path | None, source: str) -> Predictor:
        session = open_session(path, source)
        info = DeployInfo.from_session(session, source)
        shape_model = _shape_model(shape_path, info, source)
        if shape_model is not None:  # an engine outputs landmarks only: the fit needs onnxruntime's heatmaps
            return cls(session, info, source, shape_model=shape_model)
        return cls(session, info, source, *_engine_beside(path))

    @property
    def backend(self) -> str:
        """What runs the crops, and why an engine beside the model does not if so."""
        if self.engine is not None:
            return self.engine_note
        runtime = f"onnxruntime ({', '.join(self.session.get_providers())})"
        if self.shape_model is not None:
            runtime += f" + shape fit ({SHAPE_MODEL_FILE})"
        return f"{runtime}; {self.engine_note}" if self.engine_note else runtime

    def predict_crops(self, crops: np.ndarray, fit_shape: bool = True) -> np.ndarray:
        """(N, K, 2) crop-pixel landmarks for (N, 3, S, S) float32 RGB [0, 1] crops, in one engine or ORT call; with
        the model's shape fit if it has one, unless `fit_shape` is False (the graph's own landmarks)."""
        size = self.info.input_size
        if crops.ndim != 4 or crops.shape[1:] != (3, size, size):
            raise ValueError(f"{self.source}: expects crops (N, 3, {size}, {size}), got {crops.shape}")
        crops = np.ascontiguousarray(crops, dtype=np.float32)
        if self.engine is not None:
            points = self.engine(crops)
        elif self.shape_model is not None and fit_shape:
            from landmarkflow.models.lgcn_shape import fit_shapes

            maps = self.session.run([self.info.heatmap_name], {self.info.input_name: crops})[0]
            points = fit_shapes(maps, self.shape_model)
        else:
            points = self.session.run([self.info.output_name], {self.info.input_name: crops})[0]
        if points.shape != (len(crops), self.info.num_points, 2):
            raise ValueError(
                f"{self.source}: output {self.info.output_name!r} has shape {points.shape}, "
                f"metadata promises ({len(crops)}, {self.info.num_points}, 2)"
            )
        return points

    def crop_faces(
        self, image_rgb: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]] | None = None, loose: bool = False
    ) -> FaceCrops:
        """The model inputs for each face box (x1, y1, x2, y2) in an HxWx3 uint8 RGB image; boxes None: detect
        faces, whose boxes are `loose`. The server batches several images' crops into one model call;
        `predict_image` runs them alone."""
        if image_rgb.ndim != 3 or image_rgb.shape[2] != 3:
            raise ValueError(f"expected an HxWx3 RGB image, got shape {image_rgb.shape}")
        loose = loose or boxes is None
        if boxes is None:
            boxes = [face.bbox for face in detect_faces(image_rgb)]
        boxes = _as_boxes(boxes)
        spec = self.info.crop_spec
        matrices, crops = cut_views(spec, [image_rgb] * len(boxes), boxes)
        return FaceCrops(image_rgb, boxes, spec, matrices, crops, loose)

    def own_box_crops(self, faces: FaceCrops, image_points: np.ndarray) -> FaceCrops | None:
        """Faces on loose boxes cropped again around their first answers' landmark boxes; None for tight boxes, and
        for a model whose training boxes were not the landmark boxes of its own points.

        A 68-point model learnt to read a face from its tight landmark box (jittered), and a detector's box follows
        another convention (detection.py): read again from the box the first answer implies, the default models'
        NME on loose boxes drops by 8-35% (README: Predict). On a tight box this costs a little, so a given box is
        cropped from once. A face whose first answer spans no area keeps its first box.
        """
        if not faces.loose or self.info.layout != LANDMARK_BOX_LAYOUT:
            return None
        boxes = []
        for points, first in zip(image_points, faces.boxes, strict=True):
            box = landmark_box(points)
            boxes.append(box if np.isfinite(box).all() and (box[2:] > box[:2]).all() else first)
        return self.crop_faces(faces.image, boxes)

    def upright_crops(self, faces: FaceCrops, image_points: np.ndarray) -> UprightCrops | None:
        """The second crops of the faces whose first answers roll past the model's upright threshold; None when
        the model makes one pass or no face rolls that far."""
        if self.upright is None:
            return None
        images = [faces.image] * len(faces.boxes)
        return self.upright.plan(images, faces.boxes, image_points, self.info.crop_spec)

    def predict_image(
        self, image_rgb: np.ndarray, boxes: np.ndarray | Sequence[Sequence[float]] | None = None, loose: bool = False
    ) -> list[FaceResult]:
        """Landmarks for each face box (x1, y1, x2, y2) in an HxWx3 uint8 RGB image; boxes None: detect faces.

        All faces of the image go to the model in one batch; those the upright pass crops again, in a second.
        A 68-point model then reads detected faces, and given boxes that are `loose` (a detector's), once more from
        their own boxes (`own_box_crops`); each result's box is the one its landmarks were read from.
        """
        boxes = None if boxes is None else check_on_image(boxes, image_rgb.shape)
        faces = self.crop_faces(image_rgb, boxes, loose)
        if not len(faces.boxes):
            return []
        step = advance(reading := self.reading(faces))
        while isinstance(step, np.ndarray):
            step = advance(reading, self.predict_crops(step))
        return step

    def reading(self, faces: FaceCrops) -> Reading:
        """How `predict_image` reads faces, as a generator that yields each batch of crops and is sent the model's
        answer to it (`advance` drives it): the first pass and the upright pass's second crops, then for loose boxes
        the same again from the faces' own boxes. `predict_image` sends the crops straight to the model, the server
        through its batcher."""
        points = yield from self._two_passes(faces)
        again = self.own_box_crops(faces, points)
        if again is not None:
            faces, points = again, (yield from self._two_passes(again))
        return faces.results(points)

    def _two_passes(self, faces: FaceCrops) -> Generator[np.ndarray, np.ndarray, np.ndarray]:
        """(N, K, 2) image points of the faces: one batch, then the upright pass's second crops."""
        points = faces.image_points((yield faces.crops))
        upright = self.upright_crops(faces, points)
        return points if upright is None else upright.merge(points, (yield upright.crops))

    def predict_file(self, path: str | Path, bbox: Sequence[float] | None = None) -> dict[str, object]:
        """The JSON-ready `{"image", "faces": [{"bbox", "landmarks"}]}` of one image file, as the CLI prints it;
        errors name the file.

        `bbox` skips detection; an image with no detected face gets `faces: []`.
        """
        image = read_rgb(path)  # whose errors name the file
        try:
            faces = self.predict_image(image, None if bbox is None else [bbox])
        except ValueError as exc:
            raise ValueError(f"{path}: {exc}") from exc
        return {"image": str(path), "faces": [face.to_json() for face in faces]}


def load_registered(name: str) -> tuple[Predictor, str, str]:
    """A registered model's champion, else its newest version (whose gate may have failed), loaded to predict, with
    that version's number and which of the two it is: how the benches and drawings read the default models.
    LookupError naming the model when nothing is registered under `name`."""
    from landmarkflow.registry import champion_or_newest

    setup_tracking(must_exist=True)
    found = champion_or_newest(name)
    if found is None:
        raise LookupError(f"{name}: no registered version (run `make pipeline-run` first)")
    version, role = found
    return Predictor.load(f"models:/{name}/{version.version}"), version.version, role
