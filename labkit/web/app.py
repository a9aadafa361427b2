"""The FastAPI web app: upload an image, get 202 at once, receive its CLIP labels over a WebSocket.

Routes
    ``GET /``                  the upload page (static HTML + JS, no CDN)
    ``POST /api/images``       multipart ``file`` (+ optional ``labels``) → ``202 {"id": ...}`` once Kafka has it
    ``GET /api/images/{id}``   the result, or ``{"status": "processing"}`` (REST fallback)
    ``WS /ws``                 send ``{"type": "subscribe", "id": ...}``; receive ``{"type": "result", ...}``
    ``GET /healthz``           200 while the app can reach Kafka and listens for results
    ``GET /metrics``           Prometheus metrics (:mod:`labkit.web.metrics`)

Security basics (CSP, same-origin uploads and sockets, optional API token): :mod:`labkit.web.security`.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from confluent_kafka import KafkaException
from fastapi import FastAPI, HTTPException, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import UploadFile as StarletteUploadFile
from starlette.formparsers import MultiPartException

from ..config import Settings
from ..errors import BadImage, WireFormatError
from .hub import ResultHub
from .limits import UploadSizeLimit, too_large_message
from .metrics import WebMetrics
from .security import SECURITY_HEADERS, allowed_origins, origin_allowed, require_same_origin, require_token

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


def create_app(settings: Settings) -> FastAPI:
    """A web app wired to the Kafka cluster and topics in ``settings``."""
    metrics = WebMetrics(settings)
    hub = ResultHub(settings, on_result=metrics.result)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await hub.start()
        log.info("web app ready: http://%s:%d (Kafka %s)", settings.web_host, settings.web_port,
                 settings.bootstrap_servers)
        yield
        await hub.stop()

    app = FastAPI(title="labkit", summary="Real-time CLIP image analysis with Kafka", lifespan=lifespan)
    app.state.hub, app.state.metrics = hub, metrics
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if allowed_origins(settings):  # CORS stays closed unless other origins are named
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(CORSMiddleware, allow_origins=sorted(allowed_origins(settings)),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization"])

    # Innermost of the two: the security headers below also go on its early 413s.
    app.add_middleware(UploadSizeLimit, path="/api/images", max_bytes=settings.max_upload_bytes,
                       on_refused=lambda: metrics.rejected("too_large"))

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        response.headers.update(SECURITY_HEADERS)
        return response

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:
        body = await asyncio.to_thread(metrics.render)  # reads the lag from Kafka
        return Response(body, media_type="text/plain; version=0.0.4")

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(STATIC / "index.html")

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        ok = hub.healthy
        return JSONResponse({"status": "ok" if ok else "unhealthy", "kafka": settings.bootstrap_servers,
                             "pending": len(hub.pending), "results": len(hub.results)},
                            status_code=200 if ok else 503)

    @app.post("/api/images", status_code=202)
    async def upload(request: Request) -> dict:
        """Multipart ``file`` (the image) and optional ``labels`` (your own candidates, comma- or newline-separated).

        Everything that needs no body is checked before a byte of it is read: origin, token,
        backlog (429) and declared size (413, in :mod:`labkit.web.limits`).
        """
        try:
            require_same_origin(request, settings)
            require_token(request, settings)
        except HTTPException as exc:
            metrics.rejected("forbidden" if exc.status_code == 403 else "unauthorized")
            raise
        if len(hub.pending) >= settings.max_pending_uploads:  # backpressure: say "later" instead of queueing forever
            metrics.rejected("backpressure")
            wait = hub.retry_after_s()
            raise HTTPException(429, f"{len(hub.pending)} images are already waiting for results here; try again in "
                                     f"{wait} s.", headers={"Retry-After": str(wait)})
        try:
            form = await request.form(max_files=1, max_fields=1, max_part_size=64 * 1024)
        except MultiPartException as exc:
            metrics.rejected("bad_request")
            raise HTTPException(400, f"Send the image as multipart/form-data in a field named 'file' ({exc.message}).") from None
        file, labels = form.get("file"), form.get("labels")
        if not isinstance(file, StarletteUploadFile):
            metrics.rejected("bad_request")
            raise HTTPException(422, "No image: send it as multipart/form-data in a field named 'file'.")
        if labels is not None and not isinstance(labels, str):
            metrics.rejected("bad_labels")
            raise HTTPException(422, "Labels: send them as text, comma- or newline-separated.")
        limit = settings.max_upload_bytes
        data = await file.read(limit + 1)
        await form.close()
        if len(data) > limit:  # the envelope allowance let a slightly-too-big file through the middleware
            metrics.rejected("too_large")
            raise HTTPException(413, too_large_message(limit))
        filename = Path(file.filename or "").name[:200] or None  # a label only, never used as a path
        custom = labels.replace("\n", ",").split(",") if labels and labels.strip() else None
        try:
            sent, prepared, acked = await asyncio.to_thread(hub.sender.send, data, filename, custom)
        except BadImage as exc:
            metrics.rejected("bad_image")
            raise HTTPException(415, str(exc)) from None
        except WireFormatError as exc:
            metrics.rejected("bad_labels")
            raise HTTPException(422, f"Labels: {exc}.") from None
        except (BufferError, KafkaException) as exc:  # the producer's queue is full, or Kafka refused outright
            metrics.rejected("kafka_unavailable")
            log.error("upload not queued for Kafka: %s", exc)
            raise HTTPException(503, "Kafka is not accepting images right now; try again in a moment.",
                                headers={"Retry-After": "5"}) from None
        hub.track(sent.id, filename)
        metrics.sending(sent.id)
        try:
            # The producer reports a failure after delivery_timeout_s; wait a little longer than that.
            partition, offset = await asyncio.wait_for(asyncio.wrap_future(acked), hub.sender.delivery_timeout_s + 2)
        except Exception as exc:
            hub.pending.pop(sent.id, None)
            metrics.rejected("kafka_unavailable", sent.id)
            log.error("upload %s not accepted by Kafka: %s", sent.id, exc)
            raise HTTPException(503, "Kafka did not accept the image in time; try again in a moment.",
                                headers={"Retry-After": "5"}) from None
        metrics.accepted()
        log.info("accepted %s (%s, %d → %d bytes%s) → %s[%d]@%d", sent.id, filename, prepared.original_bytes,
                 len(prepared.data), ", re-encoded" if prepared.reencoded else "", settings.requests_topic,
                 partition, offset)
        return {"id": sent.id, "status": "processing", "width": prepared.width, "height": prepared.height,
                "bytes_sent": len(prepared.data), "result_url": f"/api/images/{sent.id}"}

    @app.get("/api/images/{request_id}")
    async def result(request_id: str) -> dict:
        status = hub.status(request_id)
        if status is None:
            raise HTTPException(404, f"No image {request_id!r} is known here; upload it again.")
        return status

    @app.websocket("/ws")
    async def results_socket(socket: WebSocket) -> None:
        if not origin_allowed(socket.headers.get("origin"), socket.headers.get("host"), settings):
            await socket.close(code=1008)  # policy violation: another web site's page
            return
        await socket.accept()
        try:
            while True:
                message = await socket.receive_json()
                if isinstance(message, dict) and message.get("type") == "subscribe" and isinstance(message.get("id"), str):
                    await hub.subscribe(socket, message["id"])
                else:
                    await socket.send_json({"type": "error", "error": 'send {"type": "subscribe", "id": "<id>"}'})
        except (WebSocketDisconnect, ValueError):
            pass
        finally:
            hub.unsubscribe_all(socket)

    return app


def serve(settings: Settings) -> None:
    """Run the web app with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(create_app(settings), host=settings.web_host, port=settings.web_port,
                log_level=settings.log_level.lower(), ws_max_size=64 * 1024)
