"""The ``--setting`` flags of each ``labkit`` command: the setting groups it reads, how they are added."""

from __future__ import annotations

import argparse

from .config import SETTING_GROUPS, Settings

#: The setting groups each command reads (``labkit config`` shows them all).
_CONNECT = ("Kafka connection",)
_ENGINE = (*_CONNECT, "Apache Kafka engine")
_PIPELINE = (*_ENGINE, "Kafka topics", "consumer group", "CLIP model", "processor batches", "image limits", "web app")
USES: dict[str, tuple[str, ...]] = {
    "up": (*_PIPELINE, "history"),
    "lab": (*_PIPELINE, "history", "lab"),
    "bench": _PIPELINE,
    "load": _PIPELINE,
    "broker": (*_ENGINE, "history"),
    "cluster": (*_ENGINE, "history"),
    "topics": (*_CONNECT, "Kafka topics", "consumer group"),
    "kafka-tool": _ENGINE,
    "processor": (*_CONNECT, "Kafka topics", "consumer group", "CLIP model", "processor batches", "image limits"),
    "web": (*_CONNECT, "Kafka topics", "consumer group", "image limits", "web app"),
    "send": (*_CONNECT, "Kafka topics", "image limits"),
    "sink": (*_CONNECT, "Kafka topics", "consumer group", "processor batches", "history"),
    "config": tuple(group for group in SETTING_GROUPS if group != "logging"),
}


def add_settings(parser: argparse.ArgumentParser, command: str) -> argparse.ArgumentParser:
    """After a command's own arguments: a ``--field-name`` flag for each setting it uses, grouped.

    The usage line shows the command's own arguments only (the settings would bury them).
    """
    parser.usage = parser.format_usage().removeprefix("usage: ").strip() + " [--SETTING VALUE ...]"
    for group_name in (*USES[command], "logging"):
        group = parser.add_argument_group(f"{group_name} settings (each also LABKIT_<NAME>)")
        for name in SETTING_GROUPS[group_name]:
            field = Settings.model_fields[name]
            default = "unset" if field.default is None else field.default
            group.add_argument(
                f"--{name.replace('_', '-')}",
                dest=name,
                default=None,
                metavar="VALUE",
                help=f"{field.description} [default: {default}]",
            )
    return parser
