"""The FastAPI web app: upload an image, get 202 at once, receive its CLIP labels over a WebSocket.

Routes
    ``GET /``                  the upload page (static HTML + JS, no CDN)
    ``POST /api/images``       multipart ``file`` (+ optional ``labels``) → ``202 {"id": ...}`` once Kafka has it
    ``GET /api/images/{id}``   the result, or ``{"status": "processing"}`` (REST fallback)
    ``WS /ws``                 send ``{"type": "subscribe", "id": ...}``; receive ``{"type": "result", ...}``
    ``GET /healthz``           200 while the app can reach Kafka and listens for results
    ``GET /metrics``           Prometheus metrics (:mod:`labkit.web.metrics`)

The routes are thin: the work is in :mod:`labkit.web.hub` (pending uploads, results, sockets),
refusals are exceptions answered and counted in :mod:`labkit.web.errors`, size limits are in
:mod:`labkit.web.limits`, and the security basics (CSP, same-origin uploads and sockets,
optional API token) in :mod:`labkit.web.security`.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, HTTPException, Request, WebSocket
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles

from ..config import Settings
from .errors import install_handlers
from .hub import ResultHub
from .limits import UploadSizeLimit, read_upload
from .metrics import WebMetrics
from .security import SECURITY_HEADERS, allowed_origins, origin_allowed, require_same_origin, require_token

log = logging.getLogger(__name__)
STATIC = Path(__file__).with_name("static")


def create_app(settings: Settings) -> FastAPI:
    """A web app wired to the Kafka cluster and topics in ``settings``."""
    metrics = WebMetrics(settings)
    hub = ResultHub(settings, on_result=metrics.result)
    metrics.count_pending(hub.pending_count)  # the hub owns pending uploads; the gauge reads them at each scrape

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        await hub.start()
        log.info(
            "web app ready: http://%s:%d (Kafka %s)", settings.web_host, settings.web_port, settings.bootstrap_servers
        )
        yield
        await hub.stop()

    app = FastAPI(title="labkit", summary="Real-time CLIP image analysis with Kafka", lifespan=lifespan)
    app.state.hub, app.state.metrics = hub, metrics
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
        health = hub.health()
        return JSONResponse(health.body(), status_code=200 if health.ok else 503)

    @app.post("/api/images", status_code=202)
    async def upload(request: Request) -> dict:
        """Multipart ``file`` (the image) and optional ``labels`` (your own candidates, comma- or newline-separated).

        Everything that needs no body is checked before a byte of it is read: origin, token,
        backlog (429) and declared size (413).
        """
        require_same_origin(request, settings)
        require_token(request, settings)
        hub.admit()
        accepted = await hub.submit_upload(await read_upload(request, settings.max_upload_bytes))
        metrics.accepted()
        log.info(
            "accepted %s (%s, %d → %d bytes%s) → %s[%d]@%d",
            accepted.id,
            accepted.filename,
            accepted.original_bytes,
            accepted.bytes_sent,
            ", re-encoded" if accepted.reencoded else "",
            settings.requests_topic,
            accepted.partition,
            accepted.offset,
        )
        return accepted.body()

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
