"""Topic administration: wait for a broker, create labkit's topics, describe them, read one back.

Topics are created idempotently, and described with their partitions and offsets.

Apache Kafka does not create a topic when a consumer subscribes to it (and may refuse to when a
producer writes to it), so labkit creates its topics explicitly, once, with the
partition count that decides how many processors can work in parallel.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from confluent_kafka import (
    OFFSET_BEGINNING,
    ConsumerGroupState,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, ClusterMetadata, NewTopic

from ..config import Settings
from ..errors import BrokerUnavailable, TopicMissing
from .client_config import make_admin, make_consumer
from .offsets import committed_offsets, end_offsets, watermarks

log = logging.getLogger(__name__)


def labkit_topics(settings: Settings) -> list[str]:
    """The topics the pipeline needs: requests, results, the dead-letter topic and the image embeddings."""
    return [settings.requests_topic, settings.results_topic, settings.dead_letter_topic, settings.embeddings_topic]


def wait_for_broker(
    settings: Settings, timeout: float | None = None, admin: AdminClient | None = None
) -> ClusterMetadata:
    """Cluster metadata once a broker answers; :class:`BrokerUnavailable` after ``timeout`` seconds."""
    timeout = settings.connect_timeout_s if timeout is None else timeout
    admin = admin or make_admin(settings)
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        try:
            return admin.list_topics(timeout=max(0.5, min(remaining, 2.0)))
        except KafkaException:
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(
                    f"No Kafka broker answered at {settings.bootstrap_servers} within {timeout:.0f} s. "
                    "Start one with `labkit broker` (or `labkit up`), or point labkit at yours with "
                    "--bootstrap HOST:PORT / LABKIT_BOOTSTRAP."
                ) from None
            time.sleep(0.2)


#: The cluster id Tansu always reports (Apache Kafka's is random, made when its storage is formatted).
TANSU_CLUSTER_ID = "tansu_cluster"


def engine_of(settings: Settings) -> str:
    """The engine at ``settings``' address: ``"tansu"``, else ``"kafka"`` (Apache Kafka or another broker).

    Read from the broker (its cluster id), not from ``LABKIT_ENGINE``: a lab pointed at a Kafka
    of its own with ``--bootstrap`` still gets the right answer.
    """
    return "tansu" if wait_for_broker(settings).cluster_id == TANSU_CLUSTER_ID else "kafka"


def create_topics(settings: Settings, topics: list[str] | None = None) -> dict[str, str]:
    """Create the topics that do not exist yet; returns ``{topic: "created" | "exists"}``.

    Safe to run any number of times (idempotent): an existing topic is left as it is, even if
    its partition count differs from ``settings.partitions``. Each partition gets
    ``settings.replication_factor`` copies, by default min(3, brokers in the cluster): one on a
    single node, three (a leader and two followers) on a cluster of three or more.
    """
    admin = make_admin(settings)
    metadata = wait_for_broker(settings, admin=admin)
    wanted = topics or labkit_topics(settings)
    replicas = settings.replication_factor or min(3, len(metadata.brokers))
    futures = admin.create_topics(
        [NewTopic(t, num_partitions=settings.partitions, replication_factor=replicas) for t in wanted],
        request_timeout=settings.connect_timeout_s,
    )
    outcome = {}
    for topic, future in futures.items():
        try:
            future.result()
            outcome[topic] = "created"
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise
            outcome[topic] = "exists"
    # Creation is asynchronous on a real cluster: wait until metadata shows every partition...
    deadline = time.monotonic() + settings.connect_timeout_s
    while time.monotonic() < deadline:
        metadata = admin.list_topics(timeout=settings.connect_timeout_s)
        if all(
            t in metadata.topics and metadata.topics[t].partitions and metadata.topics[t].error is None for t in wanted
        ):
            break
        time.sleep(0.1)
    # ...and until each new partition's leader serves it: for a moment after CreateTopics, Apache Kafka's
    # metadata names a leader that still answers NOT_LEADER_FOR_PARTITION (measured: ~50 ms on one node).
    created = [t for t, state in outcome.items() if state == "created" and t in metadata.topics]
    _wait_for_leaders(settings, {t: sorted(metadata.topics[t].partitions) for t in created}, deadline)
    return outcome


#: What a partition's leader answers while it is still taking up its leadership: worth asking again.
_NOT_READY = (
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._UNKNOWN_PARTITION,  # this client's own metadata does not show the partition yet
)


def _wait_for_leaders(settings: Settings, partitions: dict[str, list[int]], deadline: float) -> None:
    """Wait until each partition's leader answers ListOffsets (or ``deadline``, after which callers retry)."""
    if not partitions:
        return
    consumer = make_consumer(settings, client_id="labkit-admin")
    try:
        for topic, numbers in partitions.items():
            for partition in numbers:
                while True:
                    try:
                        consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=2)
                        break
                    except KafkaException as exc:
                        if exc.args[0].code() not in _NOT_READY or time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
    finally:
        consumer.close()


def wait_for_topics(settings: Settings, topics: list[str], who: str = "labkit") -> ClusterMetadata:
    """Like :func:`require_topics`, but keep retrying, with backoff, for up to ``startup_timeout_s``.

    Services call this at start: under docker compose (or after a reboot) the web app and the
    processors often start before Kafka accepts connections, or before its topics exist. Each
    failed attempt logs one line saying what is missing and when the next try is.
    """
    deadline = time.monotonic() + settings.startup_timeout_s
    delay, attempt = 0.5, 1
    while True:
        try:
            return require_topics(
                settings, topics, wait_for_broker(settings, timeout=min(settings.connect_timeout_s, 5))
            )
        except (BrokerUnavailable, TopicMissing) as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                raise
            reason = "no broker answers" if isinstance(exc, BrokerUnavailable) else "topics missing"
            log.warning(
                "%s: Kafka at %s not ready (%s, attempt %d); retrying in %.1f s, giving up in %.0f s",
                who,
                settings.bootstrap_servers,
                reason,
                attempt,
                min(delay, left),
                left,
            )
            time.sleep(min(delay, left))
            delay, attempt = min(delay * 2, 10.0), attempt + 1


