"""The processor: a consumer-group member that turns image requests into CLIP results, at least once.

The loop, and why each step is where it is:

1. **poll** a batch of request records from the partitions the group assigned to us;
2. **decode** each one; a record that cannot be parsed or decoded goes to the dead-letter
   topic (with the error and its origin) and an error result is sent, so one bad image never
   stops the pipeline;
3. **score** the decoded images together in one CLIP forward pass;
4. **produce** one result per request and **wait until the broker has acknowledged** every
   result and dead letter (``flush``);
5. only then **commit** the batch's offsets.

If the process dies anywhere before step 5, the group hands the partitions to another member,
which re-reads from the last committed offset: requests may be scored twice (the web app drops
duplicate results by request id) but are never lost. That is "at-least-once" delivery.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from confluent_kafka import KafkaError, Message, TopicPartition

from .admin import require_topics
from .clients import make_consumer, make_producer
from .clip import ClipScorer, build_scorer
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
    committed: dict[tuple[str, int], int] = field(default_factory=dict)  # (topic, partition) → next offset


@dataclass
class _Decoded:
    message: Message
    request: ImageRequest
    pixels: torch.Tensor
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


class Processor:
    """Consume ``requests_topic`` in ``group_id``, score with CLIP, produce to ``results_topic``.

    ``run()`` blocks until ``stop()`` is called (from another thread or a signal handler).
    """

    def __init__(self, settings: Settings, scorer: ClipScorer | None = None, name: str | None = None,
                 on_result: Callable[[ScoreResult], None] | None = None):
        self.settings = settings
        self.name = name or f"processor-{socket.gethostname()}-{os.getpid()}"
        self._scorer = scorer
        self.on_result = on_result
        self.stats = ProcessorStats()
        self.ready = threading.Event()  # set once the group has given us our partitions
        self.assignment: list[int] = []
        self._stop = threading.Event()
        self._delivery_errors: list[str] = []

    @property
    def scorer(self) -> ClipScorer:
        if self._scorer is None:
            self._scorer = build_scorer(self.settings)
        return self._scorer

    def stop(self) -> None:
        """Ask the loop to finish its current batch, leave the group and return."""
        self._stop.set()

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        settings = self.settings
        require_topics(settings, [settings.requests_topic, settings.results_topic, settings.dead_letter_topic])
        scorer = self.scorer
        scorer.label_embeddings()  # embed the label set now, not on the first request
        consumer = make_consumer(settings, settings.group_id, client_id=self.name)
        producer = make_producer(settings, client_id=self.name)
        consumer.subscribe([settings.requests_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info("%s joining group %r on %s (model %s)", self.name, settings.group_id,
                 settings.requests_topic, scorer.model_id)
        try:
            while not self._stop.is_set():
                batch = self._next_batch(consumer)
                if batch:
                    self.process_batch(batch, consumer, producer)
        finally:
            producer.flush(10)
            consumer.close()  # leave the group now, so the others take over our partitions at once
            log.info("%s stopped after %d images", self.name, self.stats.scored)

    def _on_assign(self, consumer, partitions: list[TopicPartition]) -> None:
        self.assignment = sorted(tp.partition for tp in partitions)
        log.info("%s: %s — partitions %s of %s", READY_MESSAGE, self.name, self.assignment,
                 self.settings.requests_topic)
        self.ready.set()

    def _on_revoke(self, consumer, partitions: list[TopicPartition]) -> None:
        log.info("%s: partitions %s revoked (rebalance)", self.name, sorted(tp.partition for tp in partitions))

    def _next_batch(self, consumer) -> list[Message]:
        """Block up to 0.5 s for one record, then take what else arrives within ``max_batch_wait_ms``."""
        first = consumer.poll(0.5)
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

    # --- one batch ---------------------------------------------------------------------------------

    def process_batch(self, batch: list[Message], consumer, producer) -> None:
        """Decode, score, produce and commit one batch (see the module docstring for the order)."""
        settings = self.settings
        decoded: list[_Decoded] = []
        for message in batch:
            started_ms, t0 = now_ms(), time.perf_counter()
            try:
                request = ImageRequest.from_record(message.key(), message.value(), message.headers())
                pixels = self.scorer.preprocess(load_rgb(request.image, settings.max_image_pixels))
            except Exception as exc:  # any failure of *one record* is that record's problem only
                reason = str(exc) if isinstance(exc, LabkitError) else f"{type(exc).__name__}: {exc}"
                self._dead_letter(message, reason, producer)
                continue
            decoded.append(_Decoded(message, request, pixels, started_ms, (time.perf_counter() - t0) * 1000))

        if decoded:
            t0 = time.perf_counter()
            top = self.scorer.score_pixels(torch.stack([d.pixels for d in decoded]))
            inference_ms = (time.perf_counter() - t0) * 1000 / len(decoded)
            for item, labels in zip(decoded, top):
                done_ms = now_ms()
                result = ScoreResult(
                    id=item.request.id, status="ok", labels=labels, model=self.scorer.model_id,
                    batch_size=len(decoded), processor=self.name,
                    timings_ms=Timings(queued=max(item.started_ms - item.request.sent_at_ms, 0),
                                       decode=round(item.decode_ms, 2), inference=round(inference_ms, 2),
                                       total=max(done_ms - item.request.sent_at_ms, 0)),
                )
                self._produce_result(result, producer)
                t = result.timings_ms
                log.info("scored %s (p%d@%d) → %s %.1f%% | queued %.0f ms, decode %.1f ms, inference %.1f ms, "
                         "total %.0f ms, batch %d", result.id, item.message.partition(), item.message.offset(),
                         labels[0].label, labels[0].score * 100, t.queued, t.decode, t.inference, t.total,
                         len(decoded))

        # Wait for the broker to acknowledge every result and dead letter of this batch...
        remaining = producer.flush(30)
        if remaining or self._delivery_errors:
            errors, self._delivery_errors = self._delivery_errors, []
            raise LabkitError(
                f"{remaining} result(s) not acknowledged by the broker ({'; '.join(errors[:3]) or 'timeout'}); "
                "offsets were not committed, so a restarted processor will redo this batch."
            )
        # ...and only then commit: the next offset to read, per partition.
        next_offsets: dict[tuple[str, int], int] = {}
        for message in batch:
            key = (message.topic(), message.partition())
            next_offsets[key] = max(next_offsets.get(key, 0), message.offset() + 1)
        consumer.commit(offsets=[TopicPartition(t, p, o) for (t, p), o in next_offsets.items()],
                        asynchronous=False)
        self.stats.committed.update(next_offsets)
        self.stats.batches += 1
        self.stats.scored += len(decoded)

    def _on_delivery(self, error, message) -> None:
        if error is not None:
            self._delivery_errors.append(f"{message.topic()}: {error}")

    def _produce_result(self, result: ScoreResult, producer) -> None:
        producer.produce(self.settings.results_topic, key=result.id.encode(), value=result.to_json(),
                         on_delivery=self._on_delivery)
        producer.poll(0)
        if self.on_result:
            self.on_result(result)

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
