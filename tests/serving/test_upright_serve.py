"""The server makes the upright second pass as `predict` does: a constant ONNX model whose eyes always roll 20 degrees
in its crop, served by a real `landmarkflow serve` process."""

from __future__ import annotations

import json
import math
import os
import urllib.request
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest

from landmarkflow.inference import Predictor
from landmarkflow.layouts import get_layout
from landmarkflow.runtime import DeployInfo
from landmarkflow.tracking import TELEMETRY_OFF
from tests.servers import serve_on_free_port
from tests.test_inference import BOX_SCALE, SIZE, constant_model, rolled_eyes

pytestmark = [pytest.mark.integration]
BOX = [40.0, 30.0, 140.0, 150.0]


@pytest.mark.parametrize("threshold,roll,limit", [(10.0, 40.0, 2.5), (math.inf, 20.0, math.inf)])
def test_the_server_reads_a_rolled_face_again_upright(
    tmp_path: Path, threshold: float, roll: float, limit: float
) -> None:
    """It reports the model's crop options too: its upright threshold, crop shrink limit (None: off) and crop views."""
    info = DeployInfo(model="constant", layout="19", num_points=19, input_size=SIZE, box_scale=BOX_SCALE,
                      upright_above_deg=threshold, max_crop_shrink=limit)  # fmt: skip
    model = tmp_path / "model.onnx"
    onnx.save(constant_model(rolled_eyes(20.0), info), model)
    image = np.zeros((240, 320, 3), dtype=np.uint8)
    ok, png = cv2.imencode(".png", image)
    assert ok
    server, url = serve_on_free_port(["--model", str(model)], tmp_path / "serve.log", {**os.environ, **TELEMETRY_OFF})
    with server:
        with urllib.request.urlopen(f"{url}/v1/model", timeout=10) as response:
            reported = json.loads(response.read())
        assert reported["upright_above_deg"] == (threshold if math.isfinite(threshold) else None)
        assert reported["max_crop_shrink"] == (limit if math.isfinite(limit) else None)
        assert reported["crop_views"] == [1.0]
        bbox = ",".join(f"{v:g}" for v in BOX)
        request = urllib.request.Request(
            f"{url}/v1/landmarks?bbox={bbox}", png.tobytes(), {"Content-Type": "image/png"}, method="POST"
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            [served] = json.loads(response.read())["faces"]
    [predicted] = Predictor.load(model).predict_image(image, [BOX])
    np.testing.assert_allclose(served["landmarks"], predicted.landmarks, atol=0.01)
    assert get_layout("19").eye_line_deg(np.array(served["landmarks"])[None])[0] == pytest.approx(roll, abs=0.1)