def require_topics(settings: Settings, topics: list[str], metadata: ClusterMetadata | None = None) -> ClusterMetadata:
    """Metadata of a cluster that has every topic in ``topics``, else :class:`TopicMissing`."""
    metadata = metadata or wait_for_broker(settings)
    missing = [t for t in topics if t not in metadata.topics or metadata.topics[t].error is not None]
    if missing:
        raise TopicMissing(
            f"Topic(s) {', '.join(missing)} do not exist on {settings.bootstrap_servers}. "
            "Create them with `labkit topics create` (same --bootstrap and topic settings)."
        )
    return metadata


@dataclass(frozen=True)
class PartitionInfo:
    """One partition as a learner inspects it: where its log starts and ends, and how far a group has read."""

    topic: str
    partition: int
    leader: int
    low: int  # first offset still stored
    high: int  # offset the next record will get ("high watermark", end of the log)
    committed: int | None  # next offset the consumer group will read; None = nothing committed yet

    @property
    def lag(self) -> int | None:
        """Records the group has not finished yet."""
        if self.committed is None:
            return None
        return max(self.high - self.committed, 0)


def describe_topics(
    settings: Settings, topics: list[str] | None = None, group_id: str | None = None
) -> list[PartitionInfo]:
    """Each partition of ``topics``: offsets and ``group_id``'s commit (default: the processors' group).

    Asked from outside the group by an admin client (:func:`~labkit.kafka.offsets.watermarks` and
    :func:`~labkit.kafka.offsets.committed_offsets`): describing a group never disturbs it.
    """
    topics = topics or labkit_topics(settings)
    admin = make_admin(settings)
    metadata = require_topics(settings, topics, wait_for_broker(settings, admin=admin))
    partitions = [TopicPartition(t, p) for t in topics for p in sorted(metadata.topics[t].partitions)]
    marks = watermarks(admin, partitions, timeout=settings.connect_timeout_s)
    committed = committed_offsets(admin, group_id or settings.group_id, partitions, timeout=settings.connect_timeout_s)
    return [
        PartitionInfo(
            topic=tp.topic,
            partition=tp.partition,
            leader=metadata.topics[tp.topic].partitions[tp.partition].leader,
            low=marks[tp.topic, tp.partition][0],
            high=marks[tp.topic, tp.partition][1],
            committed=committed[tp.topic, tp.partition],
        )
        for tp in partitions
    ]


def group_assignments(settings: Settings, group_id: str | None = None) -> dict[str, list[tuple[str, int]]] | None:
    """Live members of a consumer group (client ids) and the (topic, partition)s each one owns right now.

    An empty list for a member = joined but idle: the group has more members than partitions.
    An empty dict = nobody is in the group. ``None`` = the broker did not say: no answer within
    ``connect_timeout_s``, or a busy group without a member list (the embedded Tansu broker may
    not answer DescribeGroups, and lists no members when it does; Apache Kafka does both).
    """
    admin = make_admin(settings)
    group = group_id or settings.group_id
    try:
        future = admin.describe_consumer_groups([group], request_timeout=settings.connect_timeout_s)[group]
        description = future.result(timeout=settings.connect_timeout_s + 1)
    except (KafkaException, FutureTimeout) as exc:
        log.debug("group %s not described: %r", group, exc)
        return None
    if not description.members and description.state not in (ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD):
        # Apache Kafka answers a group without members with EMPTY (or DEAD); the embedded broker answers
        # STABLE with no members even while consumers are in the group: it did not say who they are.
        log.debug("group %s is %s but no members were listed: unknown", group, description.state)
        return None
    owned: dict[str, list[tuple[str, int]]] = {}
    for member in description.members:
        partitions = member.assignment.topic_partitions if member.assignment else []
        owned.setdefault(member.client_id, []).extend(sorted((tp.topic, tp.partition) for tp in partitions))
    return owned


def group_members(settings: Settings, group_id: str | None = None) -> list[str]:
    """Client ids of the live members of a consumer group (default: the processors); [] when unknown."""
    return list(group_assignments(settings, group_id) or {})


def read_topic(settings: Settings, topic: str, limit: int = 10_000, idle_s: float = 2.0) -> list[Message]:
    """Every record of ``topic`` from offset 0 (up to ``limit``), read outside any consumer group.

    For looking at a topic (the dead letters, the raw results with their duplicates) without
    moving anyone's committed offsets. Stops once no record has arrived for ``idle_s``.
    """
    partitions = sorted(require_topics(settings, [topic]).topics[topic].partitions)
    consumer = make_consumer(settings, client_id="labkit-reader")
    try:
        # Every partition empty: nothing to wait for. (Only "empty or not": the lab's broker counts batches
        # in its end offsets, so they cannot say how many records to expect; see labkit.kafka.offsets.)
        if not end_offsets(consumer, [topic], timeout=settings.connect_timeout_s):
            return []
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
        records: list[Message] = []
        quiet, waited = 0.0, 0.0
        # The first fetch takes a moment after assign(): count quiet time from the first record on.
        while len(records) < limit and quiet < idle_s and waited < settings.connect_timeout_s:
            message = consumer.poll(0.2)
            if message is None and records:
                quiet += 0.2
            elif message is None:
                waited += 0.2
            elif not message.error():
                records.append(message)
                quiet = 0.0
        return records
    finally:
        consumer.close()
