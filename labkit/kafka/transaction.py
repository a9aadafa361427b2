"""Exactly-once: a batch's output and its consumed offsets in one Kafka transaction, all or nothing.

At-least-once (``labkit.kafka.checkpoint``) commits a batch's offsets after its results are
acknowledged; a crash in between makes the group redo the batch, and its results appear twice in
the topic (readers drop the duplicates by request id). A *transaction* closes that gap. The
producer (one ``transactional.id`` per processor) writes the results, then adds the batch's
offsets to the same transaction (``send_offsets_to_transaction``, KIP-98), then commits it:

* consumers reading ``isolation.level=read_committed`` (librdkafka's default; the Java client's
  default is ``read_uncommitted``) see the results only once the transaction commits, and never
  those of an aborted one;
* the offsets are committed by that same commit, so a crash anywhere before it leaves neither
  results nor offsets: the group redoes the batch, and only the redo becomes visible;
* a *zombie* — a processor that lost its partitions in a rebalance but has not noticed — is
  fenced: its offsets carry the group's generation (``consumer_group_metadata()``, KIP-447), and
  the coordinator refuses a commit from an old generation.

A transaction left open by a processor that died is aborted by the coordinator after
``transaction.timeout.ms`` (10 s here; Kafka's and librdkafka's default is 60 s). Until then
``read_committed`` readers of that partition wait at its *last stable offset*: the price of the
guarantee. The lab's Tansu broker shows aborted records to ``read_committed`` readers
(``tests/test_engines.py``), so labkit refuses exactly-once there.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from ..errors import LabkitError
from .checkpoint import ResultsNotAcknowledged
from .offsets import next_offsets

log = logging.getLogger(__name__)

#: How long a transaction may stay open before the coordinator aborts it (a dead processor's, say).
TRANSACTION_TIMEOUT_MS = 10_000


class TransactionalProducer:
    """One transactional producer at a time; a new one (same ``transactional.id``) after a fatal error.

    ``init_transactions()`` registers the id with its transaction coordinator, aborts whatever an
    earlier producer with the same id left open, and fences that producer for good.
    """

    def __init__(self, make: Callable[[], Producer], name: str, timeout_s: float):
        self._make = make
        self.name = name
        self.timeout_s = timeout_s
        self.current = self._start()

    def _start(self) -> Producer:
        producer = self._make()
        producer.init_transactions(self.timeout_s)
        return producer

    def renew(self) -> Producer:
        """A fresh producer: after a fatal error (fenced, or a lost epoch) the old one can do nothing more."""
        self.current = self._start()
        return self.current

    def flush(self, timeout: float) -> int:
        return self.current.flush(timeout)


class Transaction:
    """A batch as one transaction: ``produce`` its output, then :meth:`commit` output and offsets together."""

    def __init__(self, batch: list[Message], producers: TransactionalProducer, timeout_s: float):
        self.batch = batch
        self.timeout_s = timeout_s
        self._producers = producers
        self._producer = producers.current
        self._errors: list[str] = []
        self._producer.begin_transaction()

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers=None) -> None:
        """Produce one record of the batch's output inside the transaction (invisible until it commits)."""
        self._producer.produce(topic, key=key, value=value, headers=headers, on_delivery=self._on_delivery)
        self._producer.poll(0)

    def _on_delivery(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._errors.append(f"{message.topic()}: {error}")

    def commit(self, consumer) -> None:
        """Add the batch's offsets to the transaction and commit it; on failure, abort and raise.

        Raises :class:`ResultsNotAcknowledged` when the transaction was aborted (nothing of it is
        visible, no offset moved: the batch is redone), after renewing the producer if the error
        was fatal (e.g. this processor was fenced).
        """
        try:
            if self._errors:
                raise KafkaException(KafkaError(KafkaError._MSG_TIMED_OUT, "; ".join(self._errors[:3])))
            self._producer.send_offsets_to_transaction(
                next_offsets(self.batch), consumer.consumer_group_metadata(), self.timeout_s
            )
            self._commit()
        except KafkaException as exc:
            self._abort(exc.args[0])

    def _commit(self) -> None:
        """``commit_transaction``, retried while librdkafka says the error is retriable."""
        while True:
            try:
                self._producer.commit_transaction(self.timeout_s)
                return
            except KafkaException as exc:
                if not exc.args[0].retriable():
                    raise
                log.warning("%s: commit of a transaction failed (%s); retrying", self._producers.name, exc.args[0])

    def _abort(self, error: KafkaError) -> None:
        if error.fatal():
            log.error(
                "%s: the transactional producer can do no more (%s); a new one takes over", self._producers.name, error
            )
            self._producers.renew()  # init_transactions aborts what the old one left open
        else:
            try:
                self._producer.abort_transaction(self.timeout_s)
            except KafkaException as abort_error:
                log.error("%s: abort failed too (%s); a new producer takes over", self._producers.name, abort_error)
                self._producers.renew()
        raise ResultsNotAcknowledged(
            f"the batch's transaction was aborted ({error}); none of its results are visible and its offsets "
            "did not move, so it will be redone.",
            self.batch,
        )


def refuse_on_tansu(engine: str) -> None:
    """Exactly-once needs a broker whose ``read_committed`` readers skip aborted records: Apache Kafka."""
    if engine == "tansu":
        raise LabkitError(
            "LABKIT_EXACTLY_ONCE needs Apache Kafka: the lab's Tansu broker shows aborted transactions to "
            "read_committed readers. Start the lab with --engine kafka, or unset LABKIT_EXACTLY_ONCE."
        )
