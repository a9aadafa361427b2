"""The Kafka engines labkit can start on this machine, chosen by ``LABKIT_ENGINE``.

``tansu`` (embedded, in memory) or ``kafka`` (Apache Kafka, KRaft).

:func:`start_engine` starts the one a :class:`~labkit.config.Settings` names, as ``labkit up``,
``labkit lab`` and ``labkit broker`` do; :func:`make_broker` makes a throw-away single broker
of either engine (lessons and tests use it for brokers with an odd advertised address or behind
a :class:`~labkit.ops.chaos.ChaosProxy`). Clients never know which engine answers: they only get
``bootstrap_servers``.

A lesson about what only Apache Kafka does (replication, retention, transactions…) gets its
cluster from :func:`~labkit.kafka.engines.lesson_cluster.apache_kafka_for`: the lab's own when
it is one, else one of the lesson's own.

    base            what every engine offers: an address for clients, start, stop, a word on its health
    tansu           Tansu, the embedded Kafka-protocol broker: one process, records in memory only
    distribution    where Apache Kafka's jars and a Java to run them come from
    kraft           one KRaft node: its id, listeners and folders, and the ``server.properties`` it runs with
    apache          Apache Kafka in KRaft mode as labkit's own child processes, one node to nine
    control         stop, SIGKILL and start one node of a running cluster from any process (``labkit cluster``)
    lesson_cluster  an Apache Kafka cluster for a lesson about what only Apache Kafka does
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..._net import free_ports
from ...config import Settings, load_settings
from ...errors import LabkitError
from .apache import ApacheKafka, default_cache_dir
from .base import Broker
from .kraft import server_properties
from .tansu import TansuBroker

__all__ = [
    "ENGINES",
    "ApacheKafka",
    "Broker",
    "TansuBroker",
    "make_broker",
    "private_broker",
    "server_properties",
    "start_broker",
    "start_engine",
]

#: ``LABKIT_ENGINE`` → the class that runs it.
ENGINES: dict[str, type[Broker]] = {"tansu": TansuBroker, "kafka": ApacheKafka}


def engine_for(settings: Settings, log_dir: Path | None = None, fresh: bool = False, say=None) -> Broker:
    """The (not yet started) engine ``settings`` describe: its engine, brokers, first port and data folder."""
    if settings.engine == "tansu":  # memory only: every start is fresh
        log_file = log_dir / "broker.log" if log_dir is not None else None
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
        return TansuBroker(settings.broker_port, settings.broker_host, log_file=log_file)
    return ApacheKafka(
        port=settings.broker_port,
        host=settings.broker_host,
        brokers=settings.brokers,
        data_dir=settings.kafka_data_dir,
        version=settings.kafka_version,
        heap_mb=settings.kafka_heap_mb,
        log_dir=log_dir,
        cache_dir=settings.kafka_cache_dir or default_cache_dir(),
        fresh=fresh,
        say=say,
    )


def start_engine(
    settings: Settings, log_dir: Path | None = None, fresh: bool = False, say: Callable[[str], None] | None = None
) -> Broker:
    """Start ``settings``' engine and return it once it serves (``fresh``: wipe Apache Kafka's data first)."""
    return engine_for(settings, log_dir, fresh, say).start()


def make_broker(
    port: int,
    *,
    engine: str | None = None,
    host: str = "127.0.0.1",
    advertised_host: str | None = None,
    advertised_port: int | None = None,
    brokers: int = 1,
    log_dir: Path | None = None,
) -> Broker:
    """A throw-away broker of ``engine`` (default: ``LABKIT_ENGINE``'s) on ``port``, not yet started.

    Apache Kafka's data goes to a temporary folder removed on ``stop()``, so both engines forget
    everything when stopped; ``brokers`` > 1 makes an Apache Kafka cluster on ``port``,
    ``port + 1``… ``advertised_host``/``advertised_port``: the address clients are told to
    reconnect to (behind a proxy, or a wrong one on purpose). ``log_dir``: where Kafka's nodes log.
    """
    settings = load_settings()
    engine = engine or settings.engine
    if engine == "tansu":
        if brokers != 1:
            raise LabkitError(f"Tansu runs one node; for {brokers} brokers use engine='kafka'.")
        return TansuBroker(port, host, advertised_host=advertised_host, advertised_port=advertised_port)
    if engine == "kafka":
        return ApacheKafka(
            port=port,
            host=host,
            brokers=brokers,
            log_dir=log_dir,
            advertised_host=advertised_host,
            advertised_port=advertised_port,
            version=settings.kafka_version,
            heap_mb=settings.kafka_heap_mb,
            cache_dir=settings.kafka_cache_dir or default_cache_dir(),
        )
    raise LabkitError(f"No engine {engine!r}: choose one of {', '.join(ENGINES)}.")


def start_broker(port: int, **options) -> Broker:
    """:func:`make_broker`, started: ``labkit.start_broker(port, advertised_host="kafka-in-docker")``."""
    return make_broker(port, **options).start()


@contextmanager
def private_broker(settings: Settings) -> Iterator[dict[str, Any]]:
    """Settings overrides for a private broker of ``settings``' engine: free ports, data thrown away after.

    For ``labkit bench`` and ``labkit load``, whose stacks must not meet the user's lab:
    ``settings.model_copy(update=overrides)`` then starts one like ``labkit up`` would.
    """
    overrides: dict[str, Any] = {"bootstrap": None, "broker_port": free_ports(settings.brokers)}
    if settings.engine == "kafka":
        overrides["kafka_dir"] = Path(tempfile.mkdtemp(prefix="labkit-kafka-"))
    try:
        yield overrides
    finally:
        if "kafka_dir" in overrides:
            shutil.rmtree(overrides["kafka_dir"], ignore_errors=True)
