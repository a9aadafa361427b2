"""HTTP security basics for the web app.

A Content-Security-Policy, same-origin checks for uploads and WebSockets, and the optional API token.

Why each one:

* **CSP** — the page loads scripts, styles and images only from this app (and ``blob:``
  previews of the user's own files): an injected ``<script>`` from a hostile file name or
  label would not run even if escaping failed somewhere.
* **Same origin** — browsers send a multipart form POST to *any* site without asking
  (it is a "simple request", so CORS never blocks it). Without this check, any web page a
  user visits could upload into your pipeline. Browsers always send ``Origin`` on such
  requests and on WebSocket handshakes, so we compare it with the app's own address.
  Command-line clients send no ``Origin`` and are not affected.
* **API token** — when the app is exposed beyond localhost, ``LABKIT_API_TOKEN`` makes
  uploads require ``Authorization: Bearer <token>``; compared in constant time, never logged.
"""

from __future__ import annotations

import secrets
from urllib.parse import urlsplit

from fastapi import Request
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import Settings
from .errors import Forbidden, Unauthorized

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' blob: data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class SecurityHeaders:
    """Add :data:`SECURITY_HEADERS` to every HTTP answer, as plain ASGI middleware.

    Plain ASGI, not ``@app.middleware("http")``: Starlette's ``BaseHTTPMiddleware`` runs each
    request through an extra task and in-memory streams, CPU every upload pays.
    """

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])  # optional in ASGI; MutableHeaders edits the message's own list
                MutableHeaders(scope=message).update(SECURITY_HEADERS)
            await send(message)

        await self.app(scope, receive, send_with_headers)


def allowed_origins(settings: Settings) -> set[str]:
    """Origins other than the app's own that may call it (``LABKIT_ALLOWED_ORIGINS``)."""
    return {o.strip().rstrip("/") for o in settings.allowed_origins.split(",") if o.strip()}


def origin_allowed(origin: str | None, host: str | None, settings: Settings) -> bool:
    """True for no ``Origin`` (not a browser), the app's own origin, or a configured one."""
    if not origin:
        return True
    if origin.rstrip("/") in allowed_origins(settings):
        return True
    return bool(host) and urlsplit(origin).netloc == host


def require_same_origin(request: Request, settings: Settings) -> None:
    """403 for a browser request sent by another web site."""
    if not origin_allowed(request.headers.get("origin"), request.headers.get("host"), settings):
        raise Forbidden(
            "Uploads from other web sites are refused. Open the labkit page itself, or add "
            "that site to LABKIT_ALLOWED_ORIGINS."
        )


def require_token(request: Request, settings: Settings) -> None:
    """401 unless the request carries the configured API token (no-op when none is configured)."""
    if settings.api_token is None:
        return
    expected = settings.api_token.get_secret_value()
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not secrets.compare_digest(given.strip().encode(), expected.encode()):
        raise Unauthorized(
            "This labkit needs an API token: send `Authorization: Bearer <token>` "
            "(the token is LABKIT_API_TOKEN on the server)."
        )
