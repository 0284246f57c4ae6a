"""The HTTP server: `POST /v1/landmarks` answers an image (multipart or raw bytes) with the JSON of `predict`.

Each request is decoded, its faces detected (or its box taken) and cropped in the threadpool, exactly as
`Predictor.predict_image` does; the crops of concurrent requests then share one model call (`CropBatcher`), and
each face is mapped back to its image. The upright pass's crops, and a 68-point model's read of a detected face
from its own box, go through the batcher too. A refused request (UploadError) answers JSON `{"error": ...}` saying
what to fix; a failed one answers a generic 500 with an `error_id` that its traceback is logged under. The server
goes on either way.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException

from landmarkflow.detection import DETECTOR, check_detector
from landmarkflow.inference import FaceCrops, FaceResult, Predictor, advance
from landmarkflow.serving.batcher import BatcherBusy, CropBatcher
from landmarkflow.serving.model_ref import ServedModel, pin_model
from landmarkflow.serving.uploads import BBOX_FIELD, IMAGE_FIELD, Limits, UploadError, decode_image, parse_bbox

log = logging.getLogger(__name__)

SETTINGS_ENV = "LANDMARKFLOW_SERVE_SETTINGS"
"""How `serve --workers N` hands its settings to each uvicorn worker process (JSON of ServeSettings)."""
MULTIPART = "multipart/form-data"
MULTIPART_FRAMING = 64 * 1024
"""Bytes a multipart body may hold beyond the upload limit: its boundaries, headers and the bbox field."""
RAW_IMAGE_NAME = "request-body"
"""The `image` of a raw-bytes request in the answer (a multipart upload's is its file name)."""


@dataclass(frozen=True)
class ServeSettings:
    """What the server answers with and how it batches; `model` as `predict --model` takes it."""

    model: str
    limits: Limits = field(default_factory=Limits)
    max_batch: int = 32
    batch_wait_ms: float = 5.0
    max_pending: int = 256

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeSettings:
        values = json.loads(text)
        return cls(**{**values, "limits": Limits(**values["limits"])})


def create_app(settings: ServeSettings, served: ServedModel | None = None) -> FastAPI:
    """The app for `settings.model` (pinned first unless `served` says which version it is)."""
    check_detector()  # a request without a box would meet it first, as a 500
    served = served or pin_model(settings.model)
    predictor = Predictor.load(served.uri)
    batcher = CropBatcher(
        predictor.predict_crops, settings.max_batch, settings.batch_wait_ms / 1000, settings.max_pending
    )
    version = f" v{served.version}" if served.version else ""
    log.info("serving %s%s from %s on %s", served.name, version, served.uri, predictor.backend)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        await run_in_threadpool(batcher.close)

    app = FastAPI(title="landmarkflow", summary="Facial landmarks in image pixels.", lifespan=lifespan)

    @app.exception_handler(UploadError)
    async def refused(_: Request, exc: UploadError) -> JSONResponse:
        return JSONResponse({"error": str(exc)}, status_code=exc.status)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        return JSONResponse({"error": str(exc.detail)}, status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(BatcherBusy)
    async def busy(_: Request, exc: BatcherBusy) -> JSONResponse:
        return JSONResponse({"error": f"busy: {exc}; try again shortly"}, status_code=503, headers={"Retry-After": "1"})

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> JSONResponse:
        """The exception's text may name paths or a library's internals: it goes to the log only, under an id the
        caller can quote to an operator."""
        error_id = uuid.uuid4().hex[:12]
        log.error("%s %s failed: error id %s", request.method, request.url.path, error_id, exc_info=exc)
        answer = {"error": f"internal error (id {error_id}); the server's log has the details", "error_id": error_id}
        return JSONResponse(answer, status_code=500)

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 while the model's batch worker runs."""
        if not batcher.alive:
            return JSONResponse({"status": "model worker stopped"}, status_code=503)
        return JSONResponse({"status": "ok"})

    @app.get("/v1/model")
    def model() -> dict[str, Any]:
        """The registered name and version, the deploy metadata that says how faces are cropped, and the detector
        that finds faces in a request without a box."""
        info = predictor.info
        return {
            "name": served.name,
            "version": served.version,
            "source": served.uri,
            "model": info.model,
            "layout": info.layout,
            "num_points": info.num_points,
            "input_size": info.input_size,
            "box_scale": info.box_scale,
            "upright_above_deg": info.upright_above_deg if math.isfinite(info.upright_above_deg) else None,
            "max_crop_shrink": info.max_crop_shrink if math.isfinite(info.max_crop_shrink) else None,
            "crop_views": list(info.crop_views),
            "config_hash": info.config_hash,
            "backend": predictor.backend,
            "detector": DETECTOR,
        }

    async def read(faces: FaceCrops) -> list[FaceResult]:
        """`Predictor.predict_image`'s reading of the faces, each model call through the batcher and the cropping
        between them in the thread pool."""
        reading = predictor.reading(faces)
        step = advance(reading)
        while isinstance(step, np.ndarray):
            answer = await asyncio.wrap_future(batcher.submit(step))
            step = await run_in_threadpool(advance, reading, answer)
        return step

    @app.post("/v1/landmarks")
    async def landmarks(request: Request) -> dict[str, Any]:
        """An image (multipart field `image`, or the raw body with an image/* content type) and an optional
        `bbox=x1,y1,x2,y2` (query or form field; default: detect faces) -> `{"image", "faces": [{"bbox",
        "landmarks"}]}`, in image pixels, as `landmarkflow predict --json` prints it."""
        name, data, bbox = await _read_request(request, settings.limits)

        def crop() -> Any:
            image = decode_image(data, settings.limits)
            return predictor.crop_faces(image, parse_bbox(bbox, image.shape))

        faces = await run_in_threadpool(crop)
        found = await read(faces) if len(faces.boxes) else []
        return {"image": name, "faces": [face.to_json() for face in found]}

    return app


def app_from_env() -> FastAPI:
    """The uvicorn factory each worker of `serve --workers N` builds its app with."""
    return create_app(ServeSettings.from_json(os.environ[SETTINGS_ENV]))


async def _read_body(request: Request, max_bytes: int, framing: int = 0) -> bytes:
    """The body, refused with 413 past `max_bytes` (the user's limit, as the messages say it) and `framing` more."""
    limit = max_bytes + framing
    allowed = f"{max_bytes} bytes" + (f" (and {framing} of {MULTIPART} framing)" if framing else "")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadError(413, f"request of {declared} bytes: the limit is {allowed}")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise UploadError(413, f"request larger than the limit of {allowed}")
        chunks.append(chunk)
    return b"".join(chunks)


async def _read_request(request: Request, limits: Limits) -> tuple[str, bytes, str | None]:
    """(the image's name, its bytes, the bbox text or None) from either kind of request."""
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    query_bbox = request.query_params.get(BBOX_FIELD)
    if media.startswith("image/"):
        return RAW_IMAGE_NAME, await _read_body(request, limits.max_bytes), query_bbox
    if media != MULTIPART:
        given = f"content type {media!r}" if media else "no content type"
        raise UploadError(
            415,
            f"{given}: send the image as {MULTIPART} with an {IMAGE_FIELD!r} file field, "
            "or as the raw body with an image/* content type",
        )
    body = await _read_body(request, limits.max_bytes, MULTIPART_FRAMING)

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    try:
        # Two files, so that `_form_fields` refuses a second image, or a bbox sent as a file, by name.
        form = await Request(request.scope, replay).form(max_files=2, max_fields=4)
    except HTTPException as exc:
        raise UploadError(400, f"malformed {MULTIPART} body: {exc.detail}") from exc
    try:
        return await _form_fields(form, query_bbox)
    finally:
        await form.close()  # its spooled upload files


async def _form_fields(form: FormData, query_bbox: str | None) -> tuple[str, bytes, str | None]:
    upload, form_bbox, images = form.get(IMAGE_FIELD), form.get(BBOX_FIELD), len(form.getlist(IMAGE_FIELD))
    if images > 1:
        raise UploadError(400, f"{IMAGE_FIELD!r} given {images} times: send one image a request")
    if not isinstance(upload, UploadFile):
        raise UploadError(400, f"no image: the {MULTIPART} body needs a file field {IMAGE_FIELD!r}")
    if form_bbox is not None and query_bbox is not None:
        raise UploadError(422, f"{BBOX_FIELD} given twice, as a query parameter and a form field: give one")
    if form_bbox is not None and not isinstance(form_bbox, str):
        raise UploadError(422, f"{BBOX_FIELD} must be a text field x1,y1,x2,y2, not a file")
    return upload.filename or IMAGE_FIELD, await upload.read(), form_bbox if form_bbox is not None else query_bbox
