"""docker-compose.yml, the service Dockerfile and binder/: valid, and every command they run exists in the labkit CLI."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def _compose() -> dict:
    return yaml.safe_load((REPO / "docker-compose.yml").read_text())


def test_compose_file_is_valid():
    if not shutil.which("docker-compose"):
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing in CI; .ci/run installs it with apt-get")
        pytest.skip("docker-compose (v1, from apt) not installed: `apt-get install docker-compose`")
    result = subprocess.run(["docker-compose", "config", "-q"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_compose_runs_apache_kafka_in_kraft_mode_with_two_listeners():
    kafka = _compose()["services"]["kafka"]
    env = kafka["environment"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "ZOOKEEPER" not in str(env).upper()
    assert "kafka:19092" in env["KAFKA_ADVERTISED_LISTENERS"] and "localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert any(v.startswith("kafka-data:") for v in kafka["volumes"])


def test_processor_can_be_scaled():
    processor = _compose()["services"]["processor"]
    assert "container_name" not in processor and "ports" not in processor


def test_every_labkit_command_in_compose_and_binder_exists():
    parser = build_parser()
    commands = [s["command"] for s in _compose()["services"].values() if "command" in s]
    commands += [
        shlex.split(line.strip().removeprefix("nohup "))[:3]
        for line in (REPO / "binder" / "start").read_text().splitlines()
        if line.strip().startswith("nohup labkit")
    ]
    assert len(commands) >= 4
    for command in commands:
        assert command[0] == "labkit"
        parser.parse_args([a for a in command[1:] if not a.startswith(">")])  # exits (fails the test) if unknown


def test_dockerfile_targets_exist_for_compose():
    dockerfile = (REPO / "services" / "Dockerfile").read_text()
    for service in _compose()["services"].values():
        if "build" in service:
            assert f"AS {service['build']['target']}" in dockerfile
    for name in ("postBuild", "start"):
        assert os.access(REPO / "binder" / name, os.X_OK)
