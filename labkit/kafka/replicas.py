"""Who holds each partition of a topic: its leader, replicas and ISR, and waiting for them to change.

A partition of a replicated topic lives on several brokers (its *replicas*); one, the
*leader*, takes every write and read, the others (*followers*) copy from it. The *ISR*
(in-sync replicas) are the replicas caught up with the leader; ``acks=all`` waits for them.
:func:`describe_replicas` reads all three from the cluster (an AdminClient DescribeTopics
call, what ``kafka-topics --describe`` prints); :func:`wait_for_replicas` polls until they
meet a condition — an ISR that shrinks when a broker stops, a new leader after one dies —
and says how long that took. :func:`high_watermarks` asks each partition's leader where its
high watermark is: the offset below which every ISR member has every record (consumers read
only below it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass

from confluent_kafka import KafkaException, TopicCollection, TopicPartition
from confluent_kafka.admin import AdminClient

from ..config import Settings
from ..errors import LabkitError
from .client_config import make_admin, make_consumer


@dataclass(frozen=True)
class PartitionReplicas:
    """One partition: its leader (None while it has none), replicas and in-sync replicas, as broker ids."""

    topic: str
    partition: int
    leader: int | None
    replicas: list[int]
    isr: list[int]


def _describe_once(admin: AdminClient, topic: str) -> list[PartitionReplicas]:
    # A short request timeout: while a broker has just stopped, a request librdkafka sent it may never be
    # answered (measured: a describe hung for the whole 60 s default); asking again, on a new client, works.
    future = admin.describe_topics(TopicCollection([topic]), request_timeout=3)[topic]
    description = future.result(5)
    return [
        PartitionReplicas(
            topic,
            p.id,
            p.leader.id if p.leader is not None else None,
            [node.id for node in p.replicas],
            [node.id for node in p.isr],
        )
        for p in sorted(description.partitions, key=lambda p: p.id)
    ]


def describe_replicas(settings: Settings, topic: str, timeout: float = 20.0) -> list[PartitionReplicas]:
    """Every partition of ``topic`` with its leader, replicas and ISR, as the cluster reports them now."""
    deadline = time.monotonic() + timeout
    admin = make_admin(settings)
    while True:
        try:
            return _describe_once(admin, topic)
        except (KafkaException, FutureTimeout) as exc:
            if time.monotonic() > deadline:
                raise LabkitError(
                    f"The cluster at {settings.bootstrap_servers} did not describe topic {topic!r} within "
                    f"{timeout:.0f} s ({exc!r}). Does the topic exist, and is at least one broker up?"
                ) from None
            admin = make_admin(settings)  # a fresh client: the old one may wait on a broker that is gone
            time.sleep(0.2)


def wait_for_replicas(
    settings: Settings,
    topic: str,
    condition: Callable[[list[PartitionReplicas]], bool],
    what: str,
    timeout: float = 60.0,
) -> tuple[list[PartitionReplicas], float]:
    """Poll :func:`describe_replicas` until ``condition`` holds; return those partitions and seconds taken.

    ``what`` says in words what is awaited ("broker 2 leaves the ISR"), for the error raised
    after ``timeout`` seconds.
    """
    started = time.monotonic()
    while True:
        partitions = describe_replicas(settings, topic, timeout=max(1.0, timeout - (time.monotonic() - started)))
        if condition(partitions):
            return partitions, time.monotonic() - started
        if time.monotonic() - started > timeout:
            raise LabkitError(
                f"Waited {timeout:.0f} s for {what} on topic {topic!r}; the cluster still reports "
                + "; ".join(f"partition {p.partition}: leader {p.leader}, ISR {p.isr}" for p in partitions)
                + ". Is every broker you started running (cluster.running(n))?"
            )
        time.sleep(0.1)


def high_watermarks(settings: Settings, topic: str, partitions: list[int], timeout: float = 20.0) -> dict[int, int]:
    """``{partition: high watermark}`` of ``topic``, asked of each partition's leader now.

    Each attempt uses a new client: one that has been talking to a broker that since stopped may
    send it the request and wait in vain (measured: a 10 s timeout), where a new one asks the
    leader the cluster names now.
    """
    deadline = time.monotonic() + timeout
    while True:
        consumer = make_consumer(settings, client_id="labkit-watermarks")
        try:
            return {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=3)[1] for p in partitions}
        except KafkaException as exc:
            if time.monotonic() > deadline:
                raise LabkitError(
                    f"No leader of {topic!r} reported its high watermark within {timeout:.0f} s "
                    f"({exc.args[0].str()}). Is every partition led by a running broker?"
                ) from None
            time.sleep(0.2)
        finally:
            consumer.close()
