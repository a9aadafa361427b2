"""The processor: a consumer-group member that turns image requests into CLIP results, at least once.

The loop, and why each step is where it is:

1. **poll** a micro-batch: whatever is waiting, up to ``max_batch_size`` records, waiting at
   most ``max_batch_wait_ms`` for more (big batches use the CPU better; waiting adds latency);
2. **decode** each one, on a second thread while the previous batch is being scored; a
   record that cannot be parsed or decoded goes to the dead-letter topic (with the error and
   its origin) and an error result is sent, so one bad image never stops the pipeline;
3. **score** the decoded images together in one CLIP forward pass (per label set);
4. **produce** one result per request and **wait until the broker has acknowledged** every
   result and dead letter (``flush``);
5. only then **commit** the batch's offsets.

If the process dies anywhere before step 5, the group hands the partitions to another member,
which re-reads from the last committed offset: requests may be scored twice (the web app drops
duplicate results by request id) but are never lost. That is "at-least-once" delivery.

``LABKIT_FAILPOINT`` proves it: ``after-consume:N`` kills the process (SIGKILL, no clean-up)
after its Nth batch is polled and scored but before any result is produced; ``before-commit:N``
after the results are acknowledged but before the commit (so the next owner produces
duplicates). Notebook 07 and ``tests/test_crash.py`` use both.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, TopicPartition

from .admin import wait_for_topics
from .clients import make_consumer, make_producer
from .clip import Scorer, build_scorer
from .config import Settings
from .errors import LabkitError
from .images import load_rgb
from .wire import ImageRequest, ScoreResult, Timings, dead_letter_headers, now_ms

log = logging.getLogger(__name__)

#: The log line `labkit up` waits for before it reports the processor as started.
READY_MESSAGE = "processor ready"


@dataclass
class ProcessorStats:
    """Counters a test or notebook can read while the processor runs."""

    batches: int = 0
    scored: int = 0
    dead_lettered: int = 0


@dataclass
class _Decoded:
    message: Message
    request: ImageRequest
    pixels: Any  # the scorer's preprocessed 3×H×W input
    started_ms: int
    decode_ms: float


def _request_id_of(message: Message) -> str | None:
    """The request id in a record's key, if the key looks like one (for error results)."""
    key = message.key()
    try:
        text = key.decode("ascii") if key else ""
    except UnicodeDecodeError:
        return None
    return text if 0 < len(text) <= 64 and text.isprintable() else None


class ResultsNotAcknowledged(LabkitError):
    """The broker did not acknowledge a batch's results; ``batch`` holds its (uncommitted) records."""

    def __init__(self, message: str, batch: list[Message]):
        super().__init__(message)
        self.batch = batch


def _parse_failpoint(value: str | None) -> tuple[str, int] | None:
    """``"before-commit:3"`` → ``("before-commit", 3)`` (the format is checked by Settings)."""
    if not value:
        return None
    step, batch = value.split(":")
    return step, int(batch)


