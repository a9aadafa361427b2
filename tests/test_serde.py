"""The result serde and schema versions.

Round trips, refusals that name the field, compatible and breaking versions, and lesson 16's check
fed its plausible wrong answers on the session's real broker.
"""

from __future__ import annotations

import json

import pytest
from confluent_kafka.serialization import MessageField, SerializationContext
from test_exercises import fails, passes

from labkit import exercises
from labkit.errors import WireFormatError
from labkit.kafka.admin import create_topics
from labkit.kafka.client_config import make_producer
from labkit.records.serde import RESULTS
from labkit.records.versions import REQUEST_SCHEMA, RESULT_SCHEMA, SchemaVersion
from labkit.records.wire import ImageRequest, LabelScore, ScoreResult
from labkit.tasks import OcrAnswer, answer_of, describe_result

RESULT = ScoreResult(
    request_id="a" * 32, status="ok", labels=[LabelScore(label="a dog", score=0.9)], partition=2, offset=7
)


def test_a_result_round_trips_with_its_version_header():
    value, headers = RESULTS.serialize(RESULT)
    assert headers == [("labkit-schema", str(RESULT_SCHEMA).encode())]
    assert RESULTS.deserialize(value, headers) == RESULT
    # The confluent-kafka interface: the serializer adds its header to the context's list.
    context_headers: list = []
    assert RESULTS.serializer(RESULT, SerializationContext("t", MessageField.VALUE, context_headers)) == value
    assert context_headers == headers


@pytest.mark.parametrize(
    "value, says",
    [
        (b"not json", "Invalid JSON"),
        (b'{"id": "x"}', "field 'status'"),
        (b'{"id": "x", "status": "ok", "labels": [{"label": "a", "score": "high"}]}', "field 'labels.0.score'"),
        (None, "has no value"),
    ],
)
def test_a_record_that_breaks_the_schema_is_refused_naming_the_field(value, says):
    with pytest.raises(WireFormatError, match=says):
        RESULTS.deserialize(value, [("labkit-schema", b"1.1")])


def test_a_reader_reads_every_minor_version_of_its_major_and_refuses_another_major():
    newer = b'{"schema": 1, "id": "x", "status": "ok", "dominant_colour": "teal"}'
    assert RESULTS.deserialize(newer, [("labkit-schema", b"1.9")]).id == "x"  # the unknown field is ignored
    assert RESULTS.deserialize(b'{"id": "x", "status": "ok"}').partition is None  # no header: 1.0, defaults fill in
    with pytest.raises(WireFormatError, match="schema 2.0, but this reader understands 1.x"):
        RESULTS.deserialize(newer, [("labkit-schema", b"2.0")])
    with pytest.raises(WireFormatError, match="MAJOR.MINOR"):
        RESULTS.deserialize(newer, [("labkit-schema", b"one")])


def test_versions_parse_and_compare():
    assert SchemaVersion.parse("1") == (1, 0) and str(SchemaVersion.parse("1.12")) == "1.12"
    assert SchemaVersion(1, 2) > SchemaVersion(1, 1) and SchemaVersion(1, 0).reads(SchemaVersion(1, 5))
    for bad in ["", "1.", "v1", "1.2.3", None]:
        with pytest.raises(WireFormatError):
            SchemaVersion.parse(bad)


def test_requests_carry_their_version_and_a_processor_refuses_another_major():
    request = ImageRequest(request_id="b" * 32, image=b"jpeg", content_type="image/jpeg")
    headers = dict(request.headers())
    assert headers["labkit-schema"] == str(REQUEST_SCHEMA).encode()
    for readable in [b"1", b"1.0", b"1.4"]:
        parsed = ImageRequest.from_record(
            request.key(), b"jpeg", [("content-type", b"image/jpeg"), ("labkit-schema", readable)]
        )
        assert parsed.request_id == request.request_id
    with pytest.raises(WireFormatError, match="upgrade the processor"):
        ImageRequest.from_record(request.key(), b"jpeg", [("content-type", b"image/jpeg"), ("labkit-schema", b"2.0")])


