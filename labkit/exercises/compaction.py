"""Lesson 08's check: a compacted "latest result per image" topic, and a reader rebuilding the table."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, KafkaError, Message, TopicPartition
from confluent_kafka.admin import ConfigResource

from ..config import Settings
from ..kafka.client_config import make_admin, make_consumer, make_producer
from ._feedback import ExerciseFailed, require, solved

#: Written in one batch, before any segment rolls: several results per image, and two images deleted (tombstones).
FIRST = [
    ("img-0", {"label": "cat", "score": 0.61}),
    ("img-1", {"label": "dog", "score": 0.55}),
    ("img-2", {"label": "car", "score": 0.40}),
    ("img-0", {"label": "cat", "score": 0.72}),
    ("img-3", {"label": "bird", "score": 0.80}),
    ("img-1", None),
    ("img-2", {"label": "truck", "score": 0.93}),
    ("img-4", {"label": "tree", "score": 0.50}),
    ("img-0", {"label": "lion", "score": 0.88}),
    ("img-4", None),
    ("img-5", {"label": "boat", "score": 0.70}),
]
#: Written after the cleaner compacted FIRST: they stay in the active segment, which is never cleaned.
LATER = [
    ("img-0", {"label": "tiger", "score": 0.91}),
    ("img-3", None),
    ("img-1", {"label": "wolf", "score": 0.66}),
    ("img-0", {"label": "tiger", "score": 0.97}),
]
#: The longest segment.ms / min.compaction.lag.ms (ms) the check waits for; the lesson uses 100 and 0.
MAX_WAIT_MS = 5000
#: How long the learner's reader may take, and how long the cleaner may take to compact.
READER_TIMEOUT_S = 30.0
CLEANER_TIMEOUT_S = 30.0

Record = tuple[int, int, str, Any]  # (partition, offset, key, value or None)


def _fold(records: list[tuple[str, Any]]) -> dict[str, Any]:
    """The table a log of (key, value) updates stands for: the last value per key; None deletes the key."""
    state: dict[str, Any] = {}
    for key, value in records:
        if value is None:
            state.pop(key, None)
        else:
            state[key] = value
    return state


def _duration(ms: int) -> str:
    """``ms`` milliseconds in words: '7 days', '2 h', '30 s'."""
    for unit, size in (("days", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{ms / size:g} {unit}"
    return f"{ms} ms"


def _topic_config(settings: Settings, topic: str) -> dict[str, str]:
    """The topic's configuration, as DescribeConfigs reports it: its own settings and the defaults."""
    resource = ConfigResource("topic", topic)
    admin = make_admin(settings)  # kept in a variable: a client destroyed before its answer fails the future
    future = admin.describe_configs([resource], request_timeout=settings.connect_timeout_s)[resource]
    return {name: entry.value for name, entry in future.result(timeout=settings.connect_timeout_s + 5).items()}


def _partitions(settings: Settings, topic: str, wait_s: float = 10.0) -> list[int]:
    """The partitions of ``topic``, waiting up to ``wait_s`` for it to appear; [] if it never does."""
    admin = make_admin(settings)
    deadline = time.monotonic() + wait_s
    while True:
        found = admin.list_topics(topic, timeout=settings.connect_timeout_s).topics.get(topic)
        if found is not None and found.error is None and found.partitions:
            return sorted(found.partitions)
        if time.monotonic() > deadline:
            return []
        time.sleep(0.2)


def _records(settings: Settings, topic: str, partitions: list[int]) -> list[Record]:
    """Every record still in ``topic``, read from the broker to its end (partition EOF), in offset order."""
    eof: dict[str, Any] = {"enable.partition.eof": True}  # an event when the reader reaches a partition's end
    consumer = make_consumer(settings, client_id="labkit-exercise-check", **eof)
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    records: list[Record] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + 20
    try:
        while len(at_end) < len(partitions) and time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            error, partition, offset, value = (
                message.error(),
                message.partition() or 0,
                message.offset(),
                message.value(),
            )
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:
                    at_end.add(partition)
                continue
            key = (message.key() or b"").decode()
            records.append((partition, offset or 0, key, None if value is None else json.loads(value)))
    finally:
        consumer.close()
    require(len(at_end) == len(partitions), f"The check could not read {topic!r} to its end within 20 s; run it again.")
    return sorted(records)