class Processor:
    """Consume ``requests_topic`` in ``group_id``, score with CLIP, produce to ``results_topic``.

    ``run()`` blocks until ``stop()`` is called (from another thread or a signal handler).
    """

    def __init__(self, settings: Settings, scorer: Scorer | None = None, name: str | None = None):
        self.settings = settings
        self.name = name or f"processor-{socket.gethostname()}-{os.getpid()}"
        self._scorer = scorer
        self.stats = ProcessorStats()
        self.ready = threading.Event()  # set once the group has given us our partitions
        self.assignment: list[int] = []
        self._stop = threading.Event()
        self._delivery_errors: list[str] = []
        self._consumer = self._producer = None  # set by run()
        self._pending: tuple[list[Message], Future] | None = None  # polled, decoding, not yet scored
        self._thread: threading.Thread | None = None  # set by start_in_thread()
        self.error: BaseException | None = None  # what ended a background loop, if anything
        self._failpoint = _parse_failpoint(settings.failpoint)

    @property
    def scorer(self) -> Scorer:
        if self._scorer is None:
            self._scorer = build_scorer(self.settings)
        return self._scorer

    def stop(self, timeout: float = 15) -> None:
        """Ask the loop to finish its current batch, leave the group and return (waits for a background loop)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while a loop started by :meth:`start_in_thread` is alive."""
        return self._thread is not None and self._thread.is_alive()

    def start_in_thread(self, timeout: float = 60, wait: bool = True) -> "Processor":
        """Run the loop on a background thread (notebooks, tests); return once the group has given it partitions.

        Several processors in one process share one scorer: the model is loaded once and ONNX
        Runtime releases the GIL while it computes. An error in the loop is kept in ``error``.
        ``wait=False`` returns at once (``ready`` is set later).
        """
        def run() -> None:
            try:
                self.run()
            except BaseException as exc:  # noqa: BLE001 — kept for the caller, who decides what to do
                self.error = exc
                log.error("%s stopped: %s", self.name, exc)

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if wait and not self.ready.wait(timeout):
            raise LabkitError(f"{self.name} got no partitions within {timeout:.0f} s "
                              f"({self.error or 'is the broker up, and the topic created?'})")
        return self

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        settings = self.settings
        wait_for_topics(settings, [settings.requests_topic, settings.results_topic, settings.dead_letter_topic],
                        who=self.name)
        scorer = self.scorer  # loads the model, picks the backend and runs the warm-up batch
        consumer = make_consumer(settings, settings.group_id, client_id=self.name)
        self._consumer, self._producer = consumer, self._new_producer()
        consumer.subscribe([settings.requests_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("%s joining group %r on %s (model %s, backend %s)", self.name, settings.group_id,
                 settings.requests_topic, scorer.model_id, scorer.backend)
        decoder = ThreadPoolExecutor(1, thread_name_prefix=f"{self.name}-decode")
        try:
            while not self._stop.is_set():
                # Block for new records only when nothing is waiting to be scored.
                batch = self._next_batch(consumer, block=self._pending is None)
                decoding = (batch, decoder.submit(self._decode_all, batch)) if batch else None
                try:
                    self._finish_pending()  # score batch N while batch N+1 decodes
                except ResultsNotAcknowledged as exc:  # Kafka away: redo both batches once it is back
                    self._rewind(exc, exc.batch + (batch or []))
                    decoding = None
                self._pending = decoding
            self._finish_pending()
        finally:
            decoder.shutdown()
            self._producer.flush(10)
            consumer.close()  # leave the group now, so the others take over our partitions at once
            log.info("%s stopped after %d images", self.name, self.stats.scored)

    @property
    def _delivery_timeout_s(self) -> float:
        """How long a batch's results may take to be acknowledged: well inside ``max.poll.interval.ms``,
        or the group would throw this member out while it waits."""
        return self.settings.max_poll_interval_ms * 0.6 / 1000

    def _new_producer(self):
        return make_producer(self.settings, client_id=self.name,
                             **{"message.timeout.ms": int(self._delivery_timeout_s * 1000)})

    def _rewind(self, exc: Exception, messages: list[Message]) -> None:
        """After results were not acknowledged: read these records again, with a fresh producer.

        Nothing was committed, so nothing is lost either way; rewinding just lets this process
        carry on by itself when Kafka is back, instead of dying and waiting for a restart.
        """
        log.warning("%s: %s Re-reading %d record(s) in 2 s.", self.name, exc, len(messages))
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            key = (message.topic(), message.partition())
            first[key] = min(first.get(key, message.offset()), message.offset())
        for (topic, partition), offset in first.items():
            try:
                self._consumer.seek(TopicPartition(topic, partition, offset))
            except KafkaException:  # no longer ours (the group moved it): its next owner reads from the commit
                pass
        old, self._producer = self._producer, self._new_producer()
        old.purge()  # its failed results are dropped; the batch will produce them again
        self._stop.wait(2)

    def _on_assign(self, consumer, partitions: list[TopicPartition]) -> None:
        self.assignment = sorted(tp.partition for tp in partitions)
        log.info("%s: %s — partitions %s of %s", READY_MESSAGE, self.name, self.assignment,
                 self.settings.requests_topic)
        self.ready.set()

    def _on_revoke(self, consumer, partitions: list[TopicPartition]) -> None:
        # Runs inside poll(), on this thread: finish (and commit) the batch in hand while the
        # partitions are still ours, or another member would redo it.
        self._finish_pending()
        log.info("%s: partitions %s revoked (rebalance)", self.name, sorted(tp.partition for tp in partitions))

    def _next_batch(self, consumer, block: bool = True) -> list[Message]:
        """Up to ``max_batch_size`` records: the first within 0.5 s (or none if not ``block``),
        then whatever else arrives within ``max_batch_wait_ms``."""
        first = consumer.poll(0.5 if block else 0)
        if first is None:
            return []
        batch = [first]
        if self.settings.max_batch_size > 1:
            batch += consumer.consume(self.settings.max_batch_size - 1, self.settings.max_batch_wait_ms / 1000)
        good = []
        for message in batch:
            if message.error():
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: consumer error: %s", self.name, message.error())
            else:
                good.append(message)
        return good

    def _finish_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            batch, decoding = pending
            self.process_batch(batch, self._consumer, self._producer, decoded=decoding.result())

    # --- one batch ---------------------------------------------------------------------------------

    def _decode_all(self, batch: list[Message]) -> list[_Decoded | tuple[Message, str]]:
        """Each record decoded to model input, or (record, reason) when it cannot be."""
        side = self.scorer.input_size
        out: list[_Decoded | tuple[Message, str]] = []
        for message in batch:
            started_ms, t0 = now_ms(), time.perf_counter()
            try:
                request = ImageRequest.from_record(message.key(), message.value(), message.headers())
                image = load_rgb(request.image, self.settings.max_image_pixels, draft_side=side)
                pixels = self.scorer.preprocess(image)
            except Exception as exc:  # any failure of *one record* is that record's problem only
                out.append((message, str(exc) if isinstance(exc, LabkitError) else f"{type(exc).__name__}: {exc}"))
                continue
            out.append(_Decoded(message, request, pixels, started_ms, (time.perf_counter() - t0) * 1000))
        return out

    def process_batch(self, batch: list[Message], consumer, producer,
                      decoded: list[_Decoded | tuple[Message, str]] | None = None) -> None:
        """Decode (unless done already), score, produce and commit one batch (see the module docstring)."""
        ready: list[_Decoded] = []
        for item in decoded if decoded is not None else self._decode_all(batch):
            if isinstance(item, _Decoded):
                ready.append(item)
            else:
                self._dead_letter(item[0], item[1], producer)

        # Requests with the same candidate labels are scored together (usually: all of them).
        by_labels: dict[tuple[str, ...] | None, list[_Decoded]] = {}
        for item in ready:
            by_labels.setdefault(item.request.labels, []).append(item)
        scored = []
        for labels, group in by_labels.items():
            t0 = time.perf_counter()
            top = self.scorer.score_pixels([d.pixels for d in group], labels)
            scored.append((group, top, (time.perf_counter() - t0) * 1000 / len(group)))
        self._maybe_crash("after-consume")
        for group, top, inference_ms in scored:
            for item, scores in zip(group, top):
                self._emit(item, scores, inference_ms, len(ready), producer)

        # Wait for the broker to acknowledge every result and dead letter of this batch...
        remaining = producer.flush(self._delivery_timeout_s + 1)
        if remaining or self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            raise ResultsNotAcknowledged(
                f"{remaining} result(s) not acknowledged by the broker ({'; '.join(errors[:3]) or 'timeout'}); "
                "offsets were not committed, so this batch will be redone.", batch)
        self._maybe_crash("before-commit")
        # ...and only then commit: the next offset to read, per partition.
        next_offsets: dict[tuple[str, int], int] = {}
        for message in batch:
            key = (message.topic(), message.partition())
            next_offsets[key] = max(next_offsets.get(key, 0), message.offset() + 1)
        try:
            consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
                            asynchronous=False)
        except KafkaException as exc:
            # E.g. a rebalance moved these partitions away mid-batch: the new owner re-reads from the
            # last commit, so the results may come twice (dropped by request id), never zero times.
            log.warning("%s: commit of %s refused (%s); the group will redo those records", self.name,
                        next_offsets, exc.args[0])
            return
        self.stats.batches += 1
        self.stats.scored += len(ready)

    def _maybe_crash(self, step: str) -> None:
        """SIGKILL this whole process if ``LABKIT_FAILPOINT`` names ``step`` of the batch now in hand."""
        if self._failpoint and self._failpoint == (step, self.stats.batches + 1):
            log.warning("%s: failpoint %s:%d — killing this process now (SIGKILL, no clean-up)",
                        self.name, step, self.stats.batches + 1)
            logging.shutdown()
            os.kill(os.getpid(), signal.SIGKILL)

    def _emit(self, item: _Decoded, labels, inference_ms: float, batch_size: int, producer) -> None:
        done_ms = now_ms()
        result = ScoreResult(
            id=item.request.id, status="ok", labels=labels, model=self.scorer.model_id,
            batch_size=batch_size, processor=self.name,
            timings_ms=Timings(queued=max(item.started_ms - item.request.sent_at_ms, 0),
                               decode=round(item.decode_ms, 2), inference=round(inference_ms, 2),
                               total=max(done_ms - item.request.sent_at_ms, 0)),
        )
        self._produce_result(result, producer)
        t = result.timings_ms
        log.info("scored %s (p%d@%d) → %s %.1f%% | queued %.0f ms, decode %.1f ms, inference %.1f ms, "
                 "total %.0f ms, batch %d", result.id, item.message.partition(), item.message.offset(),
                 labels[0].label, labels[0].score * 100, t.queued, t.decode, t.inference, t.total, batch_size)

    def _on_delivery(self, error, message) -> None:
        if error is not None:
            self._delivery_errors.append(f"{message.topic()}: {error}")

    def _produce_result(self, result: ScoreResult, producer) -> None:
        producer.produce(self.settings.results_topic, key=result.id.encode(), value=result.to_json(),
                         on_delivery=self._on_delivery)
        producer.poll(0)

    def _dead_letter(self, message: Message, reason: str, producer) -> None:
        """Park a bad record in the dead-letter topic and tell its sender (if we know who) it failed."""
        log.warning("dead-lettered %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), reason)
        producer.produce(
            self.settings.dead_letter_topic, key=message.key(), value=message.value(),
            headers=dead_letter_headers(message.headers(), reason, message.topic(), message.partition(),
                                        message.offset()),
            on_delivery=self._on_delivery,
        )
        self.stats.dead_lettered += 1
        request_id = _request_id_of(message)
        if request_id:
            self._produce_result(ScoreResult(id=request_id, status="error", error=reason,
                                             model=self.scorer.model_id, processor=self.name), producer)
