"""docker-compose.yml, the service Dockerfile and binder/ are valid.

Every command they run exists in the labkit CLI.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from labkit.cli import build_parser
from labkit.config import KAFKA_VERSION

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
    assert kafka["image"] == f"apache/kafka:{KAFKA_VERSION}"  # the version `--engine kafka` runs
    assert "controller" in env["KAFKA_PROCESS_ROLES"] and "ZOOKEEPER" not in str(env).upper()
    assert "kafka:19092" in env["KAFKA_ADVERTISED_LISTENERS"] and "localhost:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == 1
    assert any(v.startswith("kafka-data:") for v in kafka["volumes"])


def test_each_task_has_a_scalable_processor_service():
    services = _compose()["services"]
    parser = build_parser()
    tasks = {}
    for name in ("processor", "ocr"):
        service = services[name]
        assert "container_name" not in service and "ports" not in service  # `--scale NAME=3` works
        args = parser.parse_args(service["command"][1:])
        assert args.command == "processor" and service["restart"] == "unless-stopped"
        assert service["depends_on"]["topics"]["condition"] == "service_completed_successfully"
        tasks[name] = args.task
    assert tasks == {"processor": "clip", "ocr": "ocr"}
    assert services["ocr"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    # Every service knows which tasks score an upload (the web app waits for each one's result).
    assert all(
        "${LABKIT_TASKS:-clip,ocr}" == s["environment"]["LABKIT_TASKS"] for s in services.values() if "build" in s
    )


def test_the_image_has_ocr_and_runs_opencv_headless():
    """rapidocr pulls opencv-python (Qt: needs libGL and X11, absent from python:3.11-slim); the image swaps it."""
    import tomllib

    dependencies = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("rapidocr-onnxruntime") for d in dependencies)  # `pip install .` brings the OCR models
    dockerfile = (REPO / "services" / "Dockerfile").read_text()
    install, swap = dockerfile.index("RUN pip install ."), dockerfile.index("pip uninstall -y opencv-python")
    assert install < swap < dockerfile.index('pip install "opencv-python-headless==$version"')
    assert 'python -c "import cv2"' in dockerfile  # the build fails if the swap left no working cv2


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
