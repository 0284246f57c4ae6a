"""`landmarkflow serve` as a real process on loopback: the answers of `predict` to 0.01 px, many clients at once,
and every bad request refused with a 4xx while the server keeps answering."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from landmarkflow.detection import DETECTOR
from tests.servers import ServerProcess
from tests.serving.champions import Champion

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ASTRONAUT_BOX = "175,70,268,163"


def post(url: str, body: bytes, content_type: str | None, query: str = "") -> tuple[int, dict]:
    """POST to /v1/landmarks; (status, JSON answer) whatever the status. No content type: no body at all."""
    headers = {"Content-Type": content_type} if content_type else {}
    data = body if content_type else None  # urllib would label a body form-urlencoded
    request = urllib.request.Request(f"{url}/v1/landmarks{query}", data, headers, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def multipart(
    fields: dict[str, tuple[str | None, bytes]] | list[tuple[str, tuple[str | None, bytes]]],
) -> tuple[bytes, str]:
    """A multipart/form-data body of (file name or None for a text field, bytes) by field name (a list of pairs
    may name a field twice)."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, (filename, value) in fields.items() if isinstance(fields, dict) else fields:
        file_part = f'; filename="{filename}"\r\nContent-Type: application/octet-stream' if filename else ""
        parts.append(f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"{file_part}\r\n\r\n'.encode())
        parts.append(value + b"\r\n")
    return b"".join([*parts, f"--{boundary}--\r\n".encode()]), f"multipart/form-data; boundary={boundary}"


def predict_cli(champion: Champion, *args: str) -> dict:
    """`landmarkflow predict --json` in a fresh process on the champion's store."""
    command = [sys.executable, "-m", "landmarkflow.cli", "predict", "--model", champion.uri, "--json", *args]
    done = subprocess.run(command, env={**os.environ, **champion.env}, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def assert_same_faces(served: list[dict], predicted: list[dict]) -> None:
    assert len(served) == len(predicted) >= 1
    for mine, theirs in zip(served, predicted, strict=True):
        np.testing.assert_allclose(mine["bbox"], theirs["bbox"], atol=0.01)
        np.testing.assert_allclose(mine["landmarks"], theirs["landmarks"], atol=0.01)


def test_answers_as_predict_does(hih_champion: Champion, hih_server: tuple[ServerProcess, str]) -> None:
    _, url = hih_server
    photo = hih_champion.photo.read_bytes()
    model = get(f"{url}/v1/model")
    assert model["name"] == "hih-synthetic" and model["version"] == "1"
    assert model["layout"] == "68" and model["input_size"] == 96 and model["source"] == "models:/hih-synthetic/1"
    assert model["detector"] == DETECTOR
    assert get(f"{url}/healthz") == {"status": "ok"}

    detected = predict_cli(hih_champion, str(hih_champion.photo))
    status, raw = post(url, photo, "image/png")
    assert status == 200 and raw["image"] == "request-body"
    assert_same_faces(raw["faces"], detected["faces"])

    given = predict_cli(hih_champion, str(hih_champion.photo), "--bbox", ASTRONAUT_BOX)
    body, content_type = multipart({"image": ("astronaut.png", photo), "bbox": (None, ASTRONAUT_BOX.encode())})
    status, form = post(url, body, content_type)
    assert status == 200 and form["image"] == "astronaut.png"
    assert_same_faces(form["faces"], given["faces"])
    status, query = post(url, photo, "image/png", f"?bbox={ASTRONAUT_BOX}")
    assert status == 200
    assert_same_faces(query["faces"], given["faces"])


def test_many_clients_at_once_get_their_own_answers(hih_server: tuple[ServerProcess, str], tmp_path: Path) -> None:
    """16 threads x 4 requests of different images and boxes: each answer is the one that request gets alone."""
    _, url = hih_server
    rng = np.random.default_rng(0)
    requests = []
    for i in range(16):
        image = rng.integers(0, 256, size=(96 + 8 * i, 128, 3), dtype=np.uint8)
        box = f"{4 + i},{6 + i},{70 + i},{80}"
        requests.append((cv2.imencode(".png", image)[1].tobytes(), f"?bbox={box}"))
    alone = [post(url, body, "image/png", query) for body, query in requests]
    assert all(status == 200 for status, _ in alone)

    def client(index: int) -> list[tuple[int, dict]]:
        order = [(index + k * 5) % len(requests) for k in range(4)]
        return [(j, *post(url, requests[j][0], "image/png", requests[j][1])) for j in order]

    with ThreadPoolExecutor(16) as pool:
        results = [answer for answers in pool.map(client, range(16)) for answer in answers]
    assert len(results) == 64
    for j, status, answer in results:
        assert status == 200, answer
        assert_same_faces(answer["faces"], alone[j][1]["faces"])


def test_bad_requests_get_a_4xx_and_the_server_keeps_serving(
    hih_champion: Champion, hih_server: tuple[ServerProcess, str]
) -> None:
    server, url = hih_server
    photo = hih_champion.photo.read_bytes()
    huge = cv2.imencode(".png", np.zeros((7000, 6000, 3), np.uint8))[1].tobytes()  # 42 Mpx in a small file
    body, content_type = multipart({"picture": ("a.png", photo)})
    box_file = multipart({"image": ("a.png", photo), "bbox": ("box.txt", b"10,10,90,90")})
    two_images = multipart([("image", ("a.png", photo)), ("image", ("b.png", photo))])
    bad = {
        "not an image": (post(url, b"hello, world", "image/png"), 400, "not an image"),
        "wrong content type": (post(url, photo, "text/plain"), 415, "content type 'text/plain'"),
        "no body": (post(url, b"", None), 415, "no content type"),
        "empty body": (post(url, b"", "image/jpeg"), 400, "no image"),
        "huge image": (post(url, huge, "image/png"), 413, "6000 x 7000 pixels"),
        "box outside": (post(url, photo, "image/png", "?bbox=600,10,700,90"), 422, "outside the 512 x 512 image"),
        "box malformed": (post(url, photo, "image/png", "?bbox=1,2,3"), 422, "expected x1,y1,x2,y2"),
        "no image field": (post(url, body, content_type), 400, "file field 'image'"),
        "box as a file": (post(url, *box_file), 422, "bbox must be a text field x1,y1,x2,y2, not a file"),
        "two images": (post(url, *two_images), 400, "'image' given 2 times: send one image a request"),
        "box huge": (post(url, photo, "image/png", "?bbox=0,0,1e300,1e300"), 422, "more than 4 times the 512 x 512"),
        "broken multipart": (post(url, b"--x\r\nnonsense", "multipart/form-data; boundary=x"), 400, "image"),
    }
    for what, ((status, answer), expected_status, message) in bad.items():
        assert status == expected_status, (what, answer)
        assert message in answer["error"], (what, answer)
    assert server.running and get(f"{url}/healthz") == {"status": "ok"}
    status, answer = post(url, photo, "image/png", f"?bbox={ASTRONAUT_BOX}")
    assert status == 200 and len(answer["faces"]) == 1
