"""Settings precedence, and topic administration against the real broker."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

from labkit._net import free_port
from labkit.cli import build_parser
from labkit.config import SETTING_GROUPS, Settings, load_settings
from labkit.errors import BrokerUnavailable, TopicMissing
from labkit.kafka.admin import create_topics, describe_topics, require_topics, wait_for_broker


def test_env_overrides_default_and_flag_overrides_env(monkeypatch):
    monkeypatch.setenv("LABKIT_WEB_PORT", "9001")
    monkeypatch.setenv("LABKIT_REQUESTS_TOPIC", "from-env")
    assert load_settings().web_port == 9001
    args = build_parser().parse_args(["up", "--requests-topic", "from-flag", "--max-batch-size", "4"])
    settings = load_settings(**{name: getattr(args, name, None) for name in Settings.model_fields})
    assert settings.requests_topic == "from-flag"
    assert settings.max_batch_size == 4
    assert settings.web_port == 9001  # the unset flag did not hide the environment


def test_each_command_shows_its_own_arguments_first_and_only_the_settings_it_reads(capsys):
    parser = build_parser()
    with pytest.raises(SystemExit):
        parser.parse_args(["topics", "--help"])
    help_text = capsys.readouterr().out
    usage = help_text.split("\n\n")[0]
    assert "{create,list,describe,tail,perf}" in usage and "--bootstrap" not in usage  # settings don't bury it
    assert "--partitions" in help_text and "--group-prefix" in help_text  # what `topics describe` reads...
    assert "--model" not in help_text and "--web-port" not in help_text  # ...and nothing it doesn't
    with pytest.raises(SystemExit):
        parser.parse_args(["config", "--help"])
    every = capsys.readouterr().out
    missing = [name for name in Settings.model_fields if f"--{name.replace('_', '-')} " not in every]
    assert not missing, f"`labkit config --help` does not list {missing}"


def test_every_setting_is_in_exactly_one_group():
    grouped = [name for names in SETTING_GROUPS.values() for name in names]
    assert sorted(grouped) == sorted(Settings.model_fields)


def test_bootstrap_defaults_to_the_broker_port(monkeypatch):
    monkeypatch.delenv("LABKIT_BOOTSTRAP", raising=False)
    assert Settings(broker_port=19999).bootstrap_servers == "localhost:19999"
    parent = Settings(broker_port=19999, model="test-tiny")
    env = parent.to_env()
    assert "LABKIT_BOOTSTRAP" not in env and env["LABKIT_MODEL"] == "test-tiny" and not parent.names_its_broker
    for key, value in env.items():  # a child process started with these variables...
        monkeypatch.setenv(key, value)
    child = Settings()
    assert child.bootstrap_servers == "localhost:19999"  # ...finds the same broker
    assert not child.names_its_broker  # and, like its parent, may start the embedded one there
    assert Settings(bootstrap="localhost:19999").names_its_broker  # a named broker is never replaced


def test_create_topics_is_idempotent(settings):
    first = create_topics(settings)
    assert set(first.values()) == {"created"}
    assert set(create_topics(settings).values()) == {"exists"}
    metadata = require_topics(settings, [settings.requests_topic, settings.results_topic, settings.dead_letter_topic])
    assert len(metadata.topics[settings.requests_topic].partitions) == 3


def test_describe_shows_end_offsets_per_partition(settings):
    create_topics(settings)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for i in range(6):
        producer.produce(settings.requests_topic, value=b"x", partition=i % 3)
        producer.flush(5)  # one record per request: end offsets count records on every broker
    rows = [r for r in describe_topics(settings) if r.topic == settings.requests_topic]
    assert [r.partition for r in rows] == [0, 1, 2]
    assert [r.high for r in rows] == [2, 2, 2]
    assert all(r.committed is None and r.lag is None for r in rows)  # no processor has read yet


def test_missing_topic_says_how_to_create_it(settings):
    with pytest.raises(TopicMissing, match="labkit topics create"):
        require_topics(settings, [settings.requests_topic])


def test_unreachable_broker_fails_fast_naming_the_address():
    port = free_port()
    settings = Settings(bootstrap=f"127.0.0.1:{port}", connect_timeout_s=2)
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match=f"127.0.0.1:{port}"):
        wait_for_broker(settings)
    assert time.monotonic() - started < 6


def test_readme_lists_every_setting():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    missing = [
        name
        for name in Settings.model_fields
        if f"`LABKIT_{name.upper()}`" not in readme or f"`--{name.replace('_', '-')}`" not in readme
    ]
    assert not missing, f"README's configuration table lacks {missing}"