def test_the_json_schema_is_published_with_its_version():
    schema = RESULTS.json_schema()
    assert schema["version"] == str(RESULT_SCHEMA)
    assert {"request_id", "status"} <= set(schema["required"]) and "partition" not in schema["required"]
    assert {"schema", "answer", "labels", "timings_ms", "partition", "offset"} <= set(schema["properties"])


def test_compatible_evolution_check(settings, capsys):
    create_topics(settings)
    producer = make_producer(settings)
    for offset in range(2):  # results as today's processors write them: the "old" records of the exercise
        value, headers = RESULTS.serialize(RESULT.model_copy(update={"offset": offset}))
        producer.produce(settings.results_topic, key=RESULT.request_id.encode(), value=value, headers=headers)
        producer.flush(5)
    check = exercises.check_compatible_evolution

    class Required(ScoreResult):
        width: int
        height: int

    class Optional(ScoreResult):
        width: int | None = None
        height: int | None = None

    class RetypedField(ScoreResult):
        width: int | None = None
        batch_size: str = ""  # type: ignore[assignment]

    from pydantic import BaseModel

    class Unrelated(BaseModel):  # drops every field today's readers need
        width: int | None = None

    nxt = f"{RESULT_SCHEMA.major}.{RESULT_SCHEMA.minor + 1}"  # the next minor version
    fails("pydantic model class", check, settings, object(), nxt)
    fails("MAJOR.MINOR", check, settings, Optional, "two")
    fails("new major version", check, settings, Optional, "2.0")
    fails("needs a new version", check, settings, Optional, str(RESULT_SCHEMA))
    fails("adds no field", check, settings, ScoreResult, nxt)
    fails("give every new field a default", check, settings, Required, nxt)
    fails("field 'batch_size'", check, settings, RetypedField, nxt)
    fails(f"cannot read your {nxt} record", check, settings, Unrelated, nxt)
    passes(check, settings, Optional, nxt, capsys=capsys)


def test_results_before_1_3_are_read_and_1_3_results_stay_readable_by_older_readers():
    """1.3 renamed `id` to `request_id` and moved each task's answer into `answer`, keeping the old fields as copies."""
    old_clip = b'{"schema": 1, "id": "c", "status": "ok", "labels": [{"label": "cat", "score": 0.9}]}'
    old_ocr = b'{"schema": 1, "id": "o", "status": "ok", "task": "ocr", "text": "HI", "lines": []}'
    clip = RESULTS.deserialize(old_clip, [("labkit-schema", b"1.2")])
    ocr = RESULTS.deserialize(old_ocr, [("labkit-schema", b"1.2")])
    assert clip.request_id == "c" and clip.answer == {"labels": [{"label": "cat", "score": 0.9}]}
    assert ocr.request_id == "o" and ocr.answer == {"text": "HI", "lines": []}

    written = json.loads(RESULTS.serialize(clip)[0])  # what a 1.2 reader finds in a 1.3 record: its old fields
    assert written["id"] == written["request_id"] == "c" and written["labels"] == written["answer"]["labels"]
    assert RESULTS.serialize(clip)[1] == [("labkit-schema", b"1.3")]


def test_each_task_reads_its_own_answer_and_refuses_a_field_it_does_not_declare():
    good = ScoreResult(request_id="x", status="ok", task="ocr", answer={"text": "A", "lines": []})
    assert isinstance(answer_of(good), OcrAnswer) and describe_result(good) == "x: ocr: A"
    stray = ScoreResult(request_id="x", status="ok", task="ocr", answer={"text": "A", "caption": "a cat"})
    with pytest.raises(WireFormatError, match="caption"):
        answer_of(stray)
    error = ScoreResult(request_id="x", status="error", task="clip", error="bad image")
    assert answer_of(error) is None and describe_result(error) == "x: clip error: bad image"
