"""Reliability on three Apache Kafka brokers: uploads keep flowing while a broker is SIGKILLed.

The broker killed is a partition leader or the group coordinator. Replication factor 3 and
``min.insync.replicas=2`` (what labkit's three-node cluster sets), the web's and processors'
idempotent ``acks=all`` producers, and the history's sink. In each scenario 300 uploads come
from 20 WebSocket clients, and a broker is SIGKILLed after the first 60 are accepted: the leader
of an ``image-requests`` partition, the leader of an ``image-results`` partition, the
processors' group coordinator. Every accepted upload must get its result (none lost, none
failed), the web app may refuse only with 503 + Retry-After (the clients retry), and the history
must hold a row for every accepted upload. The failover time (the kill → the first acknowledged
produce to a partition that broker led) is printed. This module starts its own cluster whatever
engine the rest of the session runs on.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from labkit._net import free_ports
from labkit.bench.load import run_load
from labkit.history.database import open_database
from labkit.history.sink import Sink
from labkit.kafka.admin import create_topics
from labkit.kafka.engines import ApacheKafka
from labkit.kafka.failover import FailoverClock, coordinator_of, leader_of

REPO = Path(__file__).resolve().parents[1]
UPLOADS, CLIENTS, KILL_AFTER = 300, 20, 60


@pytest.fixture(scope="module")
def cluster():
    logs = REPO / "test-artifacts" / f"cluster-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    with ApacheKafka(port=free_ports(3), brokers=3, log_dir=logs) as running:
        yield running


@pytest.fixture
def pipeline(cluster, embedded_history, scorer):
    """A processor, the sink and the web app (threads) on the cluster, with topics of their own."""
    from conftest import WebServer
    from labkit.processor import Processor
    from labkit.tasks import build_task

    tag = uuid.uuid4().hex[:8]
    settings = embedded_history.model_copy(
        update={
            "bootstrap": cluster.bootstrap_servers,
            "requests_topic": f"requests-{tag}",
            "results_topic": f"results-{tag}",
            "dead_letter_topic": f"dlq-{tag}",
            "embeddings_topic": f"embeddings-{tag}",
            "group_prefix": f"cluster-{tag}",
        }
    )
    create_topics(settings)  # replication factor min(3, brokers) = 3
    processor = Processor(settings, task=build_task(settings, scorer), name="cluster-processor")
    processor.start_in_thread(60)
    database = open_database(settings)
    sink = Sink(settings, database)
    sink_thread = threading.Thread(target=sink.run, name="sink", daemon=True)
    sink_thread.start()
    try:
        with WebServer(settings) as web:
            yield settings, web, processor, database
    finally:
        sink.stop()
        sink_thread.join(30)
        processor.stop()


def _photos() -> list[bytes]:
    return [path.read_bytes() for path in sorted((REPO / "tests" / "data" / "photos" / "images").glob("*.jpg"))[:20]]


@pytest.mark.timeout(600)
@pytest.mark.parametrize("victim", ["requests leader", "results leader", "group coordinator"])
def test_every_accepted_upload_gets_its_result_while_a_broker_is_killed(cluster, pipeline, victim):
    settings, web, processor, database = pipeline
    node = {
        "requests leader": lambda: leader_of(settings, settings.requests_topic, 0),
        "results leader": lambda: leader_of(settings, settings.results_topic, 0),
        "group coordinator": lambda: coordinator_of(settings, settings.group_id),
    }[victim]()
    clock = FailoverClock(settings, node)
    outcome: dict = {}
    load = threading.Thread(target=lambda: outcome.update(result=run_load(web.url, _photos(), UPLOADS, CLIENTS)))
    load.start()
    try:
        deadline = time.monotonic() + 120
        while processor.stats.scored < KILL_AFTER:  # in full flow: uploads accepted, scored, committed
            assert load.is_alive() and time.monotonic() < deadline, f"only {processor.stats.scored} scored"
            time.sleep(0.05)
        cluster.kill_node(node)
        killed_at = time.monotonic()
        failover = clock.seconds_since(killed_at)
        print(f"\n{victim}: broker {node} SIGKILLed; a partition it led acknowledged again after {failover:.1f} s")
        load.join(300)
        assert not load.is_alive(), "the load did not finish within 300 s"
    finally:
        cluster.start_node(node)  # the next scenario starts with three brokers again
    result = outcome["result"]
    assert result.lost == [] and result.failed == [], (result.lost[:3], result.failed[:3])
    assert len(result.accepted) == UPLOADS and set(result.statuses) <= {202, 503}, result.statuses
    # The history holds a row for every accepted upload (the sink may need a moment for the last batch).
    accepted, deadline = set(result.accepted), time.monotonic() + 60
    while True:
        with database.connect() as connection:
            rows = {row[0] for row in connection.execute("SELECT request_id FROM images WHERE results ? 'clip'")}
        if accepted <= rows or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert accepted <= rows, f"{len(accepted - rows)} accepted uploads have no row with a result"
    assert 0 < failover < 60


def test_a_node_is_killed_and_started_on_purpose_by_command_and_a_crash_is_restarted(cluster):
    """`labkit cluster kill 2` from another process: node 2 stays down while the owner's supervisor runs.

    A `held` file keeps it down; `labkit cluster start 2` brings it back; a node that dies on its own
    is restarted.
    """
    import signal
    import subprocess
    import sys

    from labkit.kafka.engines.apache import node_serves

    said: list[str] = []
    check, stop = cluster.supervise(said.append), threading.Event()

    def supervise() -> None:  # what `labkit lab` / `labkit broker` do in their main loop
        while not stop.wait(0.2):
            check()

    supervisor = threading.Thread(target=supervise, daemon=True)
    supervisor.start()
    env = {
        **os.environ,
        "LABKIT_ENGINE": "kafka",
        "LABKIT_BROKERS": "3",
        "LABKIT_BROKER_PORT": str(cluster.port),
        "LABKIT_KAFKA_DIR": str(cluster.data_dir),
    }

    def labkit_cluster(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "labkit", "cluster", *args], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    try:
        assert "node 2" in labkit_cluster("kill", "2") and cluster.node_pid(2) is None  # it waits for the death
        time.sleep(2)  # four supervisor checks: a node stopped on purpose stays down
        assert "stopped on purpose" in labkit_cluster("status") and cluster.node_pid(2) is None
        assert "node 2  localhost" in labkit_cluster("start", "2") and node_serves(f"127.0.0.1:{cluster.port + 1}", 2)
        crashed = cluster.node_pid(3)
        os.kill(crashed, signal.SIGKILL)  # not on purpose: the supervisor restarts it
        deadline = time.monotonic() + 60
        while not (cluster.node_pid(3) not in (None, crashed) and node_serves(f"127.0.0.1:{cluster.port + 2}", 3)):
            assert time.monotonic() < deadline, said
            time.sleep(0.2)
        assert any("restarted kafka3" in line for line in said), said
    finally:
        stop.set()
        supervisor.join(5)
