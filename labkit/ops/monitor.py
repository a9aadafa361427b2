"""How far behind the processors are, read from the broker alone.

Each partition's lag in records and in seconds, per task's group, and a JSON snapshot of the pipeline.

Lag in records says how much work waits; lag in *seconds* says how long the oldest waiting
request has waited — the number a user feels. A stopped processor keeps the first flat (no
new uploads, no new lag) while the second climbs, second by second. Each task (CLIP, OCR…)
reads the requests topic in a consumer group of its own, so each has its own lag: a stopped
OCR group falls behind while CLIP's stays at zero.

Everything here is read without touching the processors: committed offsets and watermarks come
from an admin client (OffsetFetch and ListOffsets, through :mod:`labkit.kafka.offsets`, as
``kafka-consumer-groups --describe`` does), never from a member of their group, and the record at
a committed offset is read by a consumer of a private group that only ``assign``s and never
commits. One admin client and one such consumer per bootstrap address are kept and reused, and
every request has a short timeout, so a live view can call
:func:`pipeline_snapshot` every couple of seconds.

On the lab's embedded broker (Tansu) an end offset is the base offset of the partition's *last
batch* plus one, not the offset after its last record: ``lag_records`` undercounts when a
producer sent several records in one batch, and unread records that all sit in that last batch
read as no lag at all. On Apache Kafka both are exact. ``lag_seconds`` uses the records' own
timestamps (CreateTime by default: the producer's clock), so it is right on both.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import asdict, dataclass
from typing import Any, TypeVar

from confluent_kafka import ConsumerGroupState, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient, ClusterMetadata

from ..config import Settings
from ..errors import BrokerUnavailable
from ..kafka.admin import labkit_topics, require_topics
from ..kafka.client_config import make_admin, make_consumer
from ..kafka.offsets import Watermarks, committed_offsets, group_lag, resume_offsets, watermarks

#: Seconds any one request to the broker may take here: a monitor must answer, not hang.
TIMEOUT_S = 2.0


@dataclass(frozen=True)
class PartitionLag:
    """One partition as a consumer group's lag sees it."""

    topic: str
    partition: int
    committed: int | None  # next offset the group will read; None = it has committed nothing here
    end: int  # the partition's end offset (high watermark): where the next record will go
    lag_records: int  # records written and not yet committed by the group
    lag_seconds: float | None  # age of the oldest of them (0.0: none waiting; None: not read in time)


class _Clients:
    """An admin client and an assign-only consumer for one bootstrap address, used by one caller at a time."""

    def __init__(self, settings: Settings):
        self.admin: AdminClient = make_admin(settings)
        # A private group, never subscribed, never committing: reading here moves nobody's offsets.
        # Small fetches: it reads one record per partition, not the megabytes of images behind it.
        # With queued.min.messages=1 one queued record already "fills" the queue, and librdkafka then
        # postpones that partition's next fetch by fetch.queue.backoff.ms (1000 ms by default): every
        # other reading stalled ~1 s (measured), twice per /metrics scrape. After an empty fetch it
        # waits fetch.error.backoff.ms (500 ms by default). Both kept short here.
        small: dict[str, Any] = {
            "max.partition.fetch.bytes": 1,
            "queued.min.messages": 1,
            "fetch.queue.backoff.ms": 10,
            "fetch.error.backoff.ms": 10,
        }
        self.reader = make_consumer(settings, client_id="labkit-monitor", **small)
        self.lock = threading.Lock()


_clients: dict[str, _Clients] = {}
_clients_lock = threading.Lock()


def _for(settings: Settings) -> _Clients:
    with _clients_lock:
        if settings.bootstrap_servers not in _clients:
            _clients[settings.bootstrap_servers] = _Clients(settings)
        return _clients[settings.bootstrap_servers]


def _unanswered(settings: Settings, what: str, exc: Exception) -> BrokerUnavailable:
    return BrokerUnavailable(
        f"The broker at {settings.bootstrap_servers} did not answer {what} within {TIMEOUT_S:g} s ({exc}). "
        "Is it running? `labkit topics describe` shows whether it answers; `labkit up` starts one."
    )


