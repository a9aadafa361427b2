"""End offsets, a group's position and lag, and reading a set of topics to their end.

The words, for one partition:

* its **end offset** (the *high watermark*) is where the next record will go, and its **low
  watermark** where its oldest kept record is: a partition with end = low holds nothing;
* a consumer's **position** is the offset of the next record it will read; a group's
  **committed offset** is where its next member starts (``next_offsets`` is what to commit);
* the **lag** is how far the position is from the end.

"Read to the end" needs a goal that stays put while producers go on writing: the ends *as of
now* (:func:`end_offsets`), then read until the position has reached each one (:func:`reached`).
The two engines labkit starts count end offsets differently. Apache Kafka gives every record its
own offset, so the end is one past the last record. The lab's Tansu broker reports the last
*batch's* base offset + 1 (ten records produced in one batch: end 1, not 10), so there a position
can pass the end while the rest of that batch is still to come. The end says only "empty or not"
there; :func:`read_to_end` therefore also waits until nothing new has come for a while.

From *outside* a group — an operator, a monitor, ``labkit topics describe`` — an admin client asks
the same questions without joining it: :func:`watermarks` (ListOffsets, the low and high of
each partition), :func:`committed_offsets` (OffsetFetch, as ``kafka-consumer-groups --describe``
does) and, from those two, :func:`group_lag`. On Tansu that lag counts batches, not records, and a
committed offset can pass the end: :func:`group_lag` then says nothing waits.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec

from ..records.wire import record_position

#: An offset per partition: ``{(topic, partition): offset}``.
Offsets = dict[tuple[str, int], int]
#: A partition's low and high watermarks: ``{(topic, partition): (low, high)}``.
Watermarks = dict[tuple[str, int], tuple[int, int]]
#: A group's committed offset per partition: ``{(topic, partition): offset}``, ``None`` where it committed nothing.
Committed = dict[tuple[str, int], int | None]


def next_offsets(messages: list[Message]) -> list[TopicPartition]:
    """Per partition, the offset after the last of ``messages``: what a consumer commits once all are done."""
    ends: Offsets = {}
    for message in messages:
        topic, partition, offset = record_position(message)
        ends[topic, partition] = max(ends.get((topic, partition), 0), offset + 1)
    return [TopicPartition(topic, partition, offset) for (topic, partition), offset in ends.items()]


def seek_back(consumer: Consumer, messages: list[Message]) -> None:
    """Make ``consumer`` read ``messages`` again, from the first one of each partition it still owns.

    A partition that is no longer ours is skipped: its next owner reads it from the last commit.
    """
    first: Offsets = {}
    for message in messages:
        topic, partition, offset = record_position(message)
        first[topic, partition] = min(first.get((topic, partition), offset), offset)
    for (topic, partition), offset in first.items():
        try:
            consumer.seek(TopicPartition(topic, partition, offset))
        except KafkaException:  # no longer ours (the group moved it): its next owner reads from the commit
            pass


def end_offsets(consumer: Consumer, topics: Iterable[str], timeout: float = 10.0) -> Offsets:
    """The end offset of each partition of ``topics`` that holds records, now; a missing topic has none.

    An empty partition (end = low watermark: nothing written yet, or all of it past
    ``retention.ms``) is left out: there is nothing to read there, and a consumer that never
    fetched from it has no position to compare.
    """
    metadata = consumer.list_topics(timeout=timeout)
    ends: Offsets = {}
    for topic in topics:
        for partition in metadata.topics[topic].partitions if topic in metadata.topics else ():
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            if high > low:
                ends[topic, partition] = high
    return ends


def positions(consumer: Consumer, partitions: Iterable[tuple[str, int]], timeout: float = 10.0) -> Offsets:
    """Where ``consumer``'s group stands on each of ``partitions``: its next offset (negative: none yet).

    ``position()`` is where this consumer has read to. It is invalid (negative) until it has
    fetched from a partition — as when its group's committed offsets are already at the end, so
    there is nothing to fetch — and then the group's commit says where it stands.
    """
    wanted = [TopicPartition(topic, partition) for topic, partition in partitions]
    read = {(tp.topic, tp.partition): tp.offset for tp in consumer.position(wanted)}
    unknown = [tp for tp in wanted if read[tp.topic, tp.partition] < 0]
    if unknown:
        read |= {(tp.topic, tp.partition): tp.offset for tp in consumer.committed(unknown, timeout=timeout)}
    return read


def lag(consumer: Consumer, ends: Offsets, timeout: float = 10.0) -> Offsets:
    """Offsets ``consumer``'s group has yet to read to reach ``ends``, on each partition not reached yet.

    On Apache Kafka that is a number of records; on Tansu, whose ends count batches, only "some".
    """
    read = positions(consumer, ends, timeout)
    return {tp: end - max(read[tp], 0) for tp, end in ends.items() if read[tp] < end}


def reached(consumer: Consumer, ends: Offsets, timeout: float = 10.0) -> bool:
    """Whether ``consumer``'s group has read up to ``ends`` on every partition there (none named: True)."""
    return not ends or not lag(consumer, ends, timeout)


