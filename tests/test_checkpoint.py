"""The checkpoint on a real broker behind a cuttable network.

No commit before the acknowledgement, a rewind re-reads the batch with a fresh producer; and a
group reading to the end offsets it took.
"""

from __future__ import annotations

import threading
from functools import partial

import pytest
from confluent_kafka import TopicPartition

from labkit._net import free_port
from labkit.kafka.admin import create_topics, read_topic
from labkit.kafka.checkpoint import Checkpoint, ResultsNotAcknowledged, rewind
from labkit.kafka.client_config import make_consumer, make_producer
from labkit.kafka.engines import make_broker
from labkit.kafka.offsets import end_offsets, lag, next_offsets, reached, read_to_end
from labkit.kafka.producer import RenewableProducer
from labkit.ops.chaos import ChaosProxy


def _take(consumer, count: int, timeout: float = 30) -> list:
    records = []
    while len(records) < count:
        got = consumer.consume(count - len(records), timeout)
        assert got, f"only {len(records)} of {count} records arrived"
        records += [m for m in got if not m.error()]
    return records


def test_nothing_is_committed_until_the_output_is_acknowledged_and_a_rewind_reads_the_batch_again(settings):
    broker_port, proxy_port = free_port(), free_port()
    network = ChaosProxy(proxy_port, broker_port).start()
    broker = make_broker(broker_port, advertised_port=proxy_port).start()
    own = settings.model_copy(update={"bootstrap": broker.bootstrap_servers, "partitions": 1})
    create_topics(own)
    requests = TopicPartition(own.requests_topic, 0)
    producer = make_producer(own)
    for n in range(3):
        producer.produce(own.requests_topic, key=f"in-{n}".encode(), value=b"x")
    assert producer.flush(10) == 0
    consumer = make_consumer(own, own.group_id)
    consumer.assign([TopicPartition(own.requests_topic, 0, 0)])
    producers = RenewableProducer(partial(make_producer, own, **{"message.timeout.ms": 1500}), name="checkpoint-test")
    try:
        batch = _take(consumer, 3)
        network.cut()  # Kafka away while the batch's output is produced
        checkpoint = Checkpoint(batch, producers, timeout_s=5)
        for message in batch:
            checkpoint.produce(own.results_topic, key=message.key(), value=b"result")
        with pytest.raises(ResultsNotAcknowledged) as failed:
            checkpoint.wait_until_acknowledged()
        assert failed.value.batch is batch and "timed out" in str(failed.value)

        old = producers.current
        rewind(consumer, batch, producers)  # back to the batch's first record, with a new producer
        assert producers.current is not old
        network.restore()
        assert consumer.committed([requests], timeout=10)[0].offset < 0  # nothing was committed

        again = _take(consumer, 3)  # the same records once more
        assert [(m.key(), m.offset()) for m in again] == [(m.key(), m.offset()) for m in batch]
        checkpoint = Checkpoint(again, producers, timeout_s=10)
        for message in again:
            checkpoint.produce(own.results_topic, key=message.key(), value=b"result")
        checkpoint.wait_until_acknowledged()
        assert checkpoint.commit(consumer)
        assert consumer.committed([requests], timeout=10)[0].offset == batch[-1].offset() + 1
        # The failed attempt's records were purged with the old producer: each result is there once.
        assert sorted(m.key() for m in read_topic(own, own.results_topic, idle_s=0.5)) == [b"in-0", b"in-1", b"in-2"]
    finally:
        consumer.close()
        network.cut()
        broker.stop()


def test_a_group_reads_to_the_ends_it_took_and_a_member_that_starts_at_the_commit_has_reached_them(settings):
    topic = settings.requests_topic
    create_topics(settings.model_copy(update={"partitions": 2}), [topic])  # partition 1 stays empty
    producer = make_producer(settings)
    for n in range(3):  # one batch per record: the ends are then the same on Tansu (batches) and Kafka (records)
        producer.produce(topic, key=f"in-{n}".encode(), value=b"x", partition=0)
        assert producer.flush(10) == 0
    group = f"{settings.group_prefix}-reader"

    def member(assigned):
        consumer = make_consumer(settings, group)
        consumer.subscribe([topic], on_assign=lambda c, partitions: assigned.set())
        return consumer

    first_assigned, read = threading.Event(), []
    first = member(first_assigned)
    try:
        ends = end_offsets(first, [topic, f"missing-{topic}"])
        assert ends == {(topic, 0): 3}  # the empty partition and the missing topic are left out
        assert lag(first, ends) == {(topic, 0): 3} and not reached(first, ends)  # nothing read or committed yet

        def step() -> bool:
            batch = [m for m in first.consume(10, 0.2) if not m.error()]
            if batch:
                read.extend(batch)
                first.commit(offsets=next_offsets(batch), asynchronous=False)
            return bool(batch)

        read_to_end(first, step, ends, first_assigned.is_set, idle_s=0.3, timeout_s=30)
        assert [m.key() for m in read] == [b"in-0", b"in-1", b"in-2"] and reached(first, ends)
    finally:
        first.close()

    # A new member starts at the commit, at the end: no position until it fetches, so the commit says where it is.
    second_assigned = threading.Event()
    second = member(second_assigned)
    try:
        read_to_end(second, lambda: bool(second.consume(10, 0.2)), ends, second_assigned.is_set, idle_s=0.3)
        assert reached(second, ends) and lag(second, ends) == {}
        with pytest.raises(TimeoutError, match="had not read to the end .* Check that Kafka is up"):
            read_to_end(second, lambda: False, ends, lambda: False, timeout_s=0.3)
    finally:
        second.close()