def _metadata(settings: Settings, clients: _Clients) -> ClusterMetadata:
    try:
        return clients.admin.list_topics(timeout=TIMEOUT_S)
    except KafkaException as exc:
        raise _unanswered(settings, "a metadata request", exc) from None


_T = TypeVar("_T")


def _asked(settings: Settings, what: str, question: Callable[[], _T]) -> _T:
    """``question()``'s answer, or :class:`BrokerUnavailable` saying what to do if the broker gave none."""
    try:
        return question()
    except (KafkaException, FutureTimeout) as exc:
        raise _unanswered(settings, what, exc) from None


def _watermarks(settings: Settings, clients: _Clients, partitions: list[TopicPartition]) -> Watermarks:
    return _asked(settings, "a ListOffsets request", lambda: watermarks(clients.admin, partitions, TIMEOUT_S))


def _timestamps(clients: _Clients, starts: dict[tuple[str, int], int]) -> dict[tuple[str, int], float]:
    """{(topic, partition): timestamp (s) of the first record from its start offset}, those read in time."""
    if not starts:
        return {}
    found: dict[tuple[str, int], float] = {}
    clients.reader.assign([TopicPartition(t, p, offset) for (t, p), offset in starts.items()])
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while len(found) < len(starts) and time.monotonic() < deadline:
            for message in clients.reader.consume(len(starts), timeout=0.1):
                where = (message.topic() or "", message.partition() or 0)
                offset = message.offset() or 0
                if message.error() is None and where in starts and offset >= starts[where] and where not in found:
                    kind, millis = message.timestamp()
                    if kind:  # 0 = TIMESTAMP_NOT_AVAILABLE
                        found[where] = millis / 1000
    finally:
        clients.reader.unassign()  # stop fetching until the next reading
    return found


def _lag(
    settings: Settings,
    clients: _Clients,
    metadata: ClusterMetadata,
    topic: str,
    group_id: str,
    marks: Watermarks | None = None,
) -> list[PartitionLag]:
    require_topics(settings, [topic], metadata)
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.topics[topic].partitions)]
    if marks is None:
        marks = _watermarks(settings, clients, partitions)
    marks = {(tp.topic, tp.partition): marks[tp.topic, tp.partition] for tp in partitions}
    committed = _asked(
        settings,
        f"OffsetFetch for group {group_id}",
        lambda: committed_offsets(clients.admin, group_id, partitions, TIMEOUT_S),
    )
    waiting = group_lag(marks, committed)  # nothing committed: counted from the low watermark, where it starts
    starts = resume_offsets(marks, committed)
    born = _timestamps(clients, {key: starts[key] for key in waiting})
    now = time.time()
    age = {key: max(0.0, now - stamp) for key, stamp in born.items()}  # a waiting partition not read in time: None
    return [
        PartitionLag(
            topic=topic,
            partition=partition,
            committed=committed[topic, partition],
            end=high,
            lag_records=waiting.get((topic, partition), 0),
            lag_seconds=0.0 if (topic, partition) not in waiting else age.get((topic, partition)),
        )
        for (_, partition), (_, high) in marks.items()
    ]


def partition_lag(settings: Settings, topic: str, group_id: str) -> list[PartitionLag]:
    """Each partition of ``topic``: ``group_id``'s committed offset, the end, lag in records and seconds.

    ``lag_seconds`` = now − the timestamp of the record at the committed offset (the oldest one the
    group has not finished). :class:`~labkit.errors.TopicMissing` if there is no such topic,
    :class:`~labkit.errors.BrokerUnavailable` if the broker does not answer within ``TIMEOUT_S``.
    """
    clients = _for(settings)
    with clients.lock:
        return _lag(settings, clients, _metadata(settings, clients), topic, group_id)


