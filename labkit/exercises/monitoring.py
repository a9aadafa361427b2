"""Check for notebook 17 (logs, metrics and lag): the learner's lag in seconds.

It is tried on partitions whose record ages the check wrote itself.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from numbers import Real

from confluent_kafka import TopicPartition

from ..config import Settings
from ..kafka.client_config import make_consumer, make_producer
from ._feedback import require, solved
from ._setup import fresh_topic

#: Seconds the learner's answer may be off by (it reads the broker while the clock runs on).
TOLERANCE_S = 2.0


def _stage(settings: Settings) -> tuple[str, str, dict[int, list[float]], dict[int, int]]:
    """A new topic whose records are backdated by known ages, and a group that committed part of it.

    Partition 0: three records, one finished; partition 1: two records, one finished;
    partition 2: one record, finished (caught up). Returns (topic, group, {partition: record
    timestamps in s}, {partition: committed offset}).
    """
    topic = fresh_topic(settings, "lag-check", partitions=3)
    group = f"{topic}-readers"
    now = time.time()
    a, b, c = (random.uniform(20, 60) for _ in range(3))  # never the same answer twice
    ages = {0: [a + 240, a + 160, a + 80], 1: [b + 120, b + 30], 2: [c + 200]}
    committed = {0: 1, 1: 1, 2: 1}
    stamps = {p: [now - age for age in partition_ages] for p, partition_ages in ages.items()}
    producer = make_producer(settings, client_id="labkit-exercise-setup")
    for partition, times in stamps.items():
        for stamp in times:  # one request each: end offsets then count records on every broker
            producer.produce(topic, value=b"waiting", partition=partition, timestamp=int(stamp * 1000))
            producer.flush(10)
    # Commit as the group's members would, without joining it (no subscribe).
    committer = make_consumer(settings, group, client_id="labkit-exercise-setup")
    try:
        offsets = [TopicPartition(topic, p, o) for p, o in committed.items()]
        committer.commit(offsets=offsets, asynchronous=False)
    finally:
        committer.close()
    return topic, group, stamps, committed


def check_lag_in_seconds(settings: Settings, lag_in_seconds: Callable[[Settings, str, str], Mapping]) -> None:
    """Call ``lag_in_seconds(settings, topic, group_id)`` on a staged topic; compare with the ages written."""
    require(
        callable(lag_in_seconds),
        "Pass your function itself: check_lag_in_seconds(settings, lag_in_seconds), without calling it.",
    )
    topic, group, stamps, committed = _stage(settings)
    before = time.time()
    try:
        answer = lag_in_seconds(settings, topic, group)
    except Exception as exc:  # the learner's code: any failure is feedback, not a crash of the check
        require(
            False,
            f"lag_in_seconds(settings, {topic!r}, {group!r}) raised {type(exc).__name__}: {exc}. Test it on "
            "the exercise's own topic first.",
        )
    after = time.time()
    require(
        isinstance(answer, Mapping),
        f"lag_in_seconds should return a dict {{partition: seconds}}, not {type(answer).__name__}.",
    )
    require(
        set(answer) == set(stamps),
        f"The topic has partitions {sorted(stamps)}; your dict has keys {sorted(answer, key=str)}. "
        "Give every partition, as an int, including those with nothing waiting (0.0).",
    )
    require(
        all(isinstance(v, Real) for v in answer.values()),
        f"Every value should be a number of seconds; got {dict(answer)}.",
    )
    records = {p: len(times) - committed[p] for p, times in stamps.items()}
    require(
        any(float(answer[p]) != records[p] for p in stamps),
        f"Those are records waiting per partition ({dict(answer)}: end − committed), not seconds. Read the "
        "record at each committed offset and take now − its timestamp.",
    )
    require(
        all(answer[p] >= 0 for p in stamps),
        f"Negative seconds ({dict(answer)}): a record's timestamp lies in the past, so lag is now − timestamp.",
    )
    require(
        answer[2] == 0,
        f"Partition 2 has nothing waiting (the group committed offset {committed[2]}, its end): its lag is "
        f"0 s, not {answer[2]:.1f}. Only look for a record where committed < end.",
    )
    for partition in (0, 1):
        oldest_waiting = stamps[partition][committed[partition]]
        low, high = before - oldest_waiting - TOLERANCE_S, after - oldest_waiting + TOLERANCE_S
        value = float(answer[partition])
        if low <= value <= high:
            continue
        finished = before - stamps[partition][committed[partition] - 1]
        newest = before - stamps[partition][-1]
        require(
            not (low * 1000 <= value <= high * 1000),
            f"Partition {partition}: {value:.0f} looks like milliseconds (record timestamps are ms since the "
            "epoch); give seconds.",
        )
        require(
            abs(value - finished) > TOLERANCE_S,
            f"Partition {partition}: {value:.0f} s is the age of the record *before* the committed offset, one "
            "the group has finished. The committed offset is the next record it will read: time that one.",
        )
        require(
            abs(value - newest) > TOLERANCE_S,
            f"Partition {partition}: {value:.0f} s is the age of the newest record. Lag counts from the oldest "
            "record still waiting (the one at the committed offset).",
        )
        require(
            False,
            f"Partition {partition}: the record at the committed offset {committed[partition]} was written "
            f"{before - oldest_waiting:.0f} s ago, but you said {value:.1f} s.",
        )
    solved(
        "your lag in seconds matches the record timestamps: "
        + ", ".join(f"partition {p} {float(answer[p]):.0f} s" for p in sorted(stamps))
    )