def _plain(value: Any) -> Any:
    """A key or value as the learner may hand it back (bytes, JSON text, a dict) in one comparable form."""
    if isinstance(value, bytes | bytearray):
        value = value.decode(errors="replace")
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _run_reader(reader: Callable[[Settings, str], Any], settings: Settings, topic: str) -> dict[str, Any]:
    """``reader(settings, topic)`` with a time limit, its answer in plain form ({image id: result dict})."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["state"] = reader(settings, topic)
        except BaseException as error:  # handed back to the check's thread
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True, name="current_state")
    thread.start()
    thread.join(READER_TIMEOUT_S)
    require(
        not thread.is_alive(),
        f"`current_state` did not return within {READER_TIMEOUT_S:.0f} s. Stop reading at the end of the log "
        "(the high watermark, or the partition-EOF event) — not after a count of records: a compacted topic has "
        "gaps in its offsets, so `high - low` records never all arrive.",
    )
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, AttributeError | TypeError) and "NoneType" in str(error):
            raise ExerciseFailed(
                f"`current_state` failed with {type(error).__name__}: {error}. A tombstone's value is None "
                "(`message.value()` returns None): test for it before decoding — it means 'delete this key'."
            ) from error
        raise error
    state = outcome.get("state")
    require(
        isinstance(state, dict),
        f"`current_state` returned {type(state).__name__}; return a dict {{image id: latest result}}.",
    )
    assert isinstance(state, dict)
    return {str(_plain(key)): _plain(value) for key, value in state.items()}


def _compare(state: dict[str, Any], updates: list[tuple[str, Any]], when: str) -> None:
    """Feedback unless ``state`` is the fold of ``updates``, naming the first kind of mistake it shows."""
    truth = _fold(updates)
    if state == truth:
        return
    deleted = sorted(key for key in state if key not in truth and any(k == key for k, _ in updates))
    firsts = {key: value for key, value in reversed(updates) if value is not None}  # each key's first value
    stale = sorted(key for key in truth if key in state and state[key] != truth[key])
    missing = sorted(key for key in truth if key not in state)
    if deleted:
        raise ExerciseFailed(
            f"{when}, your state still has {', '.join(deleted)}, but the last record for "
            f"{'each' if len(deleted) > 1 else 'it'} is a tombstone (key with a None value): that image was "
            "deleted. When value is None, remove the key from your dict (state.pop(key, None))."
        )
    if stale:
        key = stale[0]
        kept_first = state[key] == firsts.get(key)
        raise ExerciseFailed(
            f"{when}, your state says {key} → {state[key]}, but the latest record for {key} says {truth[key]}"
            + (" (you kept its first result)" if kept_first else "")
            + ". Records come in offset order: let each one overwrite the previous value for its key — "
            "the last one wins, as in a table row updated again and again."
        )
    require(
        not missing,
        f"{when}, your state lacks {', '.join(missing)}, which the topic holds (a last record with a value). "
        "Read every partition from the beginning (OFFSET_BEGINNING) to the end.",
    )
    unknown = sorted(set(state) - set(truth))
    require(not unknown, f"{when}, your state has keys the topic never held: {', '.join(unknown)}.")


def check_latest_results(
    settings: Settings,
    create_topic: Callable[[Settings, str], Any],
    current_state: Callable[[Settings, str], Any],
) -> None:
    """The broker must compact the learner's topic, and their reader must rebuild the table from it.

    ``create_topic(settings, name)`` creates the "latest result per image" topic; ``current_state(settings,
    topic)`` returns ``{image id: latest result}`` read from the broker. The check writes updates and tombstones,
    reads the topic's configuration and its records from the broker, waits for the log cleaner, and compares the
    learner's state with the truth before and after compaction.
    """
    require(
        callable(create_topic) and callable(current_state),
        "Define both functions: create_latest_results_topic(settings, name) and current_state(settings, topic).",
    )
    topic = f"latest-results-{uuid.uuid4().hex[:6]}"
    create_topic(settings, topic)
    partitions = _partitions(settings, topic)
    require(
        bool(partitions),
        f"`create_latest_results_topic(settings, {topic!r})` returned, but no topic {topic!r} appeared on the "
        "broker. Create the topic you are given, and call .result() on the future create_topics returns.",
    )
    config = _topic_config(settings, topic)
    policy = config.get("cleanup.policy", "delete")
    require(
        "compact" in policy.split(","),
        f"The broker says {topic!r} has cleanup.policy={policy}. With 'delete' it drops whole old segments by age "
        "or size and never keeps 'the latest result per image'. Set cleanup.policy=compact in the topic's config.",
    )
    segment_ms, lag_ms = int(config.get("segment.ms", 0)), int(config.get("min.compaction.lag.ms", 0))
    require(
        segment_ms <= MAX_WAIT_MS,
        f"segment.ms={segment_ms} ({_duration(segment_ms)}{', Kafka’s default' if segment_ms == 604_800_000 else ''}): "
        "the cleaner never touches the active segment, and yours closes only after that long, so nothing would be "
        "compacted during the check. In the lab set segment.ms to 100 (production topics keep hours or days).",
    )
    require(
        lag_ms <= MAX_WAIT_MS,
        f"min.compaction.lag.ms={lag_ms}: records stay uncompacted at least that long. Leave it at 0 here.",
    )

    producer = make_producer(settings, client_id="labkit-exercise-check", **{"linger.ms": 50})
    delivered: list[tuple[str, int, int]] = []  # (key, partition, offset) of each record, from the delivery reports

    def delivered_to(error: KafkaError | None, message: Message) -> None:
        if error is None:
            delivered.append(((message.key() or b"").decode(), message.partition() or 0, message.offset() or 0))

    def send(updates: list[tuple[str, Any]], partition: int = -1) -> None:  # -1: the partitioner picks
        for key, value in updates:
            data = None if value is None else json.dumps(value).encode()
            producer.produce(topic, key=key.encode(), value=data, partition=partition, on_delivery=delivered_to)
        require(producer.flush(30) == 0, "The check could not write its records within 30 s; is the broker up?")

    send(FIRST)  # one batch: all in the active segment, so the broker has not compacted anything yet
    first = list(delivered)
    _compare(_run_reader(current_state, settings, topic), FIRST, "Before compaction (several results per image)")

    time.sleep(segment_ms / 1000 + 0.2)  # the segment is now older than segment.ms: the next record rolls it
    rolls = [(f"img-late-{p}", {"label": "kite", "score": 0.5}) for p in partitions]
    for (key, value), p in zip(rolls, partitions, strict=True):
        send([(key, value)], partition=p)  # closes each partition's segment: now the cleaner may compact it
    roll_offset = {p: o for k, p, o in delivered if k.startswith("img-late-")}
    keys_in = {p: {k for k, q, _ in first if q == p} for p in partitions}  # what compaction keeps: one record per key
    deadline = time.monotonic() + CLEANER_TIMEOUT_S + lag_ms / 1000
    while True:
        stored = _records(settings, topic, partitions)
        closed = [(p, o) for p, o, _, _ in stored if o < roll_offset[p]]
        if all(sum(q == p for q, _ in closed) <= len(keys_in[p]) for p in partitions):  # (a tombstone may go too)
            break
        require(
            time.monotonic() < deadline,
            f"The log cleaner did not compact {topic!r} within {CLEANER_TIMEOUT_S:.0f} s: its closed segments still "
            f"hold {len(closed)} records for {len(FIRST)} updates of {sum(map(len, keys_in.values()))} images. The "
            f"topic's config: min.cleanable.dirty.ratio={config.get('min.cleanable.dirty.ratio')} (it must be "
            f"below 1; 0.01 in the lesson), segment.ms={segment_ms}, min.compaction.lag.ms={lag_ms}.",
        )
        time.sleep(0.5)
    gone = sorted({(p, o) for _, p, o in first} - set(closed))
    removed = len(gone)

    send(LATER)  # more updates, in the (uncleaned) active segment: a compacted topic is not one record per key
    everything = FIRST + rolls + LATER
    _compare(
        _run_reader(current_state, settings, topic),
        everything,
        f"After compaction (the cleaner removed {removed} superseded records; offsets now have gaps) and 4 updates",
    )
    offsets = ", ".join(str(offset) for _, offset in gone)
    solved(
        f"cleanup.policy={policy}: the broker removed {removed} superseded records (offsets {offsets} are gone), "
        f"and your reader rebuilt the table — {len(_fold(everything))} images, deleted ones absent."
    )
