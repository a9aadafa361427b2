"""Failover, timed: who leads a partition or coordinates a group, and how long a move takes.

How long a move takes: from the moment a leader's broker dies until a produce is acknowledged again.

With replication factor 3 and ``min.insync.replicas=2``, a cluster of three loses no
acknowledged record when one broker dies: the controller notices (``broker.session.timeout.ms``,
9 s, for a SIGKILLed broker; at once for a clean shutdown), makes an in-sync follower the
leader, and clients retry against it. :class:`FailoverClock` measures that gap from the
outside: a partition of its own led by the broker about to die, one idempotent ``acks=all``
record sent at the moment of the kill, and the time until the broker acknowledges it.
"""

from __future__ import annotations

import time
import uuid

from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import NewTopic

from ..config import Settings
from ..errors import LabkitError
from .client_config import make_admin, producer_config


def leader_of(settings: Settings, topic: str, partition: int) -> int:
    """The broker id leading ``topic``'s ``partition`` now."""
    return (
        make_admin(settings)
        .list_topics(topic, timeout=settings.connect_timeout_s)
        .topics[topic]
        .partitions[partition]
        .leader
    )


def coordinator_of(settings: Settings, group: str) -> int:
    """The broker id coordinating consumer group ``group`` now.

    It is the broker that leads the group's ``__consumer_offsets`` partition.
    """
    admin = make_admin(settings)
    description = admin.describe_consumer_groups([group], request_timeout=settings.connect_timeout_s)[group]
    return description.result(settings.connect_timeout_s + 1).coordinator.id


class FailoverClock:
    """A one-partition topic led by broker ``node`` (replicas on every broker), and a producer connected."""

    def __init__(self, settings: Settings, node: int):
        admin = make_admin(settings)
        brokers = sorted(admin.list_topics(timeout=settings.connect_timeout_s).brokers)
        if node not in brokers or len(brokers) < 2:
            raise LabkitError(
                f"Timing a failover needs broker {node} in a cluster of two or more (this one: {brokers})."
            )
        self.topic = f"failover-probe-{uuid.uuid4().hex[:8]}"
        replicas = [node, *[b for b in brokers if b != node][:2]]  # the first replica is the preferred leader
        # confluent-kafka wants the partition count with an assignment (one list of replicas per partition).
        admin.create_topics([NewTopic(self.topic, 1, replica_assignment=[replicas])])[self.topic].result(10)
        self.producer = Producer(producer_config(settings, "labkit-failover-probe", **{"message.timeout.ms": 60_000}))
        self._send_and_wait(30)  # connected to the leader, producer id assigned: only the failover is left to time

    def _send_and_wait(self, timeout: float) -> float:
        acknowledged: list[float] = []
        errors: list[str] = []

        def delivered(error, _message) -> None:
            (errors.append(str(error)) if error else acknowledged.append(time.monotonic()))

        self.producer.produce(self.topic, b"probe", partition=0, on_delivery=delivered)
        deadline = time.monotonic() + timeout
        while not acknowledged and not errors and time.monotonic() < deadline:
            self.producer.poll(0.01)
        if errors or not acknowledged:
            raise KafkaException(errors[0] if errors else f"no acknowledgement within {timeout:.0f} s")
        return acknowledged[0]

    def seconds_since(self, killed_at: float, timeout: float = 60) -> float:
        """Send one record now; seconds from ``killed_at`` (``time.monotonic()``) to its acknowledgement."""
        return self._send_and_wait(timeout) - killed_at


def time_failover(settings: Settings, cluster, node: int, how: str = "kill") -> float:
    """Seconds from stopping broker ``node`` to the first acknowledged produce to a partition it led.

    ``node`` is a broker of ``cluster``, an :class:`~labkit.ApacheKafka` this process runs. ``how``:
    ``"kill"`` (SIGKILL) or ``"stop"`` (clean shutdown: it hands its leaderships over first).
    The broker is started again before this returns.
    """
    clock = FailoverClock(settings, node)
    try:
        started = time.monotonic()
        cluster.kill_node(node) if how == "kill" else cluster.stop_node(node, wait=False)  # timed from the signal
        return clock.seconds_since(started)
    finally:
        clock.producer.flush(10)
        cluster.start_node(node)
