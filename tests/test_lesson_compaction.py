"""Lesson 08's check fed the plausible wrong answers, on an Apache Kafka node of its own (Tansu never compacts)."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import OFFSET_BEGINNING, KafkaError, TopicPartition
from confluent_kafka.admin import NewTopic

from labkit._net import free_ports
from labkit.config import Settings
from labkit.exercises import ExerciseFailed, check_latest_results
from labkit.kafka.client_config import make_admin, make_consumer
from labkit.kafka.engines import make_broker

FAST = {"segment.ms": "100", "min.cleanable.dirty.ratio": "0.01"}


@pytest.fixture(scope="module")
def kafka():
    with make_broker(free_ports(1), engine="kafka") as running:
        yield Settings(bootstrap=running.bootstrap_servers, connect_timeout_s=5)


def topic_with(**config: str):
    def create(settings: Settings, name: str) -> None:
        admin = make_admin(settings)
        admin.create_topics([NewTopic(name, num_partitions=2, config=config)])[name].result(10)

    return create


def read_log(settings: Settings, topic: str, careless: bool = False) -> list[tuple[str, object]]:
    consumer = make_consumer(settings, **{"enable.partition.eof": True})
    partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records, at_end, deadline = [], set(), time.time() + 20
    while len(at_end) < len(partitions) and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is not None and message.error() and message.error().code() == KafkaError._PARTITION_EOF:
            at_end.add(message.partition())
        elif message is not None and not message.error():
            value = message.value()
            records.append((message.key().decode(), value.decode() if careless or value is not None else None))
    consumer.close()
    return records


def last_wins(settings, topic):
    state = {}
    for key, value in read_log(settings, topic):
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state


def first_wins(settings, topic):
    state = {}
    for key, value in read_log(settings, topic):
        if value is None:
            state.pop(key, None)
        elif key not in state:
            state[key] = value
    return state


def no_tombstones(settings, topic):
    return dict(read_log(settings, topic))


def decodes_everything(settings, topic):
    return dict(read_log(settings, topic, careless=True))  # None.decode()


def fails(says: str, *args) -> None:
    with pytest.raises(ExerciseFailed) as feedback:
        check_latest_results(*args)
    assert says in str(feedback.value), str(feedback.value)


def test_the_topic_must_be_compacted_and_roll_its_segments(kafka):
    fails("cleanup.policy=delete", kafka, topic_with(**FAST), last_wins)
    fails(
        "segment.ms=604800000 (7 days, Kafka’s default)", kafka, topic_with(**{"cleanup.policy": "compact"}), last_wins
    )


def test_the_reader_must_let_the_last_record_win_and_apply_tombstones(kafka, capsys):
    compacted = topic_with(**{"cleanup.policy": "compact", **FAST})
    fails("(you kept its first result)", kafka, compacted, first_wins)
    fails("is a tombstone", kafka, compacted, no_tombstones)
    fails("A tombstone's value is None", kafka, compacted, decodes_everything)
    check_latest_results(kafka, compacted, last_wins)
    assert "✅" in capsys.readouterr().out
