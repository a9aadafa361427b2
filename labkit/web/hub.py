"""The web app's link to Kafka: uploads go out through a RequestSender, results come back through a ResultsListener and are pushed to the WebSockets that asked for them.

Kafka callbacks run on background threads; FastAPI runs on an asyncio event loop. Every result
crosses from the listener thread into the loop with ``call_soon_threadsafe``, and all
subscription bookkeeping happens on the loop, so it needs no locks.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Callable

from fastapi import WebSocket

from ..config import Settings
from ..gateway import RequestSender, ResultsListener, ResultStore
from ..wire import ScoreResult

log = logging.getLogger(__name__)


class ResultHub:
    """Tracks pending uploads and pushes each result to the sockets subscribed to its request id."""

    def __init__(self, settings: Settings, on_result: Callable[[ScoreResult], None] | None = None):
        self.settings = settings
        self.on_result = on_result  # e.g. the metrics; runs on the event loop, once per new result
        self.results = ResultStore(settings.results_cache_size)
        self.pending: dict[str, dict] = {}  # request id → what we know while it is processed
        self._subscribers: dict[str, set[WebSocket]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sender: RequestSender | None = None
        self.listener: ResultsListener | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Listen first, so a result can never arrive before we are listening for it.
        self.listener = await asyncio.to_thread(
            lambda: ResultsListener(self.settings, self._from_kafka_thread, client_id="labkit-web-results").start())
        self.sender = RequestSender(self.settings, client_id="labkit-web")

    async def stop(self) -> None:
        if self.listener:
            await asyncio.to_thread(self.listener.stop)
        if self.sender:
            await asyncio.to_thread(self.sender.close)

    @property
    def healthy(self) -> bool:
        return bool(self.listener and self.listener.alive)

    def _from_kafka_thread(self, result: ScoreResult) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._deliver, result)

    def _deliver(self, result: ScoreResult) -> None:
        if not self.results.add(result):
            return  # a duplicate from an at-least-once retry: the client already has it
        self.pending.pop(result.id, None)
        if self.on_result is not None:
            self.on_result(result)
        for socket in self._subscribers.pop(result.id, ()):
            asyncio.ensure_future(self._send(socket, result))

    async def _send(self, socket: WebSocket, result: ScoreResult) -> None:
        try:
            await socket.send_json({"type": "result", **public_view(result)})
        except Exception:  # the browser went away; the result stays available over REST
            log.debug("could not push %s to a closed socket", result.id)

    def status(self, request_id: str) -> dict | None:
        """What ``GET /api/images/{id}`` answers: the result, "processing", or None (unknown id)."""
        result = self.results.get(request_id)
        if result is not None:
            return public_view(result)
        if request_id in self.pending:
            return {"id": request_id, "status": "processing", "labels": [], **self.pending[request_id]}
        return None

    async def subscribe(self, socket: WebSocket, request_id: str) -> None:
        """Push ``request_id``'s result to ``socket``: now if it is already here, else when it arrives."""
        result = self.results.get(request_id)
        if result is not None:
            await self._send(socket, result)
        else:
            self._subscribers[request_id].add(socket)

    def unsubscribe_all(self, socket: WebSocket) -> None:
        for request_id in [r for r, sockets in self._subscribers.items() if socket in sockets]:
            self._subscribers[request_id].discard(socket)
            if not self._subscribers[request_id]:
                del self._subscribers[request_id]


def public_view(result: ScoreResult) -> dict:
    """A result as the HTTP API and the WebSocket show it: status ``done`` or ``error``."""
    return {**result.to_dict(), "status": "done" if result.status == "ok" else "error"}
