"""The web app's link to Kafka: uploads go out through a RequestSender, results come back through a ResultsListener and are pushed to the WebSockets that asked for them.

Kafka callbacks run on background threads; FastAPI runs on an asyncio event loop. Every result
crosses from the listener thread into the loop with ``call_soon_threadsafe``, and all
subscription bookkeeping happens on the loop, so it needs no locks.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable

from fastapi import WebSocket

from ..config import Settings
from ..gateway import RequestSender, ResultsListener, ResultStore
from ..wire import ScoreResult

log = logging.getLogger(__name__)

#: An upload whose result has not come after this long is forgotten (it no longer counts as pending).
PENDING_EXPIRY_S = 600


class ResultHub:
    """Tracks pending uploads and pushes each result to the sockets subscribed to its request id."""

    def __init__(self, settings: Settings, on_result: Callable[[ScoreResult], None] | None = None):
        self.settings = settings
        self.on_result = on_result  # e.g. the metrics; runs on the event loop, once per new result
        self.results = ResultStore(settings.results_cache_size)
        # request id → what we know while it is processed; oldest first, so expiry is cheap
        self.pending: OrderedDict[str, dict] = OrderedDict()
        self._delivered: deque[float] = deque(maxlen=200)  # when recent results arrived (drain-rate estimate)
        self._subscribers: dict[str, set[WebSocket]] = defaultdict(set)
        self._loop: asyncio.AbstractEventLoop | None = None
        self.sender: RequestSender | None = None
        self.listener: ResultsListener | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Listen first, so a result can never arrive before we are listening for it.
        self.listener = await asyncio.to_thread(
            lambda: ResultsListener(self.settings, self._from_kafka_thread, client_id="labkit-web-results",
                                    replay_s=self.settings.results_replay_s).start())
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
            log.debug("dropped a duplicate result for %s (at-least-once redelivery)", result.id)
            return  # the client already has it
        mine = self.pending.pop(result.id, None)
        self._delivered.append(time.monotonic())
        if self.on_result is not None:
            self.on_result(result)
        sockets = self._subscribers.pop(result.id, ())
        if mine is not None:  # the last hop of this request id's trail: web → Kafka → processor → here
            log.info("result %s %s by %s → %d socket(s), %.0f ms after upload", result.id, result.status,
                     result.processor or "?", len(sockets), (time.monotonic() - mine["since"]) * 1000)
        for socket in sockets:
            asyncio.ensure_future(self._send(socket, result))

    def track(self, request_id: str, filename: str | None) -> None:
        """Remember an upload until its result arrives (or ``PENDING_EXPIRY_S`` passes: it will not come)."""
        self.pending[request_id] = {"filename": filename, "since": time.monotonic()}
        while self.pending and time.monotonic() - next(iter(self.pending.values()))["since"] > PENDING_EXPIRY_S:
            self.pending.popitem(last=False)

    def retry_after_s(self) -> int:
        """A polite ``Retry-After``: how long the backlog takes to drain at the recent result rate (1–60 s)."""
        recent = [t for t in self._delivered if time.monotonic() - t < 30]
        rate = len(recent) / max(time.monotonic() - recent[0], 1.0) if len(recent) > 1 else 1.0
        excess = len(self.pending) - self.settings.max_pending_uploads // 2  # drain to half the limit
        return max(1, min(60, math.ceil(excess / max(rate, 0.1))))

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
            return {"id": request_id, "status": "processing", "labels": [],
                    "filename": self.pending[request_id]["filename"]}
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
