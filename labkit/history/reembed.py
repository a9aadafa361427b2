"""Re-embedding: after a model change, a consumer group of its own reads the kept requests from the start and embeds them again.

A new model's vectors cannot be compared with the old one's, so the history needs every image
embedded again — and Kafka still holds the images (``image-requests``, as far back as its
``retention.ms``). Re-embedding is therefore one more consumer group on that topic, new, so it
starts at the earliest offset:

1. **poll** a batch of requests (those meant for the ``clip`` task: the others never had a vector);
2. **embed** their images with the new model, as the CLIP processors would;
3. **produce** each vector to ``image-embeddings`` under the new model's name, wait for the
   broker's acknowledgements, and only then **commit** the batch's offsets.

Only embeddings are produced, no results: the labels an upload was given stay those it was
shown. The sink stores the new vectors in an index version that holds the new model's
(``labkit.history.rebuild``); killed and started again with the same group, it carries on from
its last commit, and a vector produced twice is stored once (an upsert by request id).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from confluent_kafka import TopicPartition

from ..config import Settings
from ..errors import LabkitError
from ..images import load_rgb
from ..kafka.checkpoint import next_offsets
from ..kafka.client_config import make_consumer, make_producer
from ..kafka.group_errors import raise_if_refused
from ..records.embeddings import encode_embedding
from ..records.wire import ImageRequest, record_headers

if TYPE_CHECKING:
    from ..clip import Scorer

log = logging.getLogger(__name__)

#: Images embedded in one forward pass (a replay is throughput work: bigger than a processor's batch).
REEMBED_BATCH = 32


@dataclass
class ReembedStats:
    """What one re-embedding did."""

    model: str
    embedded: int = 0
    skipped: int = 0  # meant for other tasks, or not an image (the processors dead-lettered those)


def reembed(
    settings: Settings,
    group_id: str,
    scorer: Scorer | None = None,
    idle_s: float = 2.0,
    timeout_s: float = 3600.0,
) -> ReembedStats:
    """Embed every kept request again with ``settings``' CLIP model (or ``scorer``), in group ``group_id``, to the end.

    Returns once the group has read up to where ``image-requests`` ended when it started and
    nothing new came for ``idle_s``. Raises :class:`TimeoutError` after ``timeout_s``.
    """
    from ..clip import build_scorer  # PyTorch or ONNX Runtime: only a re-embedding needs a model

    scorer = scorer or build_scorer(settings)
    stats = ReembedStats(scorer.model_id)
    consumer = make_consumer(settings, group_id, client_id="labkit-reembed")
    producer = make_producer(settings, client_id="labkit-reembed")
    assigned: list[bool] = []
    failed: list = []  # this batch's delivery errors, reported by the producer's callback during flush()

    def failures(err, _message) -> None:
        if err is not None:
            failed.append(err)

    consumer.subscribe([settings.requests_topic], on_assign=lambda c, parts: assigned.append(True))
    try:
        ends = _end_offsets(consumer, settings.requests_topic)
        log.info("reembed: group %s embedding %s with %s", group_id, settings.requests_topic, stats.model)
        deadline, quiet_since = time.monotonic() + timeout_s, time.monotonic()
        while (
            not assigned
            or time.monotonic() - quiet_since < idle_s
            or not _reached(consumer, settings.requests_topic, ends)
        ):
            if time.monotonic() > deadline:
                raise TimeoutError(f"re-embedding had not reached the end of the requests after {timeout_s:.0f} s")
            batch = raise_if_refused(consumer.consume(REEMBED_BATCH, 0.2), group_id, settings.session_timeout_ms)
            if not batch:
                continue
            quiet_since = time.monotonic()
            failed.clear()
            _embed_batch(settings, scorer, batch, producer, stats, on_delivery=failures)
            if producer.flush(30) != 0 or failed:  # not all acknowledged: nothing of this batch is committed
                raise LabkitError(
                    f"re-embedding: the broker did not acknowledge the embeddings ({failed[0] if failed else 'timeout'});"
                    " is Kafka up? Then run `labkit sink --reembed` again."
                )
            consumer.commit(offsets=next_offsets(batch), asynchronous=False)
    finally:
        consumer.close()
    log.info("reembed: %d embedded with %s, %d skipped", stats.embedded, stats.model, stats.skipped)
    return stats


def _embed_batch(settings: Settings, scorer: Scorer, batch, producer, stats: ReembedStats, on_delivery) -> None:
    requests, pixels = [], []
    for message in batch:
        try:
            request = ImageRequest.from_record(message.key(), message.value(), record_headers(message))
            if not request.wants("clip"):
                stats.skipped += 1
                continue
            pixels.append(scorer.preprocess(load_rgb(request.image, draft_side=scorer.input_size)))
            requests.append(request)
        except Exception as exc:  # the CLIP processors dead-lettered this record; it has no vector to redo
            log.debug("reembed: skipped %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), exc)
            stats.skipped += 1
    if not pixels:
        return
    for request, vector in zip(requests, scorer.image_embeddings(pixels)):
        value, headers = encode_embedding(vector, scorer.model_id)
        producer.produce(
            settings.embeddings_topic, key=request.id.encode(), value=value, headers=headers, on_delivery=on_delivery
        )
    stats.embedded += len(requests)


def _end_offsets(consumer, topic: str) -> dict[int, int]:
    """The end of each partition of ``topic`` that holds records, as of now."""
    metadata = consumer.list_topics(topic, timeout=10).topics[topic]
    ends = {}
    for partition in metadata.partitions:
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=10)
        if high > low:
            ends[partition] = high
    return ends


def _reached(consumer, topic: str, ends: dict[int, int]) -> bool:
    """Whether the consumer has read up to ``ends`` on every partition named there."""
    if not ends:
        return True
    partitions = [TopicPartition(topic, partition) for partition in ends]
    # position() is where this consumer has read to: invalid (negative) until it has consumed from a partition, as
    # when the group's committed offsets are already at the end; then the commit says where it stands.
    read = {tp.partition: tp.offset for tp in consumer.position(partitions)}
    if any(offset < 0 for offset in read.values()):
        read |= {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=10) if read[tp.partition] < 0}
    return all(read[partition] >= end for partition, end in ends.items())
