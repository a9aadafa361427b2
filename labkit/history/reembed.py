"""Re-embedding: after a model change, a consumer group of its own embeds the kept requests again.

A new model's vectors cannot be compared with the old one's, so the history needs every image
embedded again — and Kafka still holds the images (``image-requests``, as far back as its
``retention.ms``). Re-embedding is therefore one more consumer group on that topic, new, so it
starts at the earliest offset, doing what a CLIP processor does with the new model:

1. **poll** a batch of requests;
2. **decode and run** the ``clip`` task on them (:class:`labkit.batch.BatchScorer`, the
   processors' own code): a request meant for other tasks is skipped, and so is one CLIP cannot
   use (the processors dead-lettered it already: it never had a vector);
3. **produce** each vector to ``image-embeddings`` under the new model's name through a
   :class:`labkit.kafka.checkpoint.Checkpoint`: wait for the broker's acknowledgements, and
   only then **commit** the batch's offsets.

It reads to where ``image-requests`` ended when it started (``labkit.kafka.offsets``). Only
embeddings are produced, no results and no dead letters: the labels an upload was given stay
those it was shown. The sink stores the new vectors in an index version that holds the new
model's (``labkit.history.rebuild``); killed and started again with the same group, it carries
on from its last commit, and a vector produced twice is stored once (an upsert by request id).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from confluent_kafka import Consumer, Message

from ..batch import BatchScorer
from ..config import Settings
from ..errors import LabkitError
from ..kafka.checkpoint import Checkpoint, ResultsNotAcknowledged
from ..kafka.client_config import make_consumer, make_producer
from ..kafka.group_errors import raise_if_refused
from ..kafka.offsets import end_offsets, read_to_end
from ..kafka.producer import RenewableProducer
from ..records.wire import record_position
from ..tasks import ClipTask, build_task

if TYPE_CHECKING:
    from ..clip import Scorer

log = logging.getLogger(__name__)

#: Records polled, and images embedded, in one batch (a replay is throughput work: bigger than a processor's batch).
REEMBED_BATCH = 32
#: How long a batch's embeddings may take to be acknowledged (the producer's ``message.timeout.ms`` is 30 s).
ACK_TIMEOUT_S = 30.0


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
    """Embed every kept request again with ``settings``' CLIP model (or ``scorer``) in group ``group_id``.

    Returns once the group has read up to where ``image-requests`` ended when it started and
    nothing new came for ``idle_s``. Raises :class:`TimeoutError` after ``timeout_s``.
    """
    settings = settings.for_task(ClipTask.name)  # CLIP's task, with this re-embedding's model settings
    task = build_task(settings, scorer)
    task.load()  # PyTorch or ONNX Runtime: the model loads before the group is joined
    work = BatchScorer(task, settings, processor=f"reembed-{group_id}")
    stats = ReembedStats(task.model_id)
    consumer = make_consumer(settings, group_id, client_id="labkit-reembed")
    producers = RenewableProducer(partial(make_producer, settings, client_id="labkit-reembed"), name="reembed")
    assigned = threading.Event()

    def step() -> bool:
        batch = raise_if_refused(consumer.consume(REEMBED_BATCH, 0.2), group_id, settings.session_timeout_ms)
        if batch:
            _embed_batch(work, batch, consumer, producers, stats)
        return bool(batch)

    consumer.subscribe([settings.requests_topic], on_assign=lambda c, partitions: assigned.set())
    try:
        ends = end_offsets(consumer, [settings.requests_topic])
        log.info("reembed: group %s embedding %s with %s", group_id, settings.requests_topic, stats.model)
        read_to_end(consumer, step, ends, assigned.is_set, idle_s, timeout_s, who=f"re-embedding (group {group_id})")
    finally:
        consumer.close()
    log.info("reembed: %d embedded with %s, %d skipped", stats.embedded, stats.model, stats.skipped)
    return stats


def _embed_batch(
    work: BatchScorer, batch: list[Message], consumer: Consumer, producers: RenewableProducer, stats: ReembedStats
) -> None:
    """Embed and produce one batch's vectors; commit its offsets once the broker acknowledged every one."""
    scored = work.score(work.decode(batch))
    for rejected in scored.rejected:  # the CLIP processors dead-lettered this record; it has no vector to redo
        log.debug("reembed: skipped %s[%d]@%d: %s", *record_position(rejected.message), rejected.reason)
    checkpoint = Checkpoint(batch, producers, ACK_TIMEOUT_S)
    embedded = work.produce_embeddings(scored, checkpoint)
    try:
        checkpoint.wait_until_acknowledged()
    except ResultsNotAcknowledged as exc:  # nothing of this batch is committed
        raise LabkitError(f"re-embedding: {exc} Is Kafka up? Then run `labkit sink --reembed` again.") from None
    checkpoint.commit(consumer)  # refused (a rebalance): the group reads the batch again, and the upsert stores it once
    stats.embedded += embedded
    stats.skipped += len(scored.skipped) + len(scored.rejected)
