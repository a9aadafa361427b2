"""Kafka's own command-line tools, run from the engine's jars against the session's broker (either engine)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from labkit.errors import LabkitError
from labkit.exercises import fresh_topic
from labkit.kafka.client_config import make_consumer
from labkit.kafka.tools import TOOLS, run_tool


def test_kafka_topics_describes_a_topic_with_its_leader_replicas_and_isr(settings):
    topic = fresh_topic(settings, "described", partitions=3)
    described = run_tool(settings, "kafka-topics", "--describe", "--topic", topic).check()
    lines = [line for line in described.stdout.splitlines() if "Partition:" in line]
    assert len(lines) == 3, described.stdout
    assert all("Leader:" in line and "Replicas:" in line and "Isr:" in line for line in lines), described.stdout
    listed = run_tool(settings, "kafka-topics", "--list").check()
    assert topic in listed.stdout.split()


def test_kafka_consumer_groups_shows_the_lag_labkit_shows(settings):
    topic = fresh_topic(settings, "lagging", partitions=1, records=5)
    group = f"{topic}-readers"
    consumer = make_consumer(settings, group)
    consumer.subscribe([topic])
    read = 0
    while read < 2:
        message = consumer.poll(5)
        assert message is not None, "no record within 5 s"
        read += not message.error()
    consumer.commit(asynchronous=False)  # offset 2 of 5 … on both engines, one record per request
    consumer.close()
    described = run_tool(settings, "kafka-consumer-groups", "--describe", "--group", group).check()
    row = next(line.split() for line in described.stdout.splitlines() if topic in line)
    assert row[:3] == [group, topic, "0"] and row[3:6] == ["2", "5", "3"], described.stdout


def test_a_tool_that_fails_says_what_it_said_and_what_to_do(settings):
    with pytest.raises(LabkitError, match="kafka-topics exited with .*labkit kafka-tool kafka-topics --help"):
        run_tool(settings, "kafka-topics", "--describe", "--topic", "no-such-topic-here").check()
    with pytest.raises(LabkitError, match="does not know the tool 'kafka-nonsense'"):
        run_tool(settings, "kafka-nonsense")


def test_labkit_kafka_tool_runs_one_at_a_terminal(settings):
    topic = fresh_topic(settings, "terminal", partitions=1)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "labkit",
            "kafka-tool",
            "--bootstrap",
            settings.bootstrap_servers,
            "kafka-topics",
            "--list",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert topic in done.stdout.split()
    assert set(TOOLS) >= {"kafka-topics", "kafka-console-consumer", "kafka-consumer-groups", "kafka-consumer-perf-test"}
