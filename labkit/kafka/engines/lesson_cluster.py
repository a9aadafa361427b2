"""An Apache Kafka cluster for a lesson on what only Apache Kafka does: the lab's, or the lesson's own.

Replication, retention, compaction, transactions and the newer rebalance protocols are things
Tansu (the lab's default engine) does not do. A lesson about them asks for a cluster with
:func:`apache_kafka_for`:

- when the lab itself runs Apache Kafka with enough brokers (``labkit lab --engine kafka
  --brokers 3``), the lesson uses that cluster, and stops or kills its nodes through
  :class:`~labkit.kafka.engines.control.ClusterControl` (``labkit lab`` restarts none of them
  until the lesson starts it again);
- otherwise it starts a throw-away Apache Kafka of its own, on free ports, that
  :meth:`LessonCluster.close` stops and deletes. The first one downloads Kafka's jars through
  Maven (once per machine) and needs Java 17 or later.

Either way the lesson's code is the same: ``cluster.settings`` for clients, ``cluster.kill(2)``,
``cluster.start(2)``.
"""

from __future__ import annotations

from ..._net import free_ports
from ...config import Settings
from ...errors import LabkitError
from . import make_broker
from .apache import ApacheKafka
from .control import ClusterControl


class LessonCluster:
    """An Apache Kafka cluster whose nodes a lesson may stop, kill and start one by one; a context manager.

    ``settings``: the lab's settings with ``bootstrap`` pointing at this cluster (and ``engine``
    ``kafka``, ``brokers`` its node count), ready for ``make_producer``/``make_consumer``,
    ``create_topics`` and ``run_tool``. ``private``: True when the lesson started it (and
    :meth:`close` stops it), False when it is the lab's own cluster.
    """

    def __init__(self, settings: Settings, brokers: int):
        self.brokers = brokers
        self._own: ApacheKafka | None = None
        self._control: ClusterControl | None = None
        if settings.engine == "kafka" and settings.brokers >= brokers and _runs_labkits_cluster(settings):
            self._control = ClusterControl(settings)
            self.brokers = settings.brokers
            self.settings = settings
            self.description = f"the lab's own Apache Kafka ({settings.brokers} nodes, {settings.bootstrap_servers})"
        else:
            broker = make_broker(free_ports(brokers), engine="kafka", brokers=brokers)
            assert isinstance(broker, ApacheKafka)
            self._own = broker.start()
            self.settings = settings.model_copy(
                update={"bootstrap": broker.bootstrap_servers, "engine": "kafka", "brokers": brokers}
            )
            self.description = f"an {broker.description} of this lesson's own, at {broker.bootstrap_servers}"

    @property
    def private(self) -> bool:
        return self._own is not None

    @property
    def bootstrap_servers(self) -> str:
        return self.settings.bootstrap_servers

    @property
    def node_ids(self) -> list[int]:
        return list(range(1, self.brokers + 1))

    def kill(self, node_id: int) -> None:
        """SIGKILL node ``node_id``, as a power cut would (no clean shutdown); down until :meth:`start`."""
        if self._own is not None:
            self._own.kill_node(node_id)
        else:
            assert self._control is not None
            self._control.kill(node_id)

    def stop(self, node_id: int) -> None:
        """Shut node ``node_id`` down cleanly (it hands its leaderships over first); down until :meth:`start`."""
        if self._own is not None:
            self._own.stop_node(node_id)
        else:
            assert self._control is not None
            self._control.stop(node_id)

    def start(self, node_id: int) -> None:
        """Start node ``node_id`` again, and return once it serves."""
        if self._own is not None:
            self._own.start_node(node_id)
        else:
            assert self._control is not None
            self._control.start(node_id)

    def start_all(self) -> None:
        """Start every node that is down (a lesson's last cell, so the cluster is whole again)."""
        for node_id in self.node_ids:
            if not self.running(node_id):
                self.start(node_id)

    def running(self, node_id: int) -> bool:
        """True while node ``node_id``'s process runs."""
        if self._own is not None:
            return self._own.node_pid(node_id) is not None
        assert self._control is not None
        return self._control.pid(node_id) is not None

    def close(self) -> None:
        """Stop the cluster if the lesson started it (its data goes too); the lab's own is made whole again."""
        if self._own is not None:
            for node_id in self.node_ids:  # its data is deleted next: no need for clean shutdowns (~6 s for three)
                if self.running(node_id):
                    self._own.kill_node(node_id)
            self._own.stop()
        else:
            self.start_all()

    def __enter__(self) -> LessonCluster:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<LessonCluster: {self.description}>"


def _runs_labkits_cluster(settings: Settings) -> bool:
    """True when labkit started ``settings``' cluster here, so its nodes can be stopped and started."""
    try:
        ClusterControl(settings)
    except LabkitError:
        return False
    return True


def apache_kafka_for(settings: Settings, brokers: int = 1) -> LessonCluster:
    """A lesson's Apache Kafka cluster, ``brokers`` nodes or more: the lab's if it is one, else a new one.

    >>> cluster = apache_kafka_for(settings, brokers=3)   # seconds to start when the lab runs Tansu
    >>> print(cluster.description)
    >>> cluster.kill(2); cluster.start(2)
    >>> cluster.close()                                      # stops it if the lesson started it
    """
    if brokers < 1:
        raise LabkitError(f"brokers={brokers}: a cluster needs at least one broker.")
    return LessonCluster(settings, brokers)
