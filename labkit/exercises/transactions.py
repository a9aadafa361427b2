"""Lesson 13's check: consume-transform-produce whose outputs and offsets commit together, once each."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from confluent_kafka import Consumer, ConsumerGroupTopicPartitions, IsolationLevel, KafkaError, Message, TopicPartition
from confluent_kafka.admin import OffsetSpec

from ..config import Settings
from ..kafka import client_config
from ..kafka.admin import engine_of, require_topics
from ..kafka.client_config import make_admin, make_consumer, make_producer
from ._feedback import require, solved
from ._setup import fresh_topic

#: The source topic the check writes: three keys, four records each, in two partitions.
KEYS = ("cat", "dog", "fox")
PER_KEY = 4
#: The failpoint crashes the learner's loop at the first transform after this many, inside an unfinished batch.
CRASH_AFTER = 4


class Crash(BaseException):
    """The failpoint: the transformer "dies" here (a BaseException, so no ``except Exception`` catches it)."""


def read_isolated(settings: Settings, topic: str, isolation: str, timeout_s: float = 15.0) -> list[Message]:
    """Each record of ``topic`` a consumer with ``isolation.level=isolation`` gets, partition by partition.

    It reads each partition from its start to its end (``enable.partition.eof``): the high
    watermark for ``read_uncommitted``, the last stable offset (LSO) for ``read_committed``.
    """
    partitions = sorted(require_topics(settings, [topic]).topics[topic].partitions)
    config: dict[str, Any] = {"isolation.level": isolation, "enable.partition.eof": True}
    reader = make_consumer(settings, client_id="labkit-reader", **config)
    try:
        reader.assign([TopicPartition(topic, p, 0) for p in partitions])
        records: list[Message] = []
        ended: set[int] = set()
        deadline = time.monotonic() + timeout_s
        while len(ended) < len(partitions):
            require(time.monotonic() < deadline, f"Reading {topic} ({isolation}) took over {timeout_s:.0f} s.")
            message = reader.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is None:
                records.append(message)
            elif error.code() == KafkaError._PARTITION_EOF:
                ended.add(message.partition() or 0)
        return sorted(records, key=lambda m: (m.partition() or 0, m.offset() or 0))
    finally:
        reader.close()


def stable_and_end_offsets(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """``{partition: (last stable offset, high watermark)}``: ``ListOffsets``' answer per isolation level."""
    partitions = sorted(require_topics(settings, [topic]).topics[topic].partitions)
    admin = make_admin(settings)
    spec = {TopicPartition(topic, p): OffsetSpec.latest() for p in partitions}
    answers = {
        level: {tp.partition: f.result().offset for tp, f in admin.list_offsets(spec, isolation_level=level).items()}
        for level in (IsolationLevel.READ_COMMITTED, IsolationLevel.READ_UNCOMMITTED)
    }
    return {
        p: (answers[IsolationLevel.READ_COMMITTED][p], answers[IsolationLevel.READ_UNCOMMITTED][p]) for p in partitions
    }


def committed_offsets(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """The group's committed offset on each partition of ``topic`` (-1: none), read from its coordinator.

    ``require_stable``: an offset still waiting on its transaction's outcome is not answered
    until the transaction ends (KIP-447).
    """
    partitions = sorted(require_topics(settings, [topic]).topics[topic].partitions)
    request = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p) for p in partitions])
    admin = make_admin(settings)  # kept until the answer comes: a client freed sooner never answers
    answer = admin.list_consumer_group_offsets([request], require_stable=True)[group].result(15)
    return {tp.partition: max(tp.offset, -1) for tp in answer.topic_partitions or []}


