"""Checks for lesson 16: evolving the result schema without breaking its readers or its writers."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError

from ..config import Settings
from ..errors import WireFormatError
from ..kafka.admin import read_topic
from ..kafka.client_config import make_producer
from ..records.serde import RESULTS, Serde, validation_problem
from ..records.versions import RESULT_SCHEMA, SchemaVersion
from ..records.wire import ScoreResult, record_headers
from ._feedback import require, solved
from ._setup import fresh_topic

#: The smallest record a 1.x reader may meet: written by a 1.0 processor, before the header existed.
_OLDEST = b'{"schema": 1, "id": "0123456789abcdef0123456789abcdef", "status": "ok", "labels": []}'


def _old_records(settings: Settings) -> list[bytes]:
    """Results the lab's processors wrote (today's version), plus the oldest form a 1.x reader may meet."""
    written = [m.value() for m in read_topic(settings, settings.results_topic, limit=200, idle_s=0.5)]
    return [value for value in written if value] + [_OLDEST]


def check_compatible_evolution(settings: Settings, model: Any, version: Any) -> None:
    """``model`` at ``version`` is a compatible evolution of :class:`ScoreResult`.

    Old records read with it, and today's reader reads what it writes (through the broker).
    """
    require(
        isinstance(model, type) and issubclass(model, BaseModel),
        "`NewResult` should be a pydantic model class: `class NewResult(ScoreResult): ...` with your new field.",
    )
    try:
        new = SchemaVersion.parse(str(version))
    except WireFormatError:
        new = None
    require(
        new is not None,
        f"`version` is {version!r}: write it as 'MAJOR.MINOR', e.g. '{RESULT_SCHEMA.major}.{RESULT_SCHEMA.minor + 1}'.",
    )
    assert new is not None
    require(
        new.major == RESULT_SCHEMA.major,
        f"{new} is a new major version: every reader of {RESULT_SCHEMA.major}.x would refuse your records (a "
        "processor dead-letters them). An added optional field is a compatible change: keep the major, bump the minor.",
    )
    require(
        new > RESULT_SCHEMA,
        f"Results are {RESULT_SCHEMA} today; a changed schema needs a new version, so readers can tell "
        f"the two apart: {RESULT_SCHEMA.major}.{RESULT_SCHEMA.minor + 1}.",
    )
    added = sorted(set(model.model_fields) - set(ScoreResult.model_fields))
    require(added, "Your model adds no field: add the one the exercise asks for (with a default).")

    olds = _old_records(settings)
    for old in olds:
        try:
            upgraded = model.model_validate_json(old)
        except ValidationError as exc:
            require(
                False,
                f"A record written before your change does not read with your model: {validation_problem(exc)}. "
                "Records already in Kafka don't have your field — give every new field a default "
                "(e.g. `= None`), and keep the old fields' types.",
            )
    topic = fresh_topic(settings, "schema-evolution", partitions=1)
    value, headers = Serde(model, new).serialize(upgraded, topic)
    producer = make_producer(settings)
    producer.produce(topic, key=b"evolved", value=value, headers=headers)
    require(producer.flush(settings.connect_timeout_s) == 0, f"Could not produce to {topic}: is the broker up?")
    (record,) = read_topic(settings, topic, idle_s=0.5)
    try:
        read_back = RESULTS.deserialize(record.value(), record_headers(record), topic)
    except WireFormatError as exc:
        require(
            False,
            f"Today's readers (the web app, LabClient) cannot read your {new} record: {exc}. A minor version "
            "may only add optional fields: keep every existing field, with its name and type.",
        )
    solved(
        f"schema {new} adds {', '.join(added)}: {len(olds)} older records read with your model, and today's "
        f"{RESULT_SCHEMA} reader read result {read_back.request_id[:8]} back from {topic}, "
        "skipping the field it does not know."
    )
