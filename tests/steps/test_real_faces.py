"""Real faces given to evaluate: measured on their own as `real_*` metrics with their CED and overlay, the test
split's numbers unchanged, through a model's post-step too, and a folder in another layout refused before anything
is predicted."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import mlflow
import numpy as np
import pytest

from landmarkflow import steps
from landmarkflow.data.manifest import read_split
from landmarkflow.data.versioning import track_outside
from landmarkflow.evaluation.metrics import per_image_nme
from landmarkflow.evaluation.predictions import predict_records, torch_predictor
from landmarkflow.evaluation.real_faces import PER_FACE, RealFaces, read_real_faces
from landmarkflow.layouts import get_layout
from landmarkflow.train.checkpoint import load_model
from tests.fakes import DOTS_HIH, untrained, write_random_300w
from tests.models.small_configs import SMALL_LGCN


@pytest.fixture
def trained(tmp_path: Path) -> steps.TrainResult:
    return untrained(tmp_path, "hih_300w_dots", {**DOTS_HIH, "num_points": 68}, train_faces=3)


def test_real_faces_are_measured_on_their_own_beside_an_unchanged_test_split(
    trained: steps.TrainResult, tmp_path: Path
) -> None:
    real_root = tmp_path / "real"
    real = write_random_300w(real_root, {"helen/trainset": 1, "ibug": 2}, seed=100)  # every split of the folder counts
    plain = steps.evaluate(trained, tmp_path / "plain")
    assert plain.real_metrics == {} and not any("real" in Path(p).name for p in plain.plots)
    logged_plain = mlflow.MlflowClient().get_run(trained.run_id).data.metrics
    assert not any(key.startswith("real_") for key in logged_plain)

    evaluated = steps.evaluate(trained, tmp_path / "eval", RealFaces("300w", real_root))

    model, config = load_model(Path(trained.checkpoint))
    preds = predict_records(torch_predictor(model), real, real_root, config.crop_spec, 8)
    gts, boxes = np.stack([r.landmarks for r in real]), np.stack([r.bbox for r in real])
    expected = per_image_nme(preds, gts, get_layout("68"), boxes, "inter_ocular").mean()
    assert sorted(evaluated.real_metrics) == ["auc_10", "fr_10", "nme"]
    assert evaluated.real_metrics["nme"] == pytest.approx(expected, rel=1e-6)
    assert evaluated.metrics == plain.metrics  # the numbers the gate reads do not move
    logged = mlflow.MlflowClient().get_run(trained.run_id).data.metrics
    assert logged["real_nme"] == pytest.approx(evaluated.real_metrics["nme"])
    assert logged["test_nme"] == pytest.approx(evaluated.nme)
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(trained.run_id, "plots")}
    assert {"plots/real_ced.png", "plots/real_overlays.png"} <= artifacts
    per_face = json.loads((tmp_path / "eval" / PER_FACE).read_text())
    assert sorted(face["face"] for face in per_face) == sorted(r.sample_id for r in real)
    worst_first = sorted(per_image_nme(preds, gts, get_layout("68"), boxes), reverse=True)
    assert [face["nme"] for face in per_face] == pytest.approx(worst_first, rel=1e-6)
    assert np.mean([face["nme"] for face in per_face]) == pytest.approx(expected, rel=1e-6)
    assert PER_FACE in {a.path for a in mlflow.MlflowClient().list_artifacts(trained.run_id)}
    assert steps.EvalResult.load(evaluated.save(tmp_path / "e.json")).real_metrics == evaluated.real_metrics


def test_real_faces_in_another_layout_or_none_at_all_are_refused_by_name(tmp_path: Path) -> None:
    real_root = tmp_path / "real"
    write_random_300w(real_root, {"ibug": 1})
    with pytest.raises(ValueError, match=r"real 300w faces have 68 points, but the model predicts the 98-point"):
        read_real_faces(RealFaces("300w", real_root), "98")
    with pytest.raises(FileNotFoundError, match="missing"):
        read_real_faces(RealFaces("300w", tmp_path / "missing"), "68")


def test_real_faces_whose_points_lie_off_their_image_are_refused_by_name(tmp_path: Path) -> None:
    """Points annotated for another image (or scale) would be scored as the model's failure: refused before."""
    real_root = tmp_path / "real"
    write_random_300w(real_root, {"ibug": 2})  # points in 20-100 px of 128 x 120 images
    assert len(read_real_faces(RealFaces("300w", real_root), "68")) == 2
    pts = real_root / "ibug" / "face_1.pts"
    lines = pts.read_text().splitlines()
    shifted = [f"{float(x) + 5000:.3f} {y}" for x, y in (line.split() for line in lines[3:-1])]
    pts.write_text("\n".join([*lines[:3], *shifted, lines[-1]]) + "\n")
    with pytest.raises(ValueError, match=r"1 real faces' landmarks lie wholly off their image, the first ibug/face_1"
                       r"\.png \(points in 50\d\d, .* on a 128 x 120 image\)"):  # fmt: skip
        read_real_faces(RealFaces("300w", real_root), "68")