class Failpoint:
    """The ``transform`` handed to the learner: upper-cases a value, and once "crashes" inside a batch.

    It crashes at the first call after :data:`CRASH_AFTER` at which some inputs were transformed
    but their offsets are not committed yet (a batch in hand), once the outputs produced so far
    have reached the broker — so the crashed attempt's records are really there.
    """

    def __init__(self, settings: Settings, source: str, target: str, group: str):
        self.settings, self.source, self.target, self.group = settings, source, target, group
        self.calls = 0
        self.armed = True
        self.crashed_at: int | None = None
        self.reached_broker = False

    def __call__(self, value: bytes) -> bytes:
        require(isinstance(value, bytes), f"transform takes a record's value (bytes), not {type(value).__name__}.")
        done = self.calls
        self.calls += 1
        if self.armed and done >= CRASH_AFTER and done > sum(max(o, 0) for o in self._committed().values()):
            self.armed = False
            self.crashed_at = done
            self.reached_broker = self._wait_for_outputs(done)
            raise Crash(f"the check's failpoint: the transformer crashed before transforming input {done + 1}")
        return value.upper()

    def _committed(self) -> dict[int, int]:
        return committed_offsets(self.settings, self.group, self.source)

    def _wait_for_outputs(self, count: int, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if len(read_isolated(self.settings, self.target, "read_uncommitted")) >= count:
                return True
            time.sleep(0.1)
        return False


def _send_source(settings: Settings, topic: str) -> dict[str, list[bytes]]:
    """Write ``cat-0, dog-0, fox-0, cat-1 …`` keyed by animal; returns each key's values in order."""
    producer = make_producer(settings, client_id="labkit-exercise-setup")
    sent: dict[str, list[bytes]] = {key: [] for key in KEYS}
    for i in range(PER_KEY):
        for key in KEYS:
            value = f"{key}-{i}".encode()
            producer.produce(topic, key=key.encode(), value=value)
            sent[key].append(value)
    require(producer.flush(30) == 0, "The check could not write its source topic within 30 s; is the cluster up?")
    return sent


def _per_key(records: list[Message]) -> dict[str, list[bytes]]:
    keyed: dict[str, list[bytes]] = {}
    for message in records:
        keyed.setdefault((message.key() or b"").decode(), []).append(message.value() or b"")
    return keyed


def check_exactly_once(settings: Settings, transform_exactly_once: Callable[..., Any]) -> None:
    """Run the learner's loop on a new source topic, crash it mid-batch, run it again; read what came out.

    ``transform_exactly_once(settings, source_topic, target_topic, group, transform)`` must read
    ``source_topic`` in ``group`` and write ``transform(value)`` of each record, same key, to
    ``target_topic``, until the source is drained. The check then reads the target with both
    isolation levels and the group's committed offsets from the broker.
    """
    require(
        callable(transform_exactly_once),
        "`transform_exactly_once` should be a function: def transform_exactly_once(settings, source_topic, "
        "target_topic, group, transform): ...",
    )
    require(
        engine_of(settings) == "kafka",
        "Run the check against Apache Kafka: pass `cluster.settings` (the lab's Tansu broker shows aborted "
        "transactions to read_committed readers, so it cannot judge this exercise).",
    )
    source = fresh_topic(settings, "eos-source", partitions=2)
    target = fresh_topic(settings, "eos-target", partitions=2)
    group = f"{source}-transformer"
    sent = _send_source(settings, source)
    total = len(KEYS) * PER_KEY
    failpoint = Failpoint(settings, source, target, group)
    with _plain_commits() as plain:
        try:
            transform_exactly_once(settings, source, target, group, failpoint)
        except Crash:
            pass  # the "process" died: its clients are freed without a word (no LeaveGroup, no abort)
        gc.collect()
        require(
            failpoint.calls > 0, f"Your function never called `transform`: read {source} and transform each record."
        )
        require(
            failpoint.crashed_at is not None,
            f"The failpoint never found a batch in hand: after {failpoint.calls} transforms, every input was already "
            "committed each time. Work in batches of several records (consumer.consume(num_messages=3, ...)), one "
            "commit per batch.",
        )
        transform_exactly_once(settings, source, target, group, failpoint)  # restarted: it must finish the job
    ends = stable_and_end_offsets(settings, target)
    open_on = [p for p, (stable, end) in ends.items() if stable < end]
    require(
        not open_on,
        f"A transaction is still open on {target} (partition {open_on}: last stable offset < high watermark), so "
        "read_committed readers are stuck behind it. The crashed run's transaction stays open until a producer with "
        "the SAME transactional.id calls init_transactions(); give yours a fixed id (not a random one), and commit "
        "every transaction you begin.",
    )
    committed = _per_key(read_isolated(settings, target, "read_committed"))
    everything = read_isolated(settings, target, "read_uncommitted")
    expected = {key: [value.upper() for value in values] for key, values in sent.items()}
    twice = {key: sorted({v.decode() for v in got if got.count(v) > 1}) for key, got in committed.items()}
    twice = {key: values for key, values in twice.items() if values}
    require(
        not twice,
        f"read_committed shows outputs twice: {twice}. The crashed run produced them (and they became visible) but "
        "never committed its input offsets, so the rerun transformed those inputs again: at-least-once. Produce the "
        "batch's outputs in a transaction, add the input offsets to it with send_offsets_to_transaction(), then "
        "commit_transaction(): outputs and offsets together, or neither.",
    )
    require(
        not plain,
        f"Your loop committed offsets of {source} with consumer.commit() ({len(plain)} call(s)), outside "
        "the transaction: a crash between commit_transaction() and that commit makes the rerun transform those inputs "
        "again. Add them to the transaction instead: producer.send_offsets_to_transaction(consumer.position(...), "
        "consumer.consumer_group_metadata(), 30) before commit_transaction().",
    )
    missing = {key: [v.decode() for v in values if v not in committed.get(key, [])] for key, values in expected.items()}
    missing = {key: values for key, values in missing.items() if values}
    require(
        not missing,
        f"read_committed is missing outputs: {missing}. Their input offsets were committed without the outputs (an "
        "aborted transaction's offsets must not be committed separately), or your loop stopped before the source was "
        "drained. Commit offsets only inside the transaction, and loop until consume() returns nothing.",
    )
    wrong_order = {
        key: [v.decode() for v in committed.get(key, [])] for key in KEYS if committed.get(key) != expected[key]
    }
    require(
        not wrong_order,
        f"Outputs are out of order: {wrong_order}. "
        "Produce each output with its input's key (same key, same partition) in the order you consumed them.",
    )
    aborted = len(everything) - total
    require(
        aborted > 0 and failpoint.reached_broker,
        f"read_uncommitted shows no outputs of the crashed attempt: the {failpoint.crashed_at} inputs before the "
        "crash were transformed, but their batch's outputs never reached the broker. Produce each output as soon as "
        "you transform it, inside the batch's transaction (the check wants to see the aborted records exist).",
    )
    offsets = committed_offsets(settings, group, source)
    _, source_ends = zip(*stable_and_end_offsets(settings, source).values())
    require(
        list(offsets.values()) == list(source_ends),
        f"Group {group} committed {offsets} on {source}, not its end offsets {list(source_ends)}: every input done "
        "must have its offset committed, in the same transaction as its output.",
    )
    gap = sum(end for _, end in ends.values()) - len(everything)
    solved(
        f"{total} inputs → {total} outputs, once each and in order per key (read_committed). read_uncommitted also "
        f"shows the crashed attempt's {aborted} aborted output(s), and {gap} offsets hold transaction markers. "
        f"Group offsets {offsets} = the source's end."
    )


@contextmanager
def _plain_commits() -> Iterator[list[str]]:
    """Each ``Consumer.commit()`` call made, inside the block, by a consumer that ``make_consumer`` built.

    A transaction commits its input offsets through the producer (``send_offsets_to_transaction``,
    a TxnOffsetCommit request); a plain ``commit()`` is the consumer's own OffsetCommit, outside any
    transaction. Consumers made while the block runs are of a subclass that notes those calls.
    """
    seen: list[str] = []
    original = client_config.Consumer

    class NotingConsumer(Consumer):
        def commit(self, *args: Any, **kwargs: Any) -> Any:
            seen.append("commit()")
            return super().commit(*args, **kwargs)

    client_config.Consumer = NotingConsumer  # type: ignore[misc]
    try:
        yield seen
    finally:
        client_config.Consumer = original  # type: ignore[misc]
