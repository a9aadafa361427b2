"""Upload size limits enforced while the body streams in, so an oversize upload is refused before it is read.

A framework that parses a multipart form before calling your endpoint has already read (and
spooled to disk) the whole body by the time the endpoint could look at its size: a 5 GB upload
costs 5 GB of disk and bandwidth before its 413. This ASGI middleware sits in front instead:

* a ``Content-Length`` over the limit → ``413`` at once, nothing read;
* no ``Content-Length`` (chunked upload) → bytes are counted as they arrive and the request is
  cut off with ``413`` at the first chunk past the limit.
"""

from __future__ import annotations

import json

from fastapi import HTTPException

#: Room for the multipart envelope (boundaries, part headers, the labels field) around the file.
ENVELOPE_BYTES = 64 * 1024


def too_large_message(limit: int) -> str:
    return f"The upload is over the {limit / (1024 * 1024):g} MB limit; send a smaller image."


class UploadSizeLimit:
    """Refuse POST bodies to ``path`` larger than ``max_bytes`` (plus the multipart envelope) with 413."""

    def __init__(self, app, path: str, max_bytes: int, on_refused=None):
        self.app, self.path, self.limit = app, path, max_bytes
        self.on_refused = on_refused or (lambda: None)  # e.g. count it in the metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] != self.path:
            return await self.app(scope, receive, send)
        allowed = self.limit + ENVELOPE_BYTES
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > allowed:
            self.on_refused()
            return await self._refuse(send)
        seen = 0

        async def counting_receive():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > allowed:
                    self.on_refused()
                    # Raised inside the endpoint's form parsing: FastAPI turns it into the 413 response.
                    raise HTTPException(413, too_large_message(self.limit))
            return message

        return await self.app(scope, counting_receive, send)

    async def _refuse(self, send) -> None:
        body = json.dumps({"detail": too_large_message(self.limit)}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"connection", b"close")]})
        await send({"type": "http.response.body", "body": body})
