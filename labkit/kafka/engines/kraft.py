"""One KRaft node: its id, listeners and folders, and the ``server.properties`` it runs with."""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Node:
    """One Kafka node of the cluster: its id, where clients and the other controllers reach it, its folder."""

    node_id: int
    host: str
    port: int  # the client (PLAINTEXT) listener
    advertised: str  # HOST:PORT clients are told to use
    controller_port: int  # the CONTROLLER listener: KRaft's Raft traffic between the controllers
    folder: Path

    @property
    def reachable(self) -> str:
        """Where this machine reaches the node's client listener, whatever it advertises.

        Lesson 14 advertises an unreachable name on purpose.
        """
        return f"{'127.0.0.1' if self.host in ('0.0.0.0', '::') else self.host}:{self.port}"

    @property
    def properties_file(self) -> Path:
        return self.folder / "server.properties"

    @property
    def log_dir(self) -> Path:
        """``log.dirs``: the partitions' segment files and the node's ``meta.properties``."""
        return self.folder / "data"

    @property
    def pid_file(self) -> Path:
        return self.folder / "pid"

    @property
    def hold_file(self) -> Path:
        """Present while the node is stopped on purpose (``labkit cluster stop``): nobody restarts it."""
        return self.folder / "held"


def server_properties(node: Node, voters: str, nodes: int) -> str:
    """The ``server.properties`` of ``node`` in a cluster of ``nodes`` combined broker+controller nodes."""
    replicas = min(3, nodes)
    in_sync = min(2, nodes)
    return f"""\
# Written by labkit for node {node.node_id} of {nodes} (labkit/kafka/engines/apache.py); rewritten at every start.
# KRaft mode: no ZooKeeper. Every node is both a broker (serves clients) and a controller (one of the Raft
# quorum that owns the cluster's metadata: topics, partitions, leaders, which brokers are alive).
process.roles=broker,controller
node.id={node.node_id}
controller.quorum.voters={voters}
controller.listener.names=CONTROLLER

# Two listeners: PLAINTEXT for clients and the other brokers (replication), CONTROLLER for the quorum.
# Clients are told to reconnect to advertised.listeners: it must be an address they can reach.
listeners=PLAINTEXT://{node.host}:{node.port},CONTROLLER://127.0.0.1:{node.controller_port}
advertised.listeners=PLAINTEXT://{node.advertised}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
inter.broker.listener.name=PLAINTEXT

# Where this node keeps its partitions: kept across restarts (labkit ... --fresh wipes it).
log.dirs={node.log_dir}

# Replication: each partition on min(3, nodes) brokers; acks=all needs min(2, nodes) of them in sync.
default.replication.factor={replicas}
min.insync.replicas={in_sync}
# Kafka's internal topics: committed offsets (__consumer_offsets) and transactions. Their defaults (3)
# cannot be met by fewer than three brokers, so a one-node cluster must lower them to 1.
offsets.topic.replication.factor={replicas}
transaction.state.log.replication.factor={replicas}
transaction.state.log.min.isr={in_sync}
share.coordinator.state.topic.replication.factor={replicas}
share.coordinator.state.topic.min.isr={in_sync}

# How often the broker deletes segments past retention.ms (default every 5 minutes) and the log cleaner
# looks for logs to compact (default every 15 s): every second here, so a lesson sees both happen.
log.retention.check.interval.ms=1000
log.cleaner.backoff.ms=1000
# The first retention check waits log.initial.task.delay.ms after start-up (default 30 s, documented
# as for testing): a lesson's fresh cluster would wait that long before deleting anything.
log.initial.task.delay.ms=1000
# How often the transaction coordinator aborts transactions open past their transaction.timeout.ms
# (default every 10 s): a processor that died inside a transaction holds back read_committed readers
# of its partitions until then (labkit.kafka.transaction), so every second here.
transaction.abort.timed.out.transaction.cleanup.interval.ms=1000

# A new consumer group starts at once instead of waiting 3 s for more members (the default suits big
# deployments; the lab and its tests make many small groups).
group.initial.rebalance.delay.ms=0
# Kafka's default is true; labkit creates its topics explicitly (labkit topics create), as most
# production clusters require, so a typo in a topic name is an error instead of a new topic.
auto.create.topics.enable=false
"""


def new_cluster_id() -> str:
    """A KRaft cluster id: a random UUID in URL-safe base64 without padding.

    What ``kafka-storage random-uuid`` prints. Like Kafka's own ``Uuid.randomUuid()``, never one that starts
    with ``-``: command-line tools would read it as an option (``kafka-storage format -t -abc…`` fails),
    which would happen to 1 start in 64.
    """
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
        if not cluster_id.startswith("-"):
            return cluster_id
