"""Lesson 04's check: `rewind` moves an empty group back n records per partition, refuses a busy one."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import AdminClient, OffsetSpec

from ..config import Settings
from ..kafka.admin import create_topics
from ..kafka.client_config import make_admin, make_consumer, make_producer
from ..records.wire import record_position
from ._feedback import ExerciseFailed, require, solved

#: Records the check writes to each partition of its topic; partition 2 holds fewer than the rewind asks for.
LAYOUT = {0: 5, 1: 3, 2: 1}
#: How many records back the check asks ``rewind`` to go.
BACK = 2
#: How long the learner's ``rewind`` may take while a member is in the group.
REWIND_TIMEOUT_S = 30.0

Offsets = dict[int, int]


def _ends(admin: AdminClient, topic: str, spec: OffsetSpec) -> Offsets:
    """Per partition of ``topic``, the offset ``spec`` names (earliest: low watermark, latest: high one)."""
    asked = {TopicPartition(topic, partition): spec for partition in LAYOUT}
    return {
        tp.partition: future.result().offset for tp, future in admin.list_offsets(asked, request_timeout=10).items()
    }


def _committed(admin: AdminClient, group: str, topic: str) -> dict[int, int | None]:
    """``group``'s committed offset on each partition of ``topic``, at the broker (None: no commit)."""
    asked = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, partition) for partition in LAYOUT])
    answer = admin.list_consumer_group_offsets([asked], request_timeout=10)[group].result(timeout=15)
    return {tp.partition: tp.offset if tp.offset >= 0 else None for tp in answer.topic_partitions}


def _write(settings: Settings) -> str:
    """A new topic of ``LAYOUT``'s records, one request each (so end offsets count records on any engine)."""
    topic = f"rewind-{uuid.uuid4().hex[:4]}"
    create_topics(settings.model_copy(update={"partitions": len(LAYOUT)}), [topic])
    producer = make_producer(settings, client_id="labkit-exercise-setup")
    for partition, count in LAYOUT.items():
        for i in range(count):
            producer.produce(topic, partition=partition, key=f"p{partition}-{i}".encode(), value=b"1")
            producer.flush(10)
    return topic


def _read_back(settings: Settings, group: str, topic: str, expected: int) -> tuple[Any, set[tuple[int, int]]]:
    """A ``group`` member reads from its committed offsets: (the member, still open; what it got)."""
    member = make_consumer(settings, group, client_id="labkit-exercise-reader")
    member.subscribe([topic])
    got: set[tuple[int, int]] = set()
    deadline = time.monotonic() + 30
    while len(got) < expected and time.monotonic() < deadline:
        message = member.poll(0.2)
        if message is not None and not message.error():
            got.add(record_position(message)[1:])
    quiet_until = time.monotonic() + 0.5  # anything more would be a record the group should not have re-read
    while time.monotonic() < quiet_until:
        message = member.poll(0.1)
        if message is not None and not message.error():
            got.add(record_position(message)[1:])
    return member, got


def _rewind_while_member_polls(member: Any, rewind: Callable[..., Any], args: tuple) -> BaseException | None:
    """Run ``rewind(*args)`` in a thread while ``member`` keeps polling: the group has a live member.

    Returns what ``rewind`` raised (None if it returned); a rewind that never returns fails the check.
    """
    outcome: list[BaseException | None] = []

    def call() -> None:
        try:
            rewind(*args)
            outcome.append(None)
        except BaseException as error:  # noqa: BLE001 - whatever the learner raises counts as a refusal
            outcome.append(error)

    worker = threading.Thread(target=call, daemon=True, name="labkit-exercise-rewind")
    worker.start()
    deadline = time.monotonic() + REWIND_TIMEOUT_S
    while worker.is_alive() and time.monotonic() < deadline:
        member.poll(0.1)  # a member that polls stays in the group (max.poll.interval.ms)
    require(
        not worker.is_alive(),
        f"rewind did not return within {REWIND_TIMEOUT_S:.0f} s while a member was reading. Do not wait for a "
        "busy group to empty: raise, and let whoever runs it stop the consumers first.",
    )
    return outcome[0]


