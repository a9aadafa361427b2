"""A batch's checkpoint: produce, wait for the broker's acknowledgement, then commit — or rewind with a fresh producer.

Three pieces, used by the processor's loop (``labkit.processor``) and, for the producer part,
by the web's and the notebooks' :class:`labkit.request_sender.RequestSender`:

* :class:`RenewableProducer`: one producer at a time, replaced by a new one once the old one
  can never deliver again (a *fatal* librdkafka error, or a fenced producer id);
* :class:`Checkpoint`: one batch's way out — ``produce`` → ``wait_until_acknowledged`` →
  ``commit``. Committing only after the acknowledgement is what makes the processor
  at-least-once: if it dies in between, its group re-reads the batch from the last commit;
* :func:`rewind`: when the acknowledgement never came (Kafka away), seek back to the batch's
  first records and renew the producer, so the batch is simply done again once Kafka is back.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer, TopicPartition

from ..errors import LabkitError
from ..records.wire import record_position

log = logging.getLogger(__name__)


class ResultsNotAcknowledged(LabkitError):
    """The broker did not acknowledge a batch's results; ``batch`` holds its (uncommitted) records."""

    def __init__(self, message: str, batch: list[Message]):
        super().__init__(message)
        self.batch = batch


def producer_is_done_for(error: KafkaError) -> bool:
    """Errors after which this producer will never deliver again: fatal ones, and a fenced producer id
    (the broker lost or rejected our idempotence state, e.g. after an outage)."""
    return error.fatal() or error.code() in (
        KafkaError.PRODUCER_FENCED,
        KafkaError._FENCED,
        KafkaError.INVALID_PRODUCER_EPOCH,
    )


class RenewableProducer:
    """The producer to use now; a new one takes over once the current one can send no more.

    A fatal error (e.g. the broker fenced our idempotent producer id after a long outage) leaves
    a librdkafka producer unable to send anything ever again, and a service must not go on
    failing every record. librdkafka reports it through the producer's ``error_cb`` (wired here)
    or a delivery report (pass it to :meth:`failed`); the next :meth:`get` then starts a new
    producer. :meth:`renew` replaces the producer at once (the processor does after a rewind).
    """

    def __init__(self, make: Callable[..., Producer], name: str = "labkit-producer"):
        """``make(error_cb=...)`` builds one producer (e.g. ``kafka_config.make_producer`` with its settings bound)."""
        self._make = make
        self.name = name
        self._lock = threading.Lock()
        self._broken: str | None = None
        self.current: Producer = self._start()

    def _start(self) -> Producer:
        producer: Producer | None = None

        def on_error(error: KafkaError) -> None:
            # librdkafka's error callback, served by this producer's poll()/flush(): connection trouble
            # (it retries by itself) or a fatal error.
            self.failed(producer, error)

        producer = self._make(error_cb=on_error)
        return producer

    @property
    def broken(self) -> str | None:
        """The error that finished the current producer, if one did (the next :meth:`get` replaces it)."""
        return self._broken

    def failed(self, producer: Producer | None, error: KafkaError) -> None:
        """Note ``producer``'s ``error``: if it can never deliver again (and is current), the next get() renews it."""
        if producer is self.current and producer_is_done_for(error) and not self._broken:
            log.error("%s: the Kafka producer can send no more (%s); a new producer takes over", self.name, error)
            self._broken = str(error)

    def get(self) -> Producer:
        """The producer to use now: a new one if the current one hit a fatal error."""
        if self._broken:
            self.renew(only_if_broken=True)
        return self.current

    def renew(self, only_if_broken: bool = False) -> Producer:
        """Start a new producer; the old one drops what it still holds (its senders get their error now)."""
        with self._lock:
            if only_if_broken and not self._broken:
                return self.current  # another thread renewed it first
            old, self.current, self._broken = self.current, self._start(), None
        old.purge()  # what it still holds fails now, not after message.timeout.ms
        old.poll(0)  # and its delivery reports say so
        return self.current

    def poll(self, timeout: float = 0) -> int:
        """Serve the current producer's delivery reports and callbacks."""
        return self.current.poll(timeout)

    def flush(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for the current producer's records to be acknowledged; returns how many are not."""
        return self.current.flush(timeout)


class Checkpoint:
    """One batch on its way out: what it produces, then its offsets — committed only once all of it is acknowledged."""

    def __init__(self, batch: list[Message], producers: RenewableProducer, timeout_s: float):
        self.batch = batch
        self.timeout_s = timeout_s
        self._producers = producers
        self._producer = producers.get()  # the whole batch goes through one producer
        self._errors: list[str] = []

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers=None) -> None:
        """Produce one record of this batch's output (a result or a dead letter)."""
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
                f"{remaining} result(s) not acknowledged by the broker ({'; '.join(errors[:3]) or 'timeout'}); "
                "offsets were not committed, so this batch will be redone.",
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
    """Make ``consumer`` read ``messages`` again (from the first one of each partition) and renew the producer.

    For a batch whose output was not acknowledged: nothing was committed, so nothing is lost either
    way; rewinding lets the process carry on by itself once Kafka is back, instead of dying and
    waiting for a restart. A partition that is no longer ours is skipped: its next owner reads it
    from the last commit. The old producer drops the batch's unacknowledged records; the batch
    produces them again.
    """
    seek_back(consumer, messages)
    producers.renew()


def next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """Per partition, the offset after the last of ``messages``: what a consumer commits once they are all done."""
    ends: dict[tuple[str, int], int] = {}
    for message in messages:
        topic, partition, offset = record_position(message)
        ends[topic, partition] = max(ends.get((topic, partition), 0), offset + 1)
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in ends.items()]


def seek_back(consumer, messages: list[Message]) -> None:
    """Make ``consumer`` read ``messages`` again, from the first one of each partition it still owns.

    A partition that is no longer ours is skipped: its next owner reads it from the last commit.
    """
    first: dict[tuple[str, int], int] = {}
    for message in messages:
        topic, partition, offset = record_position(message)
        first[topic, partition] = min(first.get((topic, partition), offset), offset)
    for (topic, partition), offset in first.items():
        try:
            consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException:  # no longer ours (the group moved it): its next owner reads from the commit
            pass
