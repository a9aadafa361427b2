"""The web app's link to Kafka and the one owner of its pending uploads.

Uploads go out through a RequestSender; each task's result comes back through a ResultsListener
and is pushed to the WebSockets that asked for it.

Kafka callbacks run on background threads; FastAPI runs on an asyncio event loop. Every result
crosses from the listener thread into the loop with ``call_soon_threadsafe``, and all
bookkeeping (pending uploads, subscriptions, background tasks) happens on the loop, so it needs
no locks. An upload is pending until every task it asked for (``clip``, ``ocr``…) has answered,
or it expires; a task that fails or never answers holds back no other task's result. Routes
call the typed methods here (:meth:`ResultHub.submit_upload`, :meth:`~ResultHub.health`, …);
a refusal is an exception from :mod:`labkit.web.errors`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, defaultdict, deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass

from confluent_kafka import KafkaException
from fastapi import WebSocket, WebSocketDisconnect

from ..config import Settings
from ..errors import BrokerUnavailable, UnknownTasks, WireFormatError
from ..records.wire import ScoreResult
from ..request_sender import RequestSender, expected_tasks
from ..results_listener import ResultsListener, ResultStore
from .errors import Backlogged, BadLabels, BadTasks, KafkaUnavailable
from .limits import Upload
from .views import Accepted, Health, answered, public_view, upload_view

log = logging.getLogger(__name__)

#: An upload whose results have not all come after this long is forgotten (it no longer counts as pending).
PENDING_EXPIRY_S = 600


@dataclass
class _Pending:
    filename: str | None
    since: float  # time.monotonic() when it was sent
    expiry: asyncio.TimerHandle
    tasks: tuple[str, ...]  # the tasks expected to answer


class ResultHub:
    """Owns pending uploads and pushes each task's result to the sockets subscribed to its request id.

    An upload is pending once sent, until every task has answered.

    ``on_result(result, waited_s)`` runs on the event loop once per new result (one per task);
    ``waited_s`` is the time since its upload when that upload is pending here, else None (e.g.
    the metrics).
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
        # request id → the tasks its upload named, for uploads sent from here (kept as long as results are)
        self._named: OrderedDict[str, tuple[str, ...]] = OrderedDict()
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
        """Uploads sent from here still awaiting a task's result (not expired); safe to call from any thread."""
        return len(self._pending)

    def health(self) -> Health:
        return Health(
            ok=bool(self._listener and self._listener.alive),
            kafka=self.settings.bootstrap_servers,
            pending=len(self._pending),
            results=len(self.results),
        )

    def admit(self) -> None:
        """Raise :class:`Backlogged` (429) while ``max_pending_uploads`` wait here.

        The client is told "later" instead of queueing forever.
        """
        if len(self._pending) >= self.settings.max_pending_uploads:
            raise Backlogged(len(self._pending), self.retry_after_s())

    def retry_after_s(self) -> int:
        """A polite ``Retry-After``: how long the backlog takes to drain at the recent result rate (1–60 s)."""
        recent = [t for t in self._delivered if time.monotonic() - t < 30]
        rate = len(recent) / max(time.monotonic() - recent[0], 1.0) if len(recent) > 1 else 1.0
        excess = len(self._pending) - self.settings.max_pending_uploads // 2  # drain to half the limit
        return max(1, min(60, math.ceil(excess / max(rate, 0.1))))

    async def submit_upload(self, upload: Upload) -> Accepted:
        """Send ``upload`` to Kafka, await the broker's acknowledgement; it is pending as soon as it is sent.

        Raises :class:`~labkit.errors.BadImage` (not an image), :class:`BadTasks`, :class:`BadLabels`
        and :class:`KafkaUnavailable` (not queued, or not acknowledged in time).
        """
        assert self._sender is not None, "start() the hub first"
        sender = self._sender
        try:  # the sender checks the tasks and labels (once), before anything is sent
            sent, prepared, acked = await asyncio.to_thread(
                sender.send, upload.data, upload.filename, upload.labels, upload.tasks
            )
        except UnknownTasks as exc:
            raise BadTasks(f"Tasks: {exc}.") from None
        except WireFormatError as exc:
            raise BadLabels(f"Labels: {exc}.") from None
        except (
            BufferError,
            KafkaException,
            BrokerUnavailable,
        ) as exc:  # the producer's queue is full, or Kafka refused
            log.error("upload not queued for Kafka: %s", exc)
            raise KafkaUnavailable("Kafka is not accepting images right now; try again in a moment.") from None
        tasks = expected_tasks(self.settings, sent)
        self._remember(sent.request_id, upload.filename, tasks)  # before the acknowledgement: the result may beat it
        try:
            # The producer reports a failure after delivery_timeout_s; wait a little longer than that.
            partition, offset = await asyncio.wait_for(asyncio.wrap_future(acked), sender.delivery_timeout_s + 2)
        except Exception as exc:
            self._forget(sent.request_id)
            log.error("upload %s not accepted by Kafka: %s", sent.request_id, exc)
            raise KafkaUnavailable("Kafka did not accept the image in time; try again in a moment.") from None
        return Accepted(
            request_id=sent.request_id,
            filename=upload.filename,
            width=prepared.width,
            height=prepared.height,
            original_bytes=prepared.original_bytes,
            bytes_sent=len(prepared.data),
            reencoded=prepared.reencoded,
            partition=partition,
            offset=offset,
            tasks=tasks,
        )

    def _remember(self, request_id: str, filename: str | None, tasks: tuple[str, ...]) -> None:
        """Pending until every task in ``tasks`` answered, or ``pending_expiry_s`` passes (then they will not)."""
        expiry = asyncio.get_running_loop().call_later(self.pending_expiry_s, self._expire, request_id)
        self._pending[request_id] = _Pending(filename, time.monotonic(), expiry, tasks)
        self._named[request_id] = tasks
        while len(self._named) > self.settings.results_cache_size:
            self._named.popitem(last=False)

    def expected(self, request_id: str) -> tuple[str, ...]:
        """The tasks that answer ``request_id``.

        Those its upload named when it was sent from here, else every enabled task (an upload
        through another replica: its results do not say what it named).
        """
        return self._named.get(request_id, self.settings.enabled_tasks)

    def _forget(self, request_id: str) -> _Pending | None:
        """The one place an upload stops being pending (result, failure or expiry)."""
        pending = self._pending.pop(request_id, None)
        if pending is not None:
            pending.expiry.cancel()
        return pending

    def _expire(self, request_id: str) -> None:
        if self._forget(request_id) is not None:
            missing = set(self.expected(request_id)) - set(self.results.of(request_id))
            log.warning(
                "upload %s: no result from %s after %g s; no longer pending",
                request_id,
                ", ".join(sorted(missing)),
                self.pending_expiry_s,
            )

    def status(self, request_id: str) -> dict | None:
        """``GET /api/images/{request_id}``: :func:`~labkit.web.views.upload_view`, or None (unknown id)."""
        results = self.results.of(request_id)
        pending = self._pending.get(request_id)
        if not results and pending is None:
            return None
        return upload_view(request_id, self.expected(request_id), results, pending.filename if pending else None)

    # --- results ----------------------------------------------------------------------------------------------------

    def _from_kafka_thread(self, result: ScoreResult) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._deliver, result)

    def _deliver(self, result: ScoreResult) -> None:
        if not self.results.add(result):
            log.debug("dropped a duplicate %s result for %s (at-least-once redelivery)", result.task, result.request_id)
            return  # the client already has it
        complete = answered(self.expected(result.request_id), self.results.of(result.request_id))
        mine = self._pending.get(result.request_id)
        if complete:
            self._forget(result.request_id)
        now = time.monotonic()
        self._delivered.append(now)
        if self.on_result is not None:
            self.on_result(result, now - mine.since if mine is not None else None)
        sockets = set(self._subscribers.get(result.request_id, ()))
        if complete:  # nothing more to push for this id
            self._subscribers.pop(result.request_id, None)
        if mine is not None:  # the last hop of this request id's trail: web → Kafka → processor → here
            log.info(
                "result %s %s %s by %s → %d socket(s), %.0f ms after upload",
                result.request_id,
                result.task,
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
            log.debug("could not push %s to a closed socket", result.request_id)

    async def serve_socket(self, socket: WebSocket) -> None:
        """Answer an accepted socket's ``{"type": "subscribe", "request_id": ...}`` messages until it closes.

        ``id`` is read too: the request id's name before 1.3, which clients of 1.x may still send.
        """
        try:
            while True:
                message = await socket.receive_json()
                request_id = message.get("request_id", message.get("id")) if isinstance(message, dict) else None
                if isinstance(message, dict) and message.get("type") == "subscribe" and isinstance(request_id, str):
                    await self.subscribe(socket, request_id)
                else:
                    await socket.send_json(
                        {"type": "error", "error": 'send {"type": "subscribe", "request_id": "<request id>"}'}
                    )
        except (WebSocketDisconnect, ValueError):
            pass
        finally:
            self.unsubscribe_all(socket)

    async def subscribe(self, socket: WebSocket, request_id: str) -> None:
        """Push each of ``request_id``'s results to ``socket``, one message per task.

        Those already here are pushed now, the rest as they arrive.
        """
        results = self.results.of(request_id)
        if not answered(self.expected(request_id), results):
            self._subscribers[request_id].add(socket)  # before sending: a result arriving meanwhile is pushed too
        for result in results.values():
            await self._send(socket, result)

    def unsubscribe_all(self, socket: WebSocket) -> None:
        for request_id in [r for r, sockets in self._subscribers.items() if socket in sockets]:
            self._subscribers[request_id].discard(socket)
            if not self._subscribers[request_id]:
                del self._subscribers[request_id]