def check_rewind(settings: Settings, rewind: Any) -> None:
    """``rewind(settings, group, topic, n)`` moves an empty group back ``n`` records, refuses a busy one.

    On each partition the group goes back to max(end − ``n``, the partition's first offset).

    Everything is read from the broker: the group's committed offsets (``list_consumer_group_offsets``), the
    partitions' ends (``list_offsets``), and the records a member of the group then gets.
    """
    require(callable(rewind), "`rewind` should be a function: def rewind(settings, group, topic, n): ...")
    topic = _write(settings)
    group = f"{topic}-audit"
    admin = make_admin(settings)
    low, high = _ends(admin, topic, OffsetSpec.earliest()), _ends(admin, topic, OffsetSpec.latest())
    # The group has read everything and nobody is in it: committed at the end of every partition.
    start = ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, offset) for p, offset in high.items()])
    admin.alter_consumer_group_offsets([start], request_timeout=10)[group].result(timeout=15)
    expected = {p: max(high[p] - BACK, low[p]) for p in LAYOUT}
    call = f"rewind(settings, {group!r}, {topic!r}, {BACK})"
    try:
        rewind(settings, group, topic, BACK)
    except Exception as error:
        raise ExerciseFailed(
            f"{call} raised {error!r}, although nobody was in the group. Partition 2 holds a single record: never "
            "go before a partition's first offset (its low watermark): max(end − n, start)."
        ) from None
    committed = _committed(admin, group, topic)
    require(
        committed != high,
        f"After {call}, group {group!r} is still at the end of every partition (committed {committed}, ends "
        f"{high}): nothing was moved. Find each partition's end (admin.list_offsets with OffsetSpec.latest()), "
        "then admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, [TopicPartition(topic, p, "
        "offset), …])]) and wait on the future it returns (.result()).",
    )
    require(
        committed != low,
        f"After {call}, group {group!r} is back at the start of every partition {committed}: it would re-read all "
        f"{sum(LAYOUT.values())} records, not the last {BACK} of each partition. Go back from the end "
        "(OffsetSpec.latest()).",
    )
    require(
        committed == expected,
        f"After {call}, group {group!r} has committed {committed} (partition: offset); the last {BACK} records of "
        f"each partition start at {expected}: end − {BACK} (ends {high}), but never before the partition's first "
        f"offset {low}.",
    )
    wanted = {(p, offset) for p in LAYOUT for offset in range(expected[p], high[p])}
    member, got = _read_back(settings, group, topic, len(wanted))
    try:
        require(
            got == wanted,
            f"A member of {group!r} then read (partition, offset) {sorted(got)}, not {sorted(wanted)}.",
        )
        member.commit(asynchronous=False)  # done: the group is at the end again, and its member still in it
        before = _committed(admin, group, topic)
        refused = _rewind_while_member_polls(member, rewind, (settings, group, topic, BACK))
        after = _committed(admin, group, topic)
    finally:
        member.close()
    require(
        after == before,
        f"{call} moved the group's offsets while a member was reading ({before} → {after}). That member goes on "
        "from its own position and commits over yours. Rewind only an empty group: the broker enforces it for "
        "AdminClient.alter_consumer_group_offsets (and kafka-consumer-groups --reset-offsets checks first).",
    )
    require(
        refused is not None,
        f"While a member was still in {group!r}, the broker refused the change (UNKNOWN_MEMBER_ID on each "
        "partition), but rewind returned as if it had worked. The future of alter_consumer_group_offsets does "
        "not raise for that: look at .error on each TopicPartition of its result, and raise.",
    )
    solved(
        f"{group!r} re-read exactly the last {BACK} records of each partition ({len(wanted)} in all; partition 2 "
        f"from its start), and a rewind while a member was still reading raised {type(refused).__name__}."
    )
