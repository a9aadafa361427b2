"""Notebook 18's check, fed plausible wrong compose services: each must fail, naming its mistake."""

from __future__ import annotations

import os
import shutil

import pytest

from labkit.exercises import ExerciseFailed, check_monitor_service
from labkit.exercises import compose as compose_check

X_LABKIT = compose_check.load_compose()["x-labkit"]
TAIL = ["labkit", "topics", "tail", "image-results", "--from-beginning"]
AFTER_TOPICS = {"topics": {"condition": "service_completed_successfully"}}
SOLVED = {**X_LABKIT, "command": TAIL, "restart": "no", "depends_on": AFTER_TOPICS}
DRAFT = {  # the lesson's template
    "image": "labkit-app",
    "command": TAIL,
    "environment": {"LABKIT_BOOTSTRAP": "localhost:9092"},
    "depends_on": ["kafka"],
    "restart": "unless-stopped",
}


def fails(says: str, monitor) -> None:
    with pytest.raises(ExerciseFailed) as feedback:
        check_monitor_service(monitor)
    assert says in str(feedback.value), str(feedback.value)
    assert feedback.value._render_traceback_()[0].startswith("❌")


@pytest.fixture
def compose():
    """Compose as CI has it (Debian's docker-compose); the tests that need it fail in CI without it."""
    if compose_check.compose_command() is None:
        if os.environ.get("CI"):
            pytest.fail("docker-compose is missing in CI; .ci/run installs it with apt-get")
        pytest.skip("neither `docker compose` nor docker-compose installed: `apt-get install docker-compose`")


@pytest.fixture
def without_compose(monkeypatch):
    """The check on a machine without Compose: it judges the service as written, in Python."""
    monkeypatch.setattr(compose_check, "compose_command", lambda: None)


@pytest.mark.parametrize(
    "monitor, says",
    [
        (..., "should be a dict"),
        ({**SOLVED, "command": None}, 'Give the service a "command"'),
        ({**SOLVED, "command": [*TAIL, "--fast"]}, "unrecognized arguments: --fast"),
        ({**SOLVED, "image": "python:3.11-slim", "build": None}, "has no labkit in it"),
        ({**SOLVED, "build": None}, "with no build: Compose treats it as an image to *pull*"),
        ({**SOLVED, "image": None}, "builds a second image"),
        ({**SOLVED, "build": {**X_LABKIT["build"], "target": "lab"}}, "two different builds for one name"),
        ({**SOLVED, "environment": {}}, "No LABKIT_BOOTSTRAP"),
        ({**SOLVED, "environment": {"LABKIT_BOOTSTRAP": "localhost:9092"}}, "inside a container `localhost`"),
        ({**SOLVED, "command": [*TAIL, "--bootstrap", "127.0.0.1:9092"]}, "inside a container `localhost`"),
        ({**SOLVED, "environment": {"LABKIT_BOOTSTRAP": "kafka:9092"}}, "the mistake of notebook 14"),
        ({**SOLVED, "depends_on": None}, "waits for nothing"),
        ({**SOLVED, "depends_on": ["kafka"]}, "waits only until the container has started"),
        ({**SOLVED, "depends_on": {"kafka": {"condition": "service_healthy"}}}, "KAFKA_AUTO_CREATE_TOPICS_ENABLE"),
        ({**SOLVED, "command": ["labkit", "topics", "tail", "image-requests", "--from-beginning"]}, "results topic"),
        ({**SOLVED, "command": TAIL[:-1]}, "never ends"),
        ({**SOLVED, "command": [*TAIL, "--follow"]}, "never ends"),
        ({**SOLVED, "restart": "unless-stopped"}, "starts the monitor again each time it exits"),
        ({**SOLVED, "ports": ["9000:9000"]}, "serves nothing"),
        (DRAFT, "with no build"),
    ],
)
def test_each_mistake_is_named(monitor, says, without_compose):
    if isinstance(monitor, dict):
        monitor = {key: value for key, value in monitor.items() if value is not None}
    fails(says, monitor)


def test_the_solution_passes_without_compose(without_compose, capsys):
    check_monitor_service(SOLVED)
    assert "✅ read in Python (no Compose)" in capsys.readouterr().out
    check_monitor_service({**SOLVED, "command": " ".join(TAIL), "restart": "on-failure"})  # a string command works too


def test_compose_judges_the_service_as_it_resolves_it(compose, capsys):
    fails("Compose refuses the file", {**SOLVED, "depends_on": {"nothere": {"condition": "service_healthy"}}})
    fails("Compose refuses the file", {**SOLVED, "restart": False})  # YAML's bare `no`
    fails("waits only until the container has started", {**SOLVED, "depends_on": ["kafka"]})
    fails("with no build", DRAFT)
    check_monitor_service(SOLVED)
    assert "config` accepts it" in capsys.readouterr().out


def test_compose_config_substitutes_variables_from_the_environment(compose, monkeypatch):
    monkeypatch.setenv("LABKIT_MODEL", "test-tiny")
    assert compose_check.resolved_config()["services"]["processor"]["environment"]["LABKIT_MODEL"] == "test-tiny"
    monkeypatch.delenv("LABKIT_MODEL")
    resolved = compose_check.resolved_config()
    assert resolved["services"]["processor"]["environment"]["LABKIT_MODEL"] == "ViT-B-32"
    assert resolved["services"]["topics"]["image"] == "labkit-app"


def test_a_missing_compose_file_says_where_to_run_the_lesson(monkeypatch, tmp_path):
    monkeypatch.setattr(compose_check, "__file__", str(tmp_path / "a" / "b" / "compose.py"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(compose_check.LabkitError, match="clone of the labkit repository"):
        compose_check.find_compose_file()


def test_without_any_compose_the_command_is_none(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert compose_check.compose_command() is None
