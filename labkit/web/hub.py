"""The web app's link to Kafka and the one owner of its pending uploads: uploads go out through a RequestSender, results come back through a ResultsListener and are pushed to the WebSockets that asked for them.

Kafka callbacks run on background threads; FastAPI runs on an asyncio event loop. Every result
crosses from the listener thread into the loop with ``call_soon_threadsafe``, and all
bookkeeping (pending uploads, subscriptions, background tasks) happens on the loop, so it needs
no locks. Routes call the typed methods here (:meth:`ResultHub.submit_upload`,
:meth:`~ResultHub.health`, …); a refusal is an exception from :mod:`labkit.web.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass

from confluent_kafka import KafkaException
from fastapi import WebSocket, WebSocketDisconnect

from ..config import Settings
from ..errors import BrokerUnavailable, WireFormatError
from ..request_sender import RequestSender
from ..results_listener import ResultsListener, ResultStore
from ..wire import ScoreResult
from .errors import Backlogged, BadLabels, KafkaUnavailable
from .limits import Upload

log = logging.getLogger(__name__)

#: An upload whose result has not come after this long is forgotten (it no longer counts as pending).
PENDING_EXPIRY_S = 600


@dataclass(frozen=True)
class Accepted:
    """An upload Kafka has acknowledged: what the 202 answers and the log line records."""

    id: str
    filename: str | None
    width: int
    height: int
    original_bytes: int
    bytes_sent: int
    reencoded: bool
    partition: int
    offset: int

    def body(self) -> dict:
        return {
            "id": self.id,
            "status": "processing",
            "width": self.width,
            "height": self.height,
            "bytes_sent": self.bytes_sent,
            "result_url": f"/api/images/{self.id}",
        }


@dataclass(frozen=True)
class Health:
    """What ``GET /healthz`` answers: healthy while the results listener runs."""

    ok: bool
    kafka: str
    pending: int
    results: int

    def body(self) -> dict:
        return {
            "status": "ok" if self.ok else "unhealthy",
            "kafka": self.kafka,
            "pending": self.pending,
            "results": self.results,
        }


@dataclass
class _Pending:
    filename: str | None
    since: float  # time.monotonic() when it was sent
    expiry: asyncio.TimerHandle


class ResultHub:
    """Owns pending uploads (sent, no result yet) and pushes each result to the sockets subscribed to its request id.

    ``on_result(result, waited_s)`` runs on the event loop once per new result; ``waited_s`` is
    the time since its upload when that upload is pending here, else None (e.g. the metrics).
    """

    def __init__(
        self,
        settings: Settings,
        on_result: Callable[[ScoreResult, float | None], None] | None = None,
        pending_expiry_s: float = PENDING_EXPIRY_S,
    ):
        self.settings = settings
        self.on_result = on_result
        self.pending_expiry_s = pending_expiry_s
        self.results = ResultStore(settings.results_cache_size)
        self._pending: dict[str, _Pending] = {}  # request id → what we know while it is processed
        self._delivered: deque[float] = deque(maxlen=200)  # when recent results arrived (drain-rate estimate)
        self._subscribers: dict[str, set[WebSocket]] = defaultdict(set)
        self._tasks: set[asyncio.Task] = set()  # pushes to sockets in flight: kept referenced, cancelled at stop
        self._loop: asyncio.AbstractEventLoop | None = None
        self._sender: RequestSender | None = None
        self._listener: ResultsListener | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        # Listen first, so a result can never arrive before we are listening for it.
        self._listener = await asyncio.to_thread(
            lambda: ResultsListener(
                self.settings,
                self._from_kafka_thread,
                client_id="labkit-web-results",
                replay_s=self.settings.results_replay_s,
            ).start()
        )
        self._sender = RequestSender(self.settings, client_id="labkit-web")

    async def stop(self) -> None:
        if self._listener:
            await asyncio.to_thread(self._listener.stop)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for pending in self._pending.values():
            pending.expiry.cancel()
        if self._sender:
            await asyncio.to_thread(self._sender.close)

    # --- uploads -------------------------------------------------------------------------------------------------

    def pending_count(self) -> int:
        """Uploads sent from here whose result has not come (nor expired); safe to call from any thread."""
        return len(self._pending)

    def health(self) -> Health:
        return Health(
            ok=bool(self._listener and self._listener.alive),
            kafka=self.settings.bootstrap_servers,
            pending=len(self._pending),
            results=len(self.results),
        )

    def admit(self) -> None:
        """Raise :class:`Backlogged` (429) while ``max_pending_uploads`` wait here: "later" instead of queueing forever."""
        if len(self._pending) >= self.settings.max_pending_uploads:
            raise Backlogged(len(self._pending), self.retry_after_s())

    def retry_after_s(self) -> int:
        """A polite ``Retry-After``: how long the backlog takes to drain at the recent result rate (1–60 s)."""
        recent = [t for t in self._delivered if time.monotonic() - t < 30]
        rate = len(recent) / max(time.monotonic() - recent[0], 1.0) if len(recent) > 1 else 1.0
        excess = len(self._pending) - self.settings.max_pending_uploads // 2  # drain to half the limit
        return max(1, min(60, math.ceil(excess / max(rate, 0.1))))

    async def submit_upload(self, upload: Upload) -> Accepted:
        """Send ``upload`` to Kafka and wait for the broker's acknowledgement; it is pending from the moment it is sent.

        Raises :class:`~labkit.errors.BadImage` (not an image), :class:`BadLabels` and
        :class:`KafkaUnavailable` (not queued, or not acknowledged in time).
        """
        assert self._sender is not None, "start() the hub first"
        sender = self._sender
        try:
            sent, prepared, acked = await asyncio.to_thread(sender.send, upload.data, upload.filename, upload.labels)
        except WireFormatError as exc:
            raise BadLabels(f"Labels: {exc}.") from None
        except (
            BufferError,
            KafkaException,
            BrokerUnavailable,
        ) as exc:  # the producer's queue is full, or Kafka refused
            log.error("upload not queued for Kafka: %s", exc)
            raise KafkaUnavailable("Kafka is not accepting images right now; try again in a moment.") from None
        self._remember(sent.id, upload.filename)  # before the acknowledgement: the result may beat it
        try:
            # The producer reports a failure after delivery_timeout_s; wait a little longer than that.
            partition, offset = await asyncio.wait_for(asyncio.wrap_future(acked), sender.delivery_timeout_s + 2)
        except Exception as exc:
            self._forget(sent.id)
            log.error("upload %s not accepted by Kafka: %s", sent.id, exc)
            raise KafkaUnavailable("Kafka did not accept the image in time; try again in a moment.") from None
        return Accepted(
            id=sent.id,
            filename=upload.filename,
            width=prepared.width,
            height=prepared.height,
            original_bytes=prepared.original_bytes,
            bytes_sent=len(prepared.data),
            reencoded=prepared.reencoded,
            partition=partition,
            offset=offset,
        )

    def _remember(self, request_id: str, filename: str | None) -> None:
        """Pending until its result arrives, or ``pending_expiry_s`` passes (then it will not come)."""
        expiry = asyncio.get_running_loop().call_later(self.pending_expiry_s, self._expire, request_id)
        self._pending[request_id] = _Pending(filename, time.monotonic(), expiry)

    def _forget(self, request_id: str) -> _Pending | None:
        """The one place an upload stops being pending (result, failure or expiry)."""
        pending = self._pending.pop(request_id, None)
        if pending is not None:
            pending.expiry.cancel()
        return pending

    def _expire(self, request_id: str) -> None:
        if self._forget(request_id) is not None:
            log.warning("upload %s: no result after %g s; no longer pending", request_id, self.pending_expiry_s)

    def status(self, request_id: str) -> dict | None:
        """What ``GET /api/images/{id}`` answers: the result, "processing", or None (unknown id)."""
        result = self.results.get(request_id)
        if result is not None:
            return public_view(result)
        if (pending := self._pending.get(request_id)) is not None:
            return {"id": request_id, "status": "processing", "labels": [], "filename": pending.filename}
        return None

    # --- results ----------------------------------------------------------------------------------------------------

    def _from_kafka_thread(self, result: ScoreResult) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._deliver, result)

    def _deliver(self, result: ScoreResult) -> None:
        if not self.results.add(result):
            log.debug("dropped a duplicate result for %s (at-least-once redelivery)", result.id)
            return  # the client already has it
        mine = self._forget(result.id)
        now = time.monotonic()
        self._delivered.append(now)
        if self.on_result is not None:
            self.on_result(result, now - mine.since if mine is not None else None)
        sockets = self._subscribers.pop(result.id, ())
        if mine is not None:  # the last hop of this request id's trail: web → Kafka → processor → here
            log.info(
                "result %s %s by %s → %d socket(s), %.0f ms after upload",
                result.id,
                result.status,
                result.processor or "?",
                len(sockets),
                (now - mine.since) * 1000,
            )
        for socket in sockets:
            self._spawn(self._send(socket, result))

    def _spawn(self, work: Coroutine) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, socket: WebSocket, result: ScoreResult) -> None:
        try:
            await socket.send_json({"type": "result", **public_view(result)})
        except Exception:  # the browser went away; the result stays available over REST
            log.debug("could not push %s to a closed socket", result.id)

    async def serve_socket(self, socket: WebSocket) -> None:
        """Answer an accepted socket's ``{"type": "subscribe", "id": ...}`` messages until it closes."""
        try:
            while True:
                message = await socket.receive_json()
                if (
                    isinstance(message, dict)
                    and message.get("type") == "subscribe"
                    and isinstance(message.get("id"), str)
                ):
                    await self.subscribe(socket, message["id"])
                else:
                    await socket.send_json({"type": "error", "error": 'send {"type": "subscribe", "id": "<id>"}'})
        except (WebSocketDisconnect, ValueError):
            pass
        finally:
            self.unsubscribe_all(socket)

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
