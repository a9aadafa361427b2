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

from fastapi import FastAPI, File, Form, HTTPException, Request, UploadFile, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..config import Settings
from ..errors import BadImage, WireFormatError
from .hub import ResultHub
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
    async def upload(request: Request, file: UploadFile = File(...), labels: str | None = Form(None)) -> dict:
        """``labels``: optional candidate labels of your own, comma- or newline-separated."""
        try:
            require_same_origin(request, settings)
            require_token(request, settings)
        except HTTPException as exc:
            metrics.rejected("forbidden" if exc.status_code == 403 else "unauthorized")
            raise
        limit = settings.max_upload_bytes
        declared = request.headers.get("content-length")
        if declared and declared.isdigit() and int(declared) > limit + 64 * 1024:
            metrics.rejected("too_large")
            raise HTTPException(413, f"The upload is over the {limit // (1024 * 1024)} MB limit; send a smaller image.")
        data = await file.read(limit + 1)
        if len(data) > limit:
            metrics.rejected("too_large")
            raise HTTPException(413, f"The upload is over the {limit // (1024 * 1024)} MB limit; send a smaller image.")
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
        hub.pending[sent.id] = {"filename": filename}
        metrics.sending(sent.id)
        try:
            partition, offset = await asyncio.wait_for(asyncio.wrap_future(acked), settings.connect_timeout_s + 5)
        except Exception as exc:
            hub.pending.pop(sent.id, None)
            metrics.rejected("kafka_unavailable", sent.id)
            log.error("upload %s not accepted by Kafka: %s", sent.id, exc)
            raise HTTPException(503, "Kafka did not accept the image in time; try again in a moment.") from None
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