def _members(clients: _Clients, group_ids: list[str]) -> dict[str, dict[str, list[str]] | None]:
    """Per group: {client id: ["topic[p]", …]} of its live members; None if the broker did not say in time."""
    try:
        futures = clients.admin.describe_consumer_groups(group_ids, request_timeout=TIMEOUT_S)
    except KafkaException:
        return dict.fromkeys(group_ids)
    found: dict[str, dict[str, list[str]] | None] = {}
    for group_id, future in futures.items():
        try:
            description = future.result(timeout=TIMEOUT_S + 1)
        except (KafkaException, TimeoutError):
            found[group_id] = None  # unknown, which is not the same as nobody
            continue
        if not description.members and description.state not in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD):
            found[group_id] = None  # a stable group has members: a broker that lists none (the lab's Tansu) did not say
            continue
        members: dict[str, list[str]] = {}
        for member in description.members:
            owned = member.assignment.topic_partitions if member.assignment else []
            members.setdefault(member.client_id, []).extend(f"{tp.topic}[{tp.partition}]" for tp in owned)
        found[group_id] = members
    return found


def _lag_summary(topic: str, rows: list[PartitionLag] | None) -> dict[str, Any]:
    """A group's lag on ``topic`` as JSON: total records, the oldest's wait in s (None: not read in time)."""
    if rows is None:
        return {"topic": topic, "records": None, "seconds": None, "partitions": []}
    ages = [r.lag_seconds for r in rows]
    return {
        "topic": topic,
        "records": sum(r.lag_records for r in rows),
        "seconds": None if None in ages else max((a for a in ages if a is not None), default=0.0),
        "partitions": [asdict(r) for r in rows],
    }


def task_groups(settings: Settings) -> dict[str, str]:
    """{group id: task} of the consumer groups on the requests topic: each enabled task's, in order."""
    return {settings.for_task(task).group_id: task for task in settings.enabled_tasks}


def pipeline_snapshot(settings: Settings) -> dict[str, Any]:
    """The pipeline at one moment, as plain JSON-ready values: topics, each task's group and their lag.

    ``topics``: each labkit topic's partition count and end offsets (``exists: false`` when it is
    missing). ``groups``: one entry per enabled task (``settings.enabled_tasks``), ``{"id",
    "task", "members", "lag"}``. ``members`` = {client id: partitions}; ``None`` = *unknown*,
    not zero: the broker did not answer DescribeGroups in time, or, like the lab's Tansu, called
    the group stable and listed nobody. ``lag``: per partition of the requests topic and in
    total: ``records`` summed, ``seconds`` = the oldest waiting request (``None`` when a waiting
    partition's record was not read in time). ``group`` and ``lag`` at the top are the same for
    ``settings``' own task (CLIP by default), as before there were several tasks.
    """
    clients = _for(settings)
    groups = {settings.group_id: settings.task, **task_groups(settings)}
    with clients.lock:
        metadata = _metadata(settings, clients)
        topics: dict[str, Any] = {}
        existing = [t for t in labkit_topics(settings) if t in metadata.topics and metadata.topics[t].error is None]
        partitions = [TopicPartition(t, p) for t in existing for p in sorted(metadata.topics[t].partitions)]
        marks = _watermarks(settings, clients, partitions)
        for topic in labkit_topics(settings):
            if topic in existing:
                ends = [marks[topic, p][1] for p in sorted(metadata.topics[topic].partitions)]
                topics[topic] = {"exists": True, "partitions": len(ends), "end_offsets": ends}
            else:
                topics[topic] = {"exists": False, "partitions": 0, "end_offsets": []}
        requests = settings.requests_topic
        lags = {
            group_id: _lag_summary(
                requests, _lag(settings, clients, metadata, requests, group_id, marks) if requests in existing else None
            )
            for group_id in groups
        }
        members = _members(clients, list(groups))
    return {
        "at": time.time(),
        "bootstrap": settings.bootstrap_servers,
        "topics": topics,
        "group": {"id": settings.group_id, "members": members[settings.group_id]},
        "lag": lags[settings.group_id],
        "groups": [
            {"id": group_id, "task": task, "members": members[group_id], "lag": lags[group_id]}
            for group_id, task in task_groups(settings).items()
        ],
    }