def test_images_without_landmarks_among_the_real_faces_are_named_in_the_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A photo whose .pts is missing is not measured; the log says which, not only the count that was."""
    real_root = tmp_path / "real"
    write_random_300w(real_root, {"ibug": 2})
    (real_root / "ibug" / "face_1.pts").unlink()
    with caplog.at_level(logging.INFO):
        (face,) = read_real_faces(RealFaces("300w", real_root), "68")
    assert face.sample_id == "ibug/face_0"
    assert "1 faces in" in caplog.text and "skipped 1 images without .pts (ibug/face_1.png)" in caplog.text


def test_a_pod_fetches_the_real_faces_by_version_from_the_data_remote(
    trained: steps.TrainResult, tmp_path: Path
) -> None:
    real_root = tmp_path / "real"
    write_random_300w(real_root, {"ibug": 2}, seed=7)
    remote = tmp_path / "remote"
    version = track_outside(real_root, str(remote))
    with pytest.raises(ValueError, match=r"came from no DVC remote"):
        steps.materialise_folder(version, trained, tmp_path / "pod")
    located = replace(trained, data_remote=str(remote))
    fetched = steps.materialise_folder(version, located, tmp_path / "pod")
    here = steps.evaluate(trained, tmp_path / "here", RealFaces("300w", real_root))
    there = steps.evaluate(trained, tmp_path / "there", RealFaces("300w", fetched))
    assert there.real_metrics == here.real_metrics


def test_real_faces_are_also_measured_through_the_shape_fit_a_deployed_lgcn_answers_with(tmp_path: Path) -> None:
    trained = untrained(tmp_path, "lgcn_300w_small", {**SMALL_LGCN, "num_points": 68}, train_faces=6)
    real_root = tmp_path / "real"
    real = write_random_300w(real_root, {"ibug": 3}, seed=5)

    evaluated = steps.evaluate(trained, tmp_path / "eval", RealFaces("300w", real_root))

    model, loaded = load_model(Path(trained.checkpoint))
    train = read_split(trained.manifest, "train")
    _, fitted = model.refined_predictor(
        np.stack([r.landmarks for r in train]), np.stack([r.bbox for r in train]), loaded.data.box_scale
    )
    preds = predict_records(fitted, real, real_root, loaded.crop_spec, 8)
    gts, boxes = np.stack([r.landmarks for r in real]), np.stack([r.bbox for r in real])
    expected = per_image_nme(preds, gts, get_layout("68"), boxes, "inter_ocular")
    assert evaluated.real_metrics["nme_shape_fitted"] == pytest.approx(expected.mean(), rel=1e-6)
    assert evaluated.real_metrics["nme_shape_fitted"] != pytest.approx(evaluated.real_metrics["nme"])
    logged = mlflow.MlflowClient().get_run(trained.run_id).data.metrics
    assert logged["real_nme_shape_fitted"] == pytest.approx(expected.mean())
    per_face = {face["face"]: face for face in json.loads((tmp_path / "eval" / PER_FACE).read_text())}
    for record, nme in zip(real, expected, strict=True):
        assert per_face[record.sample_id]["nme_shape_fitted"] == pytest.approx(nme, rel=1e-6)
