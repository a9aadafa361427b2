"""The FastAPI web app: upload an image, get 202 at once, receive each model's result over a WebSocket.

A result per model: CLIP labels, OCR text.

Routes
    ``GET /``                  the upload page (static HTML + JS, no CDN)
    ``POST /api/images``       multipart ``file`` (+ optional ``labels``, ``tasks``) →
                               ``202 {"request_id": ..., "tasks": [...]}`` once Kafka has it
    ``GET /api/images/{request_id}``   every task's result so far, ``status`` ``processing`` until all
                               have answered (REST fallback)
    ``GET /api/tasks``         the tasks this pipeline runs (``LABKIT_TASKS``), with how the page titles and draws each
    ``GET /api/pipeline``      topics, the processors' group and their lag
                               (:func:`labkit.ops.monitor.pipeline_snapshot`)
    ``WS /ws``                 send ``{"type": "subscribe", "request_id": ...}``; receive
                               ``{"type": "result", "task": ...}`` per task
    ``GET /api/history``, ``/api/search``, ``/api/images/{request_id}/similar|duplicates|thumbnail``
                               the history the sink keeps (:mod:`labkit.web.history_api`)
    ``GET /healthz``           200 while the app can reach Kafka and listens for results
    ``GET /metrics``           Prometheus metrics (:mod:`labkit.web.metrics`)

What each route takes and answers, errors included, is declared in :mod:`labkit.web.contract`
(``/openapi.json``, ``/docs``). The routes are thin: the work is in :mod:`labkit.web.hub` (pending
uploads, results, sockets), refusals are exceptions answered and counted in :mod:`labkit.web.errors`, size limits are in
:mod:`labkit.web.limits`, and the security basics (CSP, same-origin uploads and sockets,
optional API token) in :mod:`labkit.web.security`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from ..config import Settings
from ..records.wire import MAX_LABEL_CHARS, MAX_LABELS
from ..tasks import TASKS, check_tasks
from .contract import HealthState, ImageStatus, Pipeline, RequestId, Tasks, UploadAccepted, problems
from .errors import install_handlers
from .history_api import history_router
from .hub import ResultHub
from .limits import MAX_TASK_FIELDS, UploadSizeLimit, read_upload
from .metrics import WebMetrics
from .security import SecurityHeaders, allowed_origins, origin_allowed, require_same_origin, require_token

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


class PipelineView:
    """``GET /api/pipeline``'s answer, read from Kafka at most every ``max_age_s``, however many pages ask.

    One read at a time, on a thread of its own: a slow or absent broker holds that thread only,
    never the event loop nor the threads uploads use; a page waits ``timeout_s`` at most.
    """

    def __init__(self, settings: Settings, max_age_s: float = 1.0, timeout_s: float = 3.0):
        self.settings, self.max_age_s, self.timeout_s = settings, max_age_s, timeout_s
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="labkit-web-pipeline")
        self._reading: asyncio.Future | None = None
        self._snapshot: dict[str, Any] | None = None  # the last reading; None before one, or after a failed one
        self._error: BaseException | None = None
        self._read_at = -math.inf  # time.monotonic() of the last answer

    async def snapshot(self) -> dict[str, Any]:
        """The latest snapshot; :class:`HTTPException` 503 when Kafka did not answer (the page retries)."""
        if time.monotonic() - self._read_at >= self.max_age_s:
            if self._reading is None:
                self._reading = asyncio.get_running_loop().run_in_executor(self._thread, self._read)
                self._reading.add_done_callback(self._keep)
            try:
                await asyncio.wait_for(asyncio.shield(self._reading), self.timeout_s)
            except Exception:  # noqa: BLE001 — kept by _keep; a timeout leaves the read running for the next ask
                pass
        if self._snapshot is None:
            why = self._error or f"no answer within {self.timeout_s:g} s"
            raise HTTPException(
                503,
                f"Kafka did not say how the pipeline is doing ({why}); this view asks again by itself.",
                headers={"Retry-After": "2"},
            )
        # age_s over max_age_s: Kafka is slow to answer, and this is the last answer it gave.
        return {**self._snapshot, "age_s": round(time.monotonic() - self._read_at, 1)}

    def _read(self) -> dict[str, Any]:
        from ..ops.monitor import pipeline_snapshot

        return pipeline_snapshot(self.settings)

    def _keep(self, reading: asyncio.Future) -> None:
        self._reading = None
        if reading.cancelled():
            return
        self._read_at, self._error = time.monotonic(), reading.exception()
        self._snapshot = reading.result() if self._error is None else None

    def close(self) -> None:
        self._thread.shutdown(wait=False, cancel_futures=True)


def upload_body(settings: Settings) -> dict[str, Any]:
    """``POST /api/images``' request body as the OpenAPI document states it (the route reads it by hand).

    The route reads the form itself, after the checks that need no body (origin, token, backlog,
    declared size: :mod:`labkit.web.limits`), so FastAPI cannot infer it: it is declared here,
    with the limits :func:`~labkit.web.limits.read_upload` and the request sender enforce.
    """
    limit = settings.max_upload_bytes
    fields = {
        "file": {
            "type": "string",
            "format": "binary",
            "description": f"The image: JPEG, PNG, WebP or GIF, at most {limit} bytes ({limit / 2**20:g} MB; 413 over "
            "it, refused before the body is read when Content-Length says so).",
        },
        "labels": {
            "type": "string",
            "pattern": r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f]*$",
            "description": f"Your own candidate labels for CLIP, comma- or newline-separated: 2 to {MAX_LABELS} "
            f"different ones of at most {MAX_LABEL_CHARS} characters each (the pipeline's own set when absent).",
        },
        "tasks": {
            "type": "array",
            "items": {"type": "string", "enum": list(settings.enabled_tasks)},
            "minItems": 1,
            "maxItems": MAX_TASK_FIELDS,
            "description": "The tasks to run, each a field of its own (or comma-separated in one); every enabled "
            "task when absent (`GET /api/tasks`).",
        },
    }
    form = {"type": "object", "required": ["file"], "properties": fields}
    images = {"file": {"contentType": "image/jpeg, image/png, image/webp, image/gif"}}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": form, "encoding": images}}}}


def create_app(settings: Settings) -> FastAPI:
    """A web app wired to the Kafka cluster and topics in ``settings``."""
    check_tasks(settings)  # LABKIT_TASKS naming no task fails here, before anything listens
    metrics = WebMetrics(settings)
    hub = ResultHub(settings, on_result=metrics.result)
    metrics.count_pending(hub.pending_count)  # the hub owns pending uploads; the gauge reads them at each scrape
    pipeline = PipelineView(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await hub.start()
        log.info(
            "web app ready: http://%s:%d (Kafka %s)", settings.web_host, settings.web_port, settings.bootstrap_servers
        )
        yield
        pipeline.close()
        await hub.stop()

    app = FastAPI(title="labkit", summary="Real-time image analysis (CLIP, OCR) with Kafka", lifespan=lifespan)
    app.state.hub, app.state.metrics, app.state.pipeline = hub, metrics, pipeline
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    install_handlers(app, count=metrics.rejected)  # every refused upload is answered and counted there
    if allowed_origins(settings):  # CORS stays closed unless other origins are named
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=sorted(allowed_origins(settings)),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization"],
        )
    app.add_middleware(UploadSizeLimit, path="/api/images", max_bytes=settings.max_upload_bytes)

    app.add_middleware(SecurityHeaders)

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body = await asyncio.to_thread(metrics.render)  # reads the lag from Kafka
        return Response(body, media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get(
        "/healthz",
        operation_id="health",
        tags=["operations"],
        responses={503: {"model": HealthState, "description": "The app hears no results."}},
    )
    async def healthz(response: Response) -> HealthState:
        """`ok` (200) while the app can reach Kafka and listens for results; `unhealthy` (503) otherwise."""
        health = hub.health()
        response.status_code = 200 if health.ok else 503
        return HealthState.model_validate(health.body())

    @app.post(
        "/api/images",
        operation_id="upload_image",
        tags=["uploads"],
        status_code=202,
        responses=problems(400, 401, 403, 413, 415, 422, 429, 503),
        openapi_extra=upload_body(settings),
    )
    async def upload(request: Request) -> UploadAccepted:
        """Multipart ``file`` (the image), optional ``labels`` and optional ``tasks``.

        ``labels``: your own candidates, comma- or newline-separated. ``tasks``: the models to run,
        repeated or comma-separated; all enabled ones when absent.

        Everything that needs no body is checked before a byte of it is read: origin, token,
        backlog (429) and declared size (413).
        """
        require_same_origin(request, settings)
        require_token(request, settings)
        hub.admit()
        accepted = await hub.submit_upload(await read_upload(request, settings.max_upload_bytes))
        metrics.accepted()
        log.info(
            "accepted %s (%s, %d → %d bytes%s, for %s) → %s[%d]@%d",
            accepted.request_id,
            accepted.filename,
            accepted.original_bytes,
            accepted.bytes_sent,
            ", re-encoded" if accepted.reencoded else "",
            ", ".join(accepted.tasks),
            settings.requests_topic,
            accepted.partition,
            accepted.offset,
        )
        # Where Kafka put it: the processor's result names the same partition and offset.
        return UploadAccepted(**accepted.body(), partition=accepted.partition, offset=accepted.offset)

    @app.get("/api/tasks", operation_id="list_tasks", tags=["uploads"])
    async def tasks() -> Tasks:
        """The tasks this pipeline runs, in order (``LABKIT_TASKS``).

        Each answers every upload that names it, or names none.
        """
        return Tasks.model_validate(
            {
                "tasks": list(settings.enabled_tasks),
                "shown": {
                    name: {"title": TASKS[name].title, "layout": TASKS[name].layout} for name in settings.enabled_tasks
                },
            }
        )

    @app.get("/api/pipeline", operation_id="get_pipeline", tags=["operations"], responses=problems(503))
    async def pipeline_now() -> Pipeline:
        """The topics, the processors' group and their lag (≤ 1 s old).

        As :func:`labkit.ops.monitor.pipeline_snapshot` reads them.
        """
        return Pipeline.model_validate(await pipeline.snapshot())

    @app.get(
        "/api/images/{request_id}",
        operation_id="get_results",
        tags=["uploads"],
        responses=problems(404, 422),
        response_model_exclude_unset=True,
    )
    async def result(request_id: RequestId) -> ImageStatus:
        """Every task's result so far; `status` is `processing` until every task the upload asked for answered."""
        status = hub.status(request_id)
        if status is None:
            raise HTTPException(404, f"No image {request_id!r} is known here; upload it again.")
        return ImageStatus.model_validate(status)

    history_routes, _ = history_router(settings)
    app.include_router(history_routes)

    @app.get(
        "/asyncapi.json",
        operation_id="get_asyncapi",
        tags=["operations"],
        summary="The AsyncAPI 3 document: the WebSocket /ws and the Kafka topics",
    )
    async def asyncapi(request: Request) -> dict[str, Any]:
        """The AsyncAPI 3.0.0 document of `WS /ws` (subscribe, result, error) and of the Kafka topics.

        Each record's key, headers and value, its schema version, and which service sends or
        receives it in which consumer group; topic names as this app's settings name them.
        """
        from .asyncapi import asyncapi_document

        return asyncapi_document(settings, request.headers.get("host"), secure=request.url.scheme == "https")

    @app.websocket("/ws")
    async def results_socket(socket: WebSocket) -> None:
        if not origin_allowed(socket.headers.get("origin"), socket.headers.get("host"), settings):
            await socket.close(code=1008)  # policy violation: another web site's page
            return
        await socket.accept()
        await hub.serve_socket(socket)

    return app


def serve(settings: Settings) -> None:
    """Run the web app with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(
        create_app(settings),
        host=settings.web_host,
        port=settings.web_port,
        log_level=settings.log_level.lower(),
        ws_max_size=64 * 1024,
    )
