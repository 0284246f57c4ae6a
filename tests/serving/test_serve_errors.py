"""A request the server fails on answers 500 with a generic message and an error id, never the exception's text (a
path, a library's message); the server's log holds the traceback under that id. Bad input still gets its 4xx."""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from landmarkflow.runtime import DeployInfo
from landmarkflow.tracking import TELEMETRY_OFF
from tests.servers import answers, serve_on_free_port
from tests.serving.test_serve import multipart, post
from tests.test_inference import BOX_SCALE, SIZE, constant_model

pytestmark = [pytest.mark.integration]


def test_an_internal_failure_answers_an_id_and_logs_the_traceback_under_it(tmp_path: Path) -> None:
    """The model loads, but answers 19 points where its metadata promises 20: each model call fails inside."""
    info = DeployInfo(model="constant", layout="19", num_points=20, input_size=SIZE, box_scale=BOX_SCALE)
    model = tmp_path / "secret-folder" / "broken.onnx"
    model.parent.mkdir()
    onnx.save(constant_model(info=info), model)
    log = tmp_path / "serve.log"
    png = cv2.imencode(".png", np.zeros((120, 160, 3), np.uint8))[1].tobytes()
    server, url = serve_on_free_port(["--model", str(model)], log, {**os.environ, **TELEMETRY_OFF})
    with server:
        status, answer = post(url, png, "image/png", "?bbox=20,20,100,100")
        refused, bad_box = post(url, png, "image/png", "?bbox=1,2,3")
        assert answers(url)
    assert status == 500, answer
    assert not [text for text in ("secret-folder", "metadata promises", "ValueError") if text in str(answer)], answer
    error_id = answer["error_id"]
    assert len(error_id) >= 8 and error_id in answer["error"]
    logged = log.read_text()
    [line] = [line for line in logged.splitlines() if error_id in line]
    after = logged[logged.index(line) :]
    assert after.index("Traceback") < after.index(f"{model}: output 'landmarks' has shape (1, 19, 2)")
    assert refused == 422 and "expected x1,y1,x2,y2" in bad_box["error"]


def test_an_upload_past_the_byte_limit_answers_413_naming_the_limit_the_server_was_given(tmp_path: Path) -> None:
    """`--max-upload-mb` bounds the image's bytes, raw or in a multipart body (which may carry framing beyond it)."""
    info = DeployInfo(model="constant", layout="19", num_points=19, input_size=SIZE, box_scale=BOX_SCALE)
    onnx.save(constant_model(info=info), tmp_path / "model.onnx")
    noise = np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    png = cv2.imencode(".png", noise)[1].tobytes()  # 120 kB: noise does not compress
    small = cv2.imencode(".png", np.zeros((64, 64, 3), np.uint8))[1].tobytes()
    arguments = ["--model", str(tmp_path / "model.onnx"), "--max-upload-mb", "0.05"]
    server, url = serve_on_free_port(arguments, tmp_path / "serve.log", {**os.environ, **TELEMETRY_OFF})
    with server:
        raw = post(url, png, "image/png", "?bbox=20,20,100,100")
        framed = post(url, *multipart({"image": ("noise.png", png)}), "?bbox=20,20,100,100")
        fits = post(url, *multipart({"image": ("small.png", small)}), "?bbox=10,10,50,50")
    assert raw[0] == 413 and raw[1]["error"] == f"request of {len(png)} bytes: the limit is 52429 bytes"
    assert framed[0] == 413
    assert "the limit is 52429 bytes (and 65536 of multipart/form-data framing)" in framed[1]["error"]
    assert fits[0] == 200 and len(fits[1]["faces"]) == 1
