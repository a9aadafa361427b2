"""The same probes on both engines, Tansu and Apache Kafka: where they agree, and where (and how) they differ.

Each probe asserts what each engine was *measured* to do, so a new Tansu or Kafka release that
changes behaviour fails here first. The README's engine table and lesson 00's Tansu table are
written from these results. Both engines run in every session of the suite (whatever
``LABKIT_TEST_ENGINE`` says); ``LABKIT_TEST_BROKERS=3`` makes the Apache Kafka side a three-node
cluster.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import NewTopic

from labkit._net import free_ports
from labkit.config import Settings
from labkit.kafka.admin import engine_of
from labkit.kafka.client_config import make_admin
from labkit.kafka.engines import make_broker

REPO = Path(__file__).resolve().parents[1]
BROKERS = int(os.environ.get("LABKIT_BROKERS", "1"))


@pytest.fixture(scope="module", params=["tansu", "kafka"])
def engine(request):
    """``(engine name, settings)`` for a throw-away broker of that engine (Kafka: LABKIT_TEST_BROKERS nodes)."""
    brokers = BROKERS if request.param == "kafka" else 1
    logs = REPO / "test-artifacts" / f"engines-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    with make_broker(free_ports(brokers), engine=request.param, brokers=brokers, log_dir=logs) as broker:
        yield request.param, Settings(bootstrap=broker.bootstrap_servers, connect_timeout_s=5)


def _topic(settings: Settings, partitions: int = 1, **config: str) -> str:
    name, admin = f"probe-{uuid.uuid4().hex[:8]}", make_admin(settings)
    admin.create_topics([NewTopic(name, partitions, config=config)])[name].result(10)
    deadline = time.monotonic() + 10
    while name not in admin.list_topics(timeout=5).topics:
        assert time.monotonic() < deadline, f"{name} did not appear in the metadata"
        time.sleep(0.1)
    return name


def _producer(settings: Settings, **extra) -> Producer:
    return Producer({"bootstrap.servers": settings.bootstrap_servers, "linger.ms": 50, **extra})


def _consumer(settings: Settings, group: str | None = None, **extra) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.bootstrap_servers,
            "group.id": group or f"probe-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            **extra,
        }
    )


def _deliver(producer: Producer, topic: str, records: list[tuple[bytes | None, bytes | None]]) -> list[KafkaError]:
    """Produce ``records`` (key, value) to partition 0 in one go; the delivery errors (empty: all acknowledged)."""
    errors: list[KafkaError] = []
    for key, value in records:
        producer.produce(topic, value, key, partition=0, on_delivery=lambda e, m: errors.append(e) if e else None)
    assert producer.flush(15) == 0, "records still in flight after 15 s"
    return errors


def _read_all(settings: Settings, topic: str, expect: int | None = None, idle_s: float = 2.0, **extra) -> list:
    """Every record of partition 0 from the start (outside a group).

    Read until ``expect`` came or ``idle_s`` passed quietly.
    """
    consumer = _consumer(settings, **extra)
    consumer.assign([TopicPartition(topic, 0, 0)])
    records, quiet = [], 0.0
    try:
        while quiet < idle_s and (expect is None or len(records) < expect):
            message = consumer.poll(0.25)
            if message is None or message.error():
                quiet += 0.25
                continue
            records.append(message)
            quiet = 0.0
    finally:
        consumer.close()
    return records


def _watermarks(settings: Settings, topic: str) -> tuple[int, int]:
    consumer = _consumer(settings)
    try:
        return consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=5)
    finally:
        consumer.close()


def _assignment_within(consumer: Consumer, topic: str, seconds: float) -> tuple[list, float]:
    """Subscribe and poll until the group assigns partitions; (the assignment, seconds it took)."""
    started = time.monotonic()
    consumer.subscribe([topic])
    while time.monotonic() - started < seconds:
        consumer.poll(0.1)
        if assignment := consumer.assignment():
            return assignment, time.monotonic() - started
    return [], time.monotonic() - started


def test_end_offsets_count_records_on_kafka_and_batches_on_tansu(engine):
    name, settings = engine
    assert engine_of(settings) == name  # told apart by the cluster id the broker reports
    topic = _topic(settings)
    assert _deliver(_producer(settings), topic, [(None, b"x")] * 10) == []  # one batch (linger 50 ms)
    low, high = _watermarks(settings, topic)
    records = _read_all(settings, topic, expect=10)
    assert [m.offset() for m in records] == list(range(10))  # each record has its own offset on both
    if name == "kafka":
        assert (low, high) == (0, 10)  # the high watermark is the next record's offset: high - low = records
    else:
        assert (low, high) == (0, 1)  # Tansu: the last batch's base offset + 1; high - low is no record count


def test_group_members_are_listed_on_kafka_only(engine):
    name, settings = engine
    topic, group = _topic(settings, partitions=2), f"probe-{uuid.uuid4().hex[:8]}"
    consumer = _consumer(settings, group, **{"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    try:
        assignment, _ = _assignment_within(consumer, topic, 20)
        assert len(assignment) == 2
        try:
            admin = make_admin(settings)
            description = admin.describe_consumer_groups([group], request_timeout=5)[group].result(6)
            members = [
                (m.member_id, sorted(tp.partition for tp in m.assignment.topic_partitions)) for m in description.members
            ]
        except (KafkaException, TimeoutError) as exc:
            members = [("no answer", repr(exc))]
        if name == "kafka":
            assert members == [(consumer.memberid(), [0, 1])]
        else:  # Tansu answers with no members while this one is in the group, or not at all
            assert members == [] or members[0][0] == "no answer", members
    finally:
        consumer.close()


def test_topics_are_created_on_first_use_by_tansu_only(engine):
    name, settings = engine
    topic = f"probe-missing-{uuid.uuid4().hex[:8]}"
    producer = _producer(settings)
    try:
        producer.list_topics(topic, timeout=5)  # a producer's metadata request allows auto-creation
    except KafkaException:
        pass
    time.sleep(1)
    created = topic in make_admin(settings).list_topics(timeout=5).topics
    # labkit's Apache Kafka sets auto.create.topics.enable=false (Kafka's own default is true).
    assert created is (name == "tansu")


def test_a_record_over_a_megabyte_is_refused_by_kafka_only(engine):
    name, settings = engine
    topic = _topic(settings)
    producer = _producer(settings, **{"message.max.bytes": 10_000_000})  # the client would refuse it first
    errors = _deliver(producer, topic, [(None, b"x" * 2_000_000)])
    if name == "kafka":  # message.max.bytes, the broker's limit on a record batch: 1048588 bytes by default
        assert [e.code() for e in errors] == [KafkaError.MSG_SIZE_TOO_LARGE]
    else:
        assert errors == [] and len(_read_all(settings, topic, expect=1)[0].value()) == 2_000_000


def test_retention_deletes_old_segments_on_kafka_only(engine):
    name, settings = engine
    # Each record older than 200 ms rolls a new segment; a closed segment older than 1 s is deleted.
    topic = _topic(settings, **{"segment.ms": "200", "retention.ms": "1000"})
    producer = _producer(settings, **{"linger.ms": 0})
    for value in (b"a", b"b", b"c"):
        assert _deliver(producer, topic, [(None, value)]) == []
        time.sleep(0.4)
    # Kafka's first retention check comes log.initial.task.delay.ms after the broker started, then one every
    # log.retention.check.interval.ms (both 1 s in labkit's server.properties): each check deletes the segments
    # expired by then, so the log-start offset moves 0 → 1 → 2 → 3 as the records' 1 s run out, one by one or at once.
    deadline = time.monotonic() + (30 if name == "kafka" else 5)
    while (low := _watermarks(settings, topic)[0]) < 3 and time.monotonic() < deadline:
        time.sleep(0.5)
    if name == "kafka":  # every record expired (the active segment too: Kafka rolls it first); "earliest" is now 3
        assert low == 3 and _watermarks(settings, topic) == (3, 3) and _read_all(settings, topic, idle_s=1) == []
    else:  # Tansu keeps every record
        assert low == 0 and len(_read_all(settings, topic, expect=3)) == 3


def test_compaction_keeps_the_last_value_per_key_on_kafka_only(engine):
    name, settings = engine
    topic = _topic(
        settings,
        **{
            "cleanup.policy": "compact",
            "segment.ms": "200",
            "min.cleanable.dirty.ratio": "0.01",
            "delete.retention.ms": "100",
        },
    )
    producer = _producer(settings, **{"linger.ms": 0})
    records = [(b"cat", b"1"), (b"dog", b"1"), (b"cat", b"2"), (b"cat", b"3"), (b"dog", None)]
    assert _deliver(producer, topic, records) == []
    time.sleep(0.4)
    assert _deliver(producer, topic, [(b"roll", b"x")]) == []  # closes the segment: the active one is never cleaned
    deadline = time.monotonic() + (30 if name == "kafka" else 5)
    while True:
        kept = [(m.key(), m.value()) for m in _read_all(settings, topic, idle_s=1.0)]
        if len(kept) < 6 or time.monotonic() > deadline:
            break
        time.sleep(1)
    if name == "kafka":  # the cleaner kept cat's last value; dog's tombstone (a null value) may stay a while
        assert kept[0] == (b"cat", b"3") and kept[-1] == (b"roll", b"x") and (b"cat", b"1") not in kept
    else:
        assert kept == [*records, (b"roll", b"x")]


def test_read_committed_hides_an_aborted_transaction(engine):
    name, settings = engine
    topic = _topic(settings)
    producer = _producer(settings, **{"transactional.id": f"probe-{uuid.uuid4().hex[:8]}"})
    outcome = "ok"
    try:
        producer.init_transactions(10)
        producer.begin_transaction()
        for value in (b"aborted-1", b"aborted-2"):
            producer.produce(topic, value, partition=0)
        producer.flush(10)  # on the broker now: abort_transaction() would purge records still queued here
        producer.abort_transaction(10)
        producer.begin_transaction()
        producer.produce(topic, b"committed", partition=0)
        producer.commit_transaction(10)
    except KafkaException as exc:
        outcome = exc.args[0].name()
    committed = [m.value() for m in _read_all(settings, topic, idle_s=1.5, **{"isolation.level": "read_committed"})]
    everything = [m.value() for m in _read_all(settings, topic, idle_s=1.5, **{"isolation.level": "read_uncommitted"})]
    print(name, outcome, committed, everything)
    assert outcome == "ok"
    assert everything == [b"aborted-1", b"aborted-2", b"committed"]
    assert committed == ([b"committed"] if name == "kafka" else everything)


def test_the_cooperative_sticky_assignor_assigns_on_kafka_only(engine):
    name, settings = engine
    topic = _topic(settings, partitions=2)
    consumer = _consumer(settings, **{"partition.assignment.strategy": "cooperative-sticky"})
    try:
        assignment, _ = _assignment_within(consumer, topic, 15 if name == "kafka" else 8)
    finally:
        consumer.close()
    assert len(assignment) == (2 if name == "kafka" else 0)


def test_the_new_consumer_group_protocol_kip_848(engine):
    name, settings = engine
    topic = _topic(settings, partitions=2)
    errors: list[KafkaError] = []
    consumer = _consumer(settings, **{"group.protocol": "consumer", "error_cb": errors.append})
    try:
        assignment, seconds = _assignment_within(consumer, topic, 15 if name == "kafka" else 8)
    finally:
        consumer.close()
    print(name, len(assignment), seconds, errors)
    assert len(assignment) == (2 if name == "kafka" else 0)


def test_how_long_a_new_group_takes_to_assign(engine):
    name, settings = engine
    topic = _topic(settings, partitions=3)
    consumer = _consumer(settings, **{"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    try:
        assignment, seconds = _assignment_within(consumer, topic, 30)
    finally:
        consumer.close()
    print(f"{name}: a new group's first assignment after {seconds:.2f} s")
    assert len(assignment) == 3 and seconds < 10
