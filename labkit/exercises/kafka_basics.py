"""Checks for notebooks 01–03 (topics, producers, consumers and offsets).

Each check reads the broker, not only what the learner hands in.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ..config import Settings
from ..kafka.admin import describe_topics, read_topic
from ..kafka.client_config import make_admin, make_producer
from ..kafka.partitioning import java_partition
from ._feedback import require, solved


def _where(messages: Iterable) -> set[tuple[str, int, int]]:
    """(topic, partition, offset) of every real Kafka message in ``messages``."""
    return {(m.topic(), m.partition(), m.offset()) for m in messages if hasattr(m, "offset") and not m.error()}


# --- 01 topics and partitions -------------------------------------------------------------------


def check_topic_created(settings: Settings, topic: str, partitions: int) -> None:
    """The learner created ``topic`` with ``partitions`` partitions."""
    require(isinstance(topic, str), "Set `topic` to the name of your topic (a string), then run the cell again.")
    metadata = make_admin(settings).list_topics(timeout=settings.connect_timeout_s)
    require(
        topic in metadata.topics,
        f"There is no topic {topic!r} yet. Did the create_topics call run? Call `.result()` on its "
        "future to wait for (and see) the broker's answer.",
    )
    actual = len(metadata.topics[topic].partitions)
    require(
        actual == partitions,
        f"{topic!r} has {actual} partition(s), the exercise asks for {partitions}. Partitions cannot be "
        "removed; delete the topic (admin.delete_topics) or pick a new name and create it again.",
    )
    solved(
        f"{topic!r} exists with {partitions} partitions — up to {partitions} consumers of one group can "
        "read it in parallel."
    )


def check_partition_prediction(settings: Settings, topic: str, key: str, predicted: Any) -> None:
    """Before we produce it, the learner predicts which partition of ``topic`` ``key`` lands in."""
    require(
        isinstance(predicted, int) and not isinstance(predicted, bool),
        "Set `predicted_partition` to a partition number (an int) that you computed from the key.",
    )
    partitions = len(
        make_admin(settings).list_topics(topic, timeout=settings.connect_timeout_s).topics[topic].partitions
    )
    require(partitions > 0, f"Topic {topic!r} does not exist; run the create-a-topic exercise first.")
    producer = make_producer(settings, client_id="labkit-exercise")
    landed: list[int | None] = []  # the partition of each delivery report
    producer.produce(
        topic, key=key.encode(), value=b"prediction check", on_delivery=lambda err, msg: landed.append(msg.partition())
    )
    producer.flush(10)
    require(bool(landed), "The check could not produce to the topic; is the broker still running?")
    java = java_partition(key.encode(), partitions)
    require(
        not (predicted == java != landed[0]),
        f"{predicted} is where the *Java* client (murmur2) would put {key!r}. This producer is librdkafka, "
        "whose default partitioner hashes the key with CRC32: zlib.crc32(key) % partitions.",
    )
    require(
        predicted == landed[0],
        f"Key {key!r} went to partition {landed[0]} of {partitions}, not {predicted}. librdkafka's default "
        "partitioner: zlib.crc32(key_bytes) % number_of_partitions (labkit.kafka.partitioning has it too).",
    )
    solved(
        f"Key {key!r} lands in partition {landed[0]}, as you predicted: same key, same partition, so its "
        "records stay in order."
    )


# --- 02 producers ------------------------------------------------------------------------------------


def check_delivery_reports(settings: Settings, topic: str, config: Any, delivered: Any, expected: int) -> None:
    """An idempotent producer sent ``expected`` records to ``topic``.

    The learner kept each delivery report's (partition, offset).
    """
    require(
        isinstance(config, dict) and isinstance(config.get("bootstrap.servers"), str),
        "`config` must be a dict of librdkafka settings with 'bootstrap.servers' (settings.bootstrap_servers).",
    )
    require(
        config.get("enable.idempotence") in (True, "true"),
        "Set 'enable.idempotence': True in `config` (librdkafka's default is off). Without it, a retry after "
        "a lost acknowledgement writes the record twice, and retries can reorder records.",
    )
    require(
        config.get("acks", "all") in ("all", -1, "-1"),
        f"'acks' is {config.get('acks')!r}: an idempotent producer needs acks='all' (or leave it out).",
    )
    stored = read_topic(settings, topic, idle_s=0.5)
    require(
        stored,
        f"{topic!r} is empty. produce() only queues a record in the producer's memory; "
        "producer.flush() sends it and runs the delivery reports.",
    )
    require(len(stored) == expected, f"{topic!r} holds {len(stored)} record(s), the exercise sends {expected}.")
    require(
        isinstance(delivered, list) and delivered,
        "`delivered` is empty: pass on_delivery=... to produce(), append (message.partition(), "
        "message.offset()) in it, and call flush() — reports run only inside poll() or flush().",
    )
    on_broker = sorted((m.partition(), m.offset()) for m in stored)
    require(
        sorted(tuple(d) for d in delivered) == on_broker,
        f"Your delivery reports say {sorted(delivered)[:4]}…, the broker holds {on_broker[:4]}…. Record "
        "(message.partition(), message.offset()) of each report whose error is None.",
    )
    solved(
        f"{expected} records, each acknowledged with its partition and offset, by a producer that cannot "
        "duplicate them on retry."
    )


def check_records_sent(
    settings: Settings, topic: str, expected: int, header: str | None = None, keys: Iterable[str] | None = None
) -> None:
    """``topic`` holds ``expected`` records (each with ``header``, keyed by ``keys`` if given)."""
    records = read_topic(settings, topic, idle_s=0.5)
    require(
        records,
        f"{topic!r} is empty: nothing was produced, or it is still in the producer's memory buffer. "
        "produce() only queues a record; producer.flush() sends it (and runs the delivery reports).",
    )
    require(
        len(records) == expected,
        f"{topic!r} has {len(records)} record(s), expected {expected}. Run the whole cell again: it "
        "creates a new, empty topic for each attempt.",
    )
    if header:
        missing = [r.offset() for r in records if header not in dict(r.headers() or [])]
        require(
            not missing,
            f"Records at offsets {missing[:5]} have no {header!r} header; pass headers={{...}} to produce().",
        )
    if keys is not None:
        got = sorted((r.key() or b"").decode() for r in records)
        require(got == sorted(keys), f"The keys are {got[:5]}…, expected {sorted(keys)[:5]}…")
    solved(f"{expected} records in {topic!r}" + (f", each with a {header!r} header" if header else "") + ".")


# --- 03 consumers and offsets ------------------------------------------------------------------


def check_consumed_everything(settings: Settings, topic: str, received: Any) -> None:
    """The learner's new group read every record already in ``topic`` (and nothing from elsewhere)."""
    require(isinstance(received, list), "`received` must be the list of messages your loop collected.")
    stored = _where(read_topic(settings, topic, idle_s=0.5))
    got = _where(received)
    require(
        got,
        f"You received 0 of {len(stored)} records. A consumer group with no committed offsets starts "
        "where auto.offset.reset says; 'latest' means 'only records produced from now on'. Set it to "
        "'earliest' — a group that already committed would start from its commit instead.",
    )
    require(got <= stored, f"{len(got - stored)} of your messages are not from {topic!r}; subscribe to {topic!r}.")
    missing = sorted(stored - got)
    require(
        not missing,
        f"You missed {len(missing)} of {len(stored)} records, e.g. (topic, partition, offset) "
        f"{missing[:3]}. Keep polling until you have them all (poll returns None while waiting).",
    )
    solved(f"All {len(stored)} records of {topic!r}, from offset 0 of every partition.")


def check_group_caught_up(settings: Settings, topic: str, group_id: str) -> None:
    """``group_id`` committed, on every partition of ``topic``, the offset after the last record: lag 0."""
    rows = describe_topics(settings, [topic], group_id=group_id)
    require(
        any(r.committed for r in rows),
        f"Group {group_id!r} has committed nothing on {topic!r}: with enable.auto.commit=False you must "
        "call consumer.commit(asynchronous=False) after processing, before close().",
    )
    behind = {r.partition: r.lag for r in rows if r.high > 0 and r.lag != 0}
    require(
        not behind,
        f"Group {group_id!r} still lags on partition(s) {behind} (partition: records not committed). "
        "Commit after the whole loop: commit() with no arguments commits the position of every partition.",
    )
    solved(
        f"{group_id!r} is caught up on every partition of {topic!r}: lag 0. A restart resumes after the last record."
    )
