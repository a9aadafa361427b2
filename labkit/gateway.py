"""The client side of the pipeline: send image requests into Kafka and listen for their results.

The web app and the notebooks both use these two pieces, so a learner's notebook talks to
Kafka exactly as the web app does.

* :class:`RequestSender` checks an image, shrinks it to fit one record, produces it keyed by
  a new request id, and tells you when the broker has acknowledged it.
* :class:`ResultsListener` reads *every* partition of the results topic from "now" on, outside
  any consumer group. Every web replica and notebook therefore sees every result and keeps
  the ones its own clients asked for. That is how a result finds the right browser when
  several web replicas run: no replica needs to know which one received the upload.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from concurrent.futures import Future

from confluent_kafka import KafkaError, TopicPartition

from .admin import wait_for_topics
from .clients import make_consumer, make_producer
from .config import Settings
from .images import PreparedImage, prepare_upload
from .wire import ImageRequest, ScoreResult, new_request_id, now_ms, validate_labels

log = logging.getLogger(__name__)


def _producer_is_done_for(error: KafkaError) -> bool:
    """Errors after which this producer will never deliver again: fatal ones, and a fenced producer id
    (the broker lost or rejected our idempotence state, e.g. after an outage)."""
    return error.fatal() or error.code() in (KafkaError.PRODUCER_FENCED, KafkaError._FENCED,
                                             KafkaError.INVALID_PRODUCER_EPOCH)


class RequestSender:
    """Produces image requests; a background thread serves delivery reports (``producer.poll``)."""

    def __init__(self, settings: Settings, client_id: str = "labkit-sender"):
        self.settings = settings
        # Give up on a record after this long, and tell its sender so. Nobody is still waiting for
        # an upload after this: the HTTP request answered 503, so the image must not be scored
        # later behind the user's back (the producer would otherwise keep retrying for 30 s).
        self.delivery_timeout_s = settings.connect_timeout_s + 5
        self.client_id = client_id
        self._renew = threading.Lock()
        self._broken: str | None = None  # set by a fatal producer error: the next send() starts a new producer
        self.producer = self._new_producer()
        self._closed = threading.Event()
        # Delivery reports only arrive while someone calls poll(); forgetting it is a classic bug.
        self._poller = threading.Thread(target=self._poll, name=f"{client_id}-poll", daemon=True)
        self._poller.start()

    def _new_producer(self):
        return make_producer(self.settings, client_id=self.client_id, error_cb=self._on_error,
                             **{"message.timeout.ms": int(self.delivery_timeout_s * 1000)})

    def _on_error(self, error) -> None:
        """librdkafka's error callback: connection trouble (it retries by itself), or a *fatal* error.

        A fatal error (e.g. the broker fenced our idempotent producer id after a long outage)
        leaves this producer unable to send anything ever again. A service must not go on failing
        every upload, so the next send() replaces it.
        """
        if _producer_is_done_for(error):
            log.error("the Kafka producer hit a fatal error (%s); a new producer takes over", error)
            self._broken = str(error)

    def _poll(self) -> None:
        while not self._closed.is_set():
            try:
                self.producer.poll(0.1)
            except Exception:  # a failing callback must not stop delivery reports for everyone else
                log.exception("delivery report handler failed")

    def send(self, data: bytes, filename: str | None = None, labels: list[str] | tuple[str, ...] | None = None,
             ) -> tuple[ImageRequest, PreparedImage, Future]:
        """Produce one image (scored against ``labels`` if given); the future completes when the broker acknowledges it.

        Raises :class:`labkit.errors.BadImage` for bytes that are not an acceptable image and
        :class:`labkit.errors.WireFormatError` for unacceptable labels, before anything is sent.
        """
        labels = validate_labels(labels) if labels else None
        prepared = prepare_upload(data, self.settings)
        request = ImageRequest(id=new_request_id(), image=prepared.data, content_type=prepared.content_type,
                               filename=filename, labels=labels)
        acked: Future = Future()
        if self._broken:
            self._replace_producer()

        def on_delivery(error, message) -> None:
            if error is not None and _producer_is_done_for(error):
                log.error("the Kafka producer can send no more (%s); a new producer takes over", error)
                self._broken = str(error)
            if not acked.set_running_or_notify_cancel():
                return  # the caller stopped waiting (e.g. the upload timed out): nobody to tell
            if error is None:
                acked.set_result((message.partition(), message.offset()))
            else:
                acked.set_exception(RuntimeError(f"Kafka did not accept request {request.id}: {error}"))

        self.producer.produce(self.settings.requests_topic, key=request.key(), value=request.image,
                              headers=request.headers(), on_delivery=on_delivery)
        return request, prepared, acked

    def _replace_producer(self) -> None:
        with self._renew:
            if self._broken:
                old, self.producer, self._broken = self.producer, self._new_producer(), None
                old.purge()  # what it still holds fails now (its senders get their error), not in 30 s
                old.poll(0)

    def close(self, timeout: float = 10) -> None:
        self.producer.flush(timeout)
        self._closed.set()
        self._poller.join(timeout)


class ResultStore:
    """The most recent results by request id (bounded), dropping at-least-once duplicates."""

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._results: OrderedDict[str, ScoreResult] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, result: ScoreResult) -> bool:
        """Keep ``result``; False if this request id already had one (a duplicate from a retry)."""
        with self._lock:
            if result.id in self._results:
                return False
            self._results[result.id] = result
            while len(self._results) > self.capacity:
                self._results.popitem(last=False)
            return True

    def get(self, request_id: str) -> ScoreResult | None:
        with self._lock:
            return self._results.get(request_id)

    def all(self) -> list[ScoreResult]:
        with self._lock:
            return list(self._results.values())

    def __len__(self) -> int:
        return len(self._results)


class ResultsListener:
    """Calls ``on_result`` (from a background thread) for each result produced after ``start()``."""

    def __init__(self, settings: Settings, on_result: Callable[[ScoreResult], None],
                 client_id: str = "labkit-results-listener", replay_s: float = 0):
        self.settings = settings
        self.on_result = on_result
        self.client_id = client_id
        self.replay_s = replay_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.consumer = None

    def start(self) -> "ResultsListener":
        """Assign every results partition at its current end (or ``replay_s`` seconds back); returns once positioned.

        ``assign`` (not ``subscribe``): no consumer group, so no rebalance wait and no
        committed offsets; each listener independently reads everything new. A web replica
        replays the last minutes on start: results that arrived while it was restarting are
        read again, so a browser asking for them afterwards still gets them.
        """
        topic = self.settings.results_topic
        metadata = wait_for_topics(self.settings, [topic], who=self.client_id)
        partitions = sorted(metadata.topics[topic].partitions)
        self.consumer = make_consumer(self.settings, client_id=self.client_id)
        timeout = self.settings.connect_timeout_s
        ends = {p: self.consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in partitions}
        start = {p: TopicPartition(topic, p, end) for p, end in ends.items()}
        if self.replay_s > 0:
            since = now_ms() - int(self.replay_s * 1000)  # offsets_for_times: the first record at or after `since`
            for found in self.consumer.offsets_for_times([TopicPartition(topic, p, since) for p in partitions], timeout):
                if found.offset >= 0:  # -1: nothing that recent in this partition
                    start[found.partition] = TopicPartition(topic, found.partition, found.offset)
        self.consumer.assign(list(start.values()))
        self._thread = threading.Thread(target=self._run, name=self.client_id, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            message = self.consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                log.warning("results listener: %s", message.error())
                continue
            try:
                result = ScoreResult.from_json(message.value())
            except Exception as exc:
                log.warning("ignoring unreadable result at %s[%d]@%d: %s", message.topic(), message.partition(),
                            message.offset(), exc)
                continue
            try:
                self.on_result(result)
            except Exception:
                log.exception("result callback failed for %s", result.id)
        self.consumer.close()

    @property
    def alive(self) -> bool:
        """True while the listening thread runs."""
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout: float = 5) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