def read_to_end(
    consumer: Consumer,
    step: Callable[[], bool],
    ends: Offsets | None = None,
    assigned: Callable[[], bool] = lambda: True,
    idle_s: float = 1.0,
    timeout_s: float = 60.0,
    who: str = "the consumer",
) -> None:
    """Call ``step()`` until the group has assigned partitions and ``consumer`` has caught up.

    Caught up: ``consumer`` has reached ``ends`` (if given) and nothing new has come for ``idle_s``.

    ``step()`` reads (and handles) one batch and says whether it was busy: it read something, or
    must try again. Reaching ``ends`` alone is enough on Apache Kafka; the idle wait covers Tansu,
    whose ends can be passed before the last batch is read, and records that are still coming.
    Raises :class:`TimeoutError` after ``timeout_s``; the consumer stays open either way.
    """
    deadline, quiet_since = time.monotonic() + timeout_s, time.monotonic()
    while (
        not assigned() or time.monotonic() - quiet_since < idle_s or (ends is not None and not reached(consumer, ends))
    ):
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"{who} had not read to the end after {timeout_s:.0f} s (partitions assigned: {assigned()}). "
                "Check that Kafka is up (`labkit topics describe` shows how far each group has read), "
                "then try again with a longer timeout."
            )
        if step() or not assigned():
            quiet_since = time.monotonic()


def watermarks(admin: AdminClient, partitions: Iterable[TopicPartition], timeout: float = 10.0) -> Watermarks:
    """Each partition's (low, high) watermarks as a ``read_committed`` consumer sees them (ListOffsets).

    Both questions go out at once (``OffsetSpec.earliest()`` and ``latest()``), each partition's to
    its leader. ``read_committed`` is what librdkafka's consumers read by default: there the high
    one is the last stable offset, which stops before an open transaction. A broker that does not
    answer within ``timeout`` raises :class:`~confluent_kafka.KafkaException` or ``TimeoutError``.
    """
    wanted = list(partitions)
    if not wanted:
        return {}
    futures = [
        admin.list_offsets(
            {tp: spec for tp in wanted}, isolation_level=IsolationLevel.READ_COMMITTED, request_timeout=timeout
        )
        for spec in (OffsetSpec.earliest(), OffsetSpec.latest())
    ]
    low, high = (
        {(tp.topic, tp.partition): f.result(timeout=timeout + 1).offset for tp, f in asked.items()} for asked in futures
    )
    return {key: (low[key], high[key]) for key in low}


def committed_offsets(
    admin: AdminClient, group: str, partitions: Iterable[TopicPartition], timeout: float = 10.0
) -> Committed:
    """``group``'s committed offset on each of ``partitions`` (``None``: none), asked without joining it.

    OffsetFetch to the group's coordinator, as ``kafka-consumer-groups --describe`` does: its
    members are never disturbed. Raises like :func:`watermarks`.
    """
    wanted = [TopicPartition(tp.topic, tp.partition) for tp in partitions]
    if not wanted:
        return {}
    future = admin.list_consumer_group_offsets([ConsumerGroupTopicPartitions(group, wanted)], request_timeout=timeout)
    answer = {(tp.topic, tp.partition): tp.offset for tp in future[group].result(timeout=timeout + 1).topic_partitions}
    stored = {(tp.topic, tp.partition): answer.get((tp.topic, tp.partition), -1) for tp in wanted}
    return {key: offset if offset >= 0 else None for key, offset in stored.items()}  # -1001 / -1: nothing committed


def resume_offsets(marks: Watermarks, committed: Committed) -> Offsets:
    """Where the group's next member starts, per partition: its committed offset, else the low watermark.

    Without a commit, labkit's consumers start at the beginning (``auto.offset.reset=earliest``).
    """
    return {key: low if (offset := committed.get(key)) is None else offset for key, (low, _) in marks.items()}


def group_lag(marks: Watermarks, committed: Committed) -> Offsets:
    """Offsets the group still has to read, on each partition where it has some: high − where it resumes.

    On Apache Kafka that is a number of records. On Tansu, whose high watermarks count batches, it
    undercounts, and a committed offset can pass the high one: that partition waits for nothing.
    """
    starts = resume_offsets(marks, committed)
    return {key: high - starts[key] for key, (_, high) in marks.items() if high > starts[key]}
