"""A batch's checkpoint: produce, await the acknowledgement, commit; or rewind with a fresh producer.

Used by the processor's loop (``labkit.processor``) and by re-embedding (``labkit.history.reembed``):

* :class:`Checkpoint`: one batch's way out — ``produce`` → ``wait_until_acknowledged`` →
  ``commit``. Committing only after the acknowledgement is what makes a consumer group
  at-least-once: if its member dies in between, the group re-reads the batch from the last commit;
* :func:`rewind`: when the acknowledgement never came (Kafka away), seek back to the batch's
  first records and renew the producer, so the batch is simply done again once Kafka is back.

Its parts live beside it: the producer that can be replaced by a fresh one in
``labkit.kafka.producer``, the offsets to commit or seek back to in ``labkit.kafka.offsets``.
"""

from __future__ import annotations

import logging

from confluent_kafka import KafkaError, KafkaException, Message

from ..errors import LabkitError
from .offsets import next_offsets, seek_back
from .producer import RenewableProducer

log = logging.getLogger(__name__)


class ResultsNotAcknowledged(LabkitError):
    """The broker did not acknowledge all of a batch's output; ``batch`` holds its (uncommitted) records."""

    def __init__(self, message: str, batch: list[Message]):
        super().__init__(message)
        self.batch = batch


class Checkpoint:
    """One batch on its way out: its output, then its offsets, committed once all output is acknowledged."""

    def __init__(self, batch: list[Message], producers: RenewableProducer, timeout_s: float):
        self.batch = batch
        self.timeout_s = timeout_s
        self._producers = producers
        self._producer = producers.get()  # the whole batch goes through one producer
        self._errors: list[str] = []

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers=None) -> None:
        """Produce one record of this batch's output (a result, a dead letter or an embedding)."""
        self._producer.produce(topic, key=key, value=value, headers=headers, on_delivery=self._on_delivery)
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._errors.append(f"{message.topic()}: {error}")
            self._producers.failed(self._producer, error)

    def wait_until_acknowledged(self) -> None:
        """Block until the broker has acknowledged every record produced (``flush``).

        Raises :class:`ResultsNotAcknowledged` if one failed or ``timeout_s`` passed first: the
        offsets must then not be committed, and the batch has to be done again.
        """
        remaining = self._producer.flush(self.timeout_s)
        if remaining or self._errors:
            errors, self._errors = self._errors, []
            raise ResultsNotAcknowledged(
                f"{remaining} record(s) not acknowledged by the broker ({'; '.join(errors[:3]) or 'timeout'}); "
                "the batch's offsets were not committed, so its group will read it again.",
                self.batch,
            )

    def commit(self, consumer) -> bool:
        """Commit, per partition, the offset after the batch's last record; False if the group refused.

        A refusal (e.g. a rebalance moved the partitions away mid-batch) loses nothing: their new
        owner re-reads from the last commit, so the results may come twice (dropped by request
        id), never zero times.
        """
        offsets = next_offsets(self.batch)
        try:
            consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            log.warning(
                "%s: commit of %s refused (%s); the group will redo those records",
                self._producers.name,
                {(tp.topic, tp.partition): tp.offset for tp in offsets},
                exc.args[0],
            )
            return False
        return True


def rewind(consumer, messages: list[Message], producers: RenewableProducer) -> None:
    """Make ``consumer`` read ``messages`` again (from each partition's first one) and renew the producer.

    For a batch whose output was not acknowledged: nothing was committed, so nothing is lost either
    way; rewinding lets the process carry on by itself once Kafka is back, instead of dying and
    waiting for a restart. A partition that is no longer ours is skipped: its next owner reads it
    from the last commit. The old producer drops the batch's unacknowledged records; the batch
    produces them again.
    """
    seek_back(consumer, messages)
    producers.renew()
