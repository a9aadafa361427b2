"""The wire format: what an image request and a task's result look like inside Kafka.

Request (topic ``image-requests``)
    key      the request id (32 hex chars). Kafka hashes the key to pick the partition, so
             one request always lands in one partition.
    value    the image file itself (JPEG/PNG/WebP/GIF bytes), not base64: no 33 % overhead.
    headers  ``content-type`` (e.g. ``image/jpeg``), ``labkit-schema`` (:mod:`labkit.records.versions`),
             ``labkit-sent-at`` (ms since the epoch), optional ``labkit-filename``,
             ``labkit-labels`` and ``labkit-tasks``.

Result (topic ``image-results``)
    key      the same request id, so a result can be matched to its request.
    value    UTF-8 JSON, a :class:`ScoreResult`, one per task: the envelope every task shares
             (request id, status ``ok``/``error``, the task, the model id, the request's
             partition and offset, timings in ms) and ``answer``, the task's own model
             (``labkit.tasks``: CLIP's labels, OCR's text and lines…). :mod:`labkit.records.serde`
             writes and reads it against its JSON Schema.
    headers  ``labkit-schema`` (:mod:`labkit.records.versions`: what a version promises).

Embedding (topic ``image-embeddings``)
    One per CLIP result, keyed by the request id: :mod:`labkit.records.embeddings`.

Dead letter (topic ``image-requests-dlq``)
    The original key, value and headers, plus ``labkit-dlq-error`` and the origin
    (``labkit-dlq-topic``/``-partition``/``-offset``), so nothing is lost and the bad record
    can be found, fixed and replayed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, cast

from pydantic import AliasChoices, BaseModel, Field, TypeAdapter, ValidationError, computed_field, model_validator

from ..errors import WireFormatError
from .versions import H_SCHEMA, REQUEST_SCHEMA, SCHEMA_VERSION, SchemaVersion

if TYPE_CHECKING:
    from confluent_kafka import Message


H_CONTENT_TYPE = "content-type"
H_SENT_AT = "labkit-sent-at"
H_FILENAME = "labkit-filename"
H_LABELS = "labkit-labels"
H_TASKS = "labkit-tasks"

#: Limits on custom candidate labels per request (each costs a text-tower pass once per label set).
MAX_LABELS = 100
MAX_LABEL_CHARS = 80

#: Headers as labkit reads them: (name, value) pairs, the value bytes or None (a header without one).
Headers = Sequence[tuple[str, bytes | None]]
#: Headers as ``Producer.produce`` takes them: confluent_kafka's list form (labkit's values are bytes).
ProduceHeaders = list[tuple[str, str | bytes | None]]


def now_ms() -> int:
    """Wall-clock time in ms since the epoch, the unit of every labkit timestamp."""
    return int(time.time() * 1000)


def new_request_id() -> str:
    return uuid.uuid4().hex


def record_headers(message: Message) -> Headers | None:
    """A consumed record's headers.

    confluent_kafka types them as anything ``produce`` accepts (a dict, str values); what a consumer
    hands out is a list of (name, bytes or None) pairs, or None.
    """
    return cast("Headers | None", message.headers())


class RecordPosition(NamedTuple):
    """Where a consumed record sits."""

    topic: str
    partition: int
    offset: int


def record_position(message: Message) -> RecordPosition:
    """A consumed record's topic, partition and offset.

    confluent_kafka types each as Optional (a Message built by hand has none); a record a consumer
    handed out, without an error, has all three.
    """
    topic, partition, offset = message.topic(), message.partition(), message.offset()
    assert topic is not None and partition is not None and offset is not None, "not a consumed record"
    return RecordPosition(topic, partition, offset)


def _header(headers: Headers | None, name: str) -> str | None:
    for key, value in headers or ():
        if key == name and value is not None:
            return value.decode("utf-8", "replace")
    return None


def validate_tasks(tasks: object) -> tuple[str, ...]:
    """Task names as a clean tuple (lowercase words, 1 to 10), else :class:`WireFormatError` saying why."""
    if not isinstance(tasks, (list, tuple)) or not all(isinstance(task, str) for task in tasks):
        raise WireFormatError('tasks must be a list of task names, e.g. ["clip", "ocr"]')
    cleaned = tuple(dict.fromkeys(task.strip().lower() for task in tasks if task.strip()))
    if not 1 <= len(cleaned) <= 10 or not all(task.replace("_", "").isalnum() and task.isascii() for task in cleaned):
        raise WireFormatError(f"give 1 to 10 task names made of letters, digits and _ (got {list(cleaned)[:10]})")
    return cleaned


def _tasks_header(request_id: str, text: str | None) -> tuple[str, ...] | None:
    if text is None:
        return None
    try:
        return validate_tasks(json.loads(text))
    except ValueError:
        raise WireFormatError(f"request {request_id} has a {H_TASKS} header that is not a JSON list") from None
    except WireFormatError as exc:
        raise WireFormatError(f"request {request_id}: {exc}") from None


def validate_labels(labels: object) -> tuple[str, ...]:
    """Custom labels as a clean tuple, or :class:`WireFormatError` saying which limit was broken."""
    if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) for label in labels):
        raise WireFormatError("custom labels must be a list of strings")
    cleaned = tuple(dict.fromkeys(" ".join(label.split()) for label in labels if label.strip()))
    if not 2 <= len(cleaned) <= MAX_LABELS:
        raise WireFormatError(f"give between 2 and {MAX_LABELS} different labels (got {len(cleaned)})")
    too_long = [label for label in cleaned if len(label) > MAX_LABEL_CHARS]
    if too_long:
        raise WireFormatError(f"labels may have at most {MAX_LABEL_CHARS} characters: {too_long[0][:20]!r}…")
    return cleaned


@dataclass
class ImageRequest:
    """One image to score, as it travels on the requests topic."""

    request_id: str  # the record key
    image: bytes
    content_type: str
    sent_at_ms: int = field(default_factory=now_ms)
    filename: str | None = None
    labels: tuple[str, ...] | None = None  # custom candidate labels; None = the processor's label set
    tasks: tuple[str, ...] | None = None  # the tasks meant to see it (``clip``, ``ocr``…); None = every task

    def wants(self, task: str) -> bool:
        """Whether the task ``task`` should process this request."""
        return self.tasks is None or task in self.tasks

    def key(self) -> bytes:
        return self.request_id.encode()

    def headers(self) -> ProduceHeaders:
        headers: ProduceHeaders = [
            (H_CONTENT_TYPE, self.content_type.encode()),
            (H_SCHEMA, str(REQUEST_SCHEMA).encode()),
            (H_SENT_AT, str(self.sent_at_ms).encode()),
        ]
        if self.filename:
            headers.append((H_FILENAME, self.filename.encode("utf-8", "replace")))
        if self.labels:
            headers.append((H_LABELS, json.dumps(list(self.labels)).encode()))
        if self.tasks is not None:
            headers.append((H_TASKS, json.dumps(list(self.tasks)).encode()))
        return headers

    @classmethod
    def from_record(cls, key: bytes | None, value: bytes | None, headers: Headers | None) -> "ImageRequest":
        """Parse a consumed record; :class:`WireFormatError` says what is wrong with it."""
        if not key:
            raise WireFormatError("request record has no key (the request id)")
        try:
            request_id = key.decode("ascii")
        except UnicodeDecodeError:
            raise WireFormatError("request key is not an ASCII request id") from None
        schema = _header(headers, H_SCHEMA)
        if schema is None:
            raise WireFormatError(f"request {request_id} has no {H_SCHEMA} header; send '{REQUEST_SCHEMA}'")
        try:
            version = SchemaVersion.parse(schema)
        except WireFormatError as exc:
            raise WireFormatError(f"request {request_id}: {exc}") from None
        if not REQUEST_SCHEMA.reads(version):
            raise WireFormatError(
                f"request {request_id} has schema {version}, but this processor reads {REQUEST_SCHEMA.major}.x: "
                f"upgrade the processor, then replay the record from the dead-letter topic"
            )
        content_type = _header(headers, H_CONTENT_TYPE)
        if not content_type or not content_type.startswith("image/"):
            raise WireFormatError(f"request {request_id} has content-type {content_type!r}, expected image/*")
        if not value:
            raise WireFormatError(f"request {request_id} carries no image bytes")
        sent_at = _header(headers, H_SENT_AT)
        try:
            sent_at_ms = int(sent_at) if sent_at else now_ms()
        except ValueError:
            raise WireFormatError(f"request {request_id} has a non-numeric {H_SENT_AT} header") from None
        labels_json = _header(headers, H_LABELS)
        labels: tuple[str, ...] | None = None
        if labels_json is not None:
            try:
                labels = validate_labels(json.loads(labels_json))
            except ValueError:
                raise WireFormatError(f"request {request_id} has a {H_LABELS} header that is not JSON") from None
        return cls(
            request_id=request_id,
            image=value,
            content_type=content_type,
            sent_at_ms=sent_at_ms,
            filename=_header(headers, H_FILENAME),
            labels=labels,
            tasks=_tasks_header(request_id, _header(headers, H_TASKS)),
        )


class LabelScore(BaseModel):
    """One candidate label and its probability among all candidates (0..1): a row of CLIP's answer."""

    label: str
    score: float


class TextLine(BaseModel):
    """One line of text OCR read: the text, its confidence (0..1) and its box (4 corner points, pixels)."""

    text: str
    score: float
    box: list[tuple[float, float]] = []


class Timings(BaseModel):
    """Where the time went, in milliseconds."""

    queued: float = Field(0, description="sent → a processor fetched it (waiting in Kafka)")
    batch_wait: float = Field(
        0, description="fetched → its batch's forward pass began, less its own decode (the cost of batching)"
    )
    decode: float = Field(0, description="image bytes → pixels → model input")
    inference: float = Field(0, description="this image's share of its batch's model run (CLIP forward pass, OCR)")
    total: float = Field(0, description="sent → result produced")


#: The answer fields results before 1.3 carried at the top level, by task: a 1.3 writer still fills them
#: (so a 1.0–1.2 reader keeps working), a 1.3 reader rebuilds ``answer`` from them. 2.0 drops them.
LEGACY_ANSWER_FIELDS: dict[str, tuple[str, ...]] = {"clip": ("labels",), "ocr": ("text", "lines")}
_LEGACY_TYPES: dict[str, TypeAdapter[Any]] = {
    "labels": TypeAdapter(list[LabelScore]),
    "text": TypeAdapter(str | None),
    "lines": TypeAdapter(list[TextLine]),
}


class ScoreResult(BaseModel):
    """The JSON value of a result record: the envelope every task shares, and the task's own ``answer``."""

    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    request_id: str = Field(
        validation_alias=AliasChoices("request_id", "id"),
        description="the request this answers (the record key); 1.0–1.2 called it `id`",
    )
    status: Literal["ok", "error"]
    task: str = Field("clip", description="the task that made this result (results before 1.2 were all CLIP's)")
    answer: dict[str, Any] | None = Field(
        None,
        description="1.3: the task's answer, in the task's own model (labkit.tasks: `Task.answer_model`); "
        "null on error",
    )
    model: str = ""
    error: str | None = None
    timings_ms: Timings = Timings()
    batch_size: int = 0
    processor: str = ""
    partition: int | None = Field(None, description="the request's partition in the requests topic")
    offset: int | None = Field(None, description="the request's offset in that partition")
    produced_at_ms: int | None = Field(None, description="when the processor produced this result (ms since epoch)")
    labels: list[LabelScore] = Field([], description="deprecated since 1.3 (CLIP's answer.labels); gone in 2.0")
    text: str | None = Field(None, description="deprecated since 1.3 (OCR's answer.text); gone in 2.0")
    lines: list[TextLine] = Field([], description="deprecated since 1.3 (OCR's answer.lines); gone in 2.0")

    model_config = {"populate_by_name": True}

    @model_validator(mode="after")
    def _migrate(self) -> "ScoreResult":
        """Keep ``answer`` and the 1.2 fields in step: whichever the record has, the other is made from it."""
        legacy = LEGACY_ANSWER_FIELDS.get(self.task, ())
        if self.status != "ok" or not legacy:
            return self
        if self.answer is None:  # written before 1.3: the answer sat at the top level
            self.answer = self.model_dump(include=set(legacy), mode="json")
        else:  # written by 1.3: the old fields too, for readers of 1.0–1.2
            for name in legacy:
                if name in self.answer:
                    setattr(self, name, _LEGACY_TYPES[name].validate_python(self.answer[name]))
        return self

    @computed_field(description="deprecated since 1.3: the request id under its 1.0–1.2 name; gone in 2.0")
    def id(self) -> str:
        return self.request_id

    def to_json(self) -> bytes:
        return self.model_dump_json(by_alias=True).encode()

    def to_dict(self) -> dict:
        return self.model_dump(by_alias=True)

    @classmethod
    def from_json(cls, value: bytes | str | None) -> "ScoreResult":
        """Parse a result record's value; :class:`WireFormatError` if it is not one (or None: no value)."""
        if value is None:  # pydantic's own words for None, which its signature does not allow
            raise WireFormatError(
                "result record is not valid labkit JSON: JSON input should be string, bytes or bytearray"
            )
        try:
            return cls.model_validate_json(value)
        except ValidationError as exc:
            raise WireFormatError(f"result record is not valid labkit JSON: {exc.errors()[0]['msg']}") from None

    def top(self) -> LabelScore | None:
        """CLIP's best label, from its answer (None for other tasks' results and for errors)."""
        labels = (self.answer or {}).get("labels") if self.task == "clip" and self.status == "ok" else None
        return LabelScore.model_validate(labels[0]) if labels else None


def header_dict(headers: Headers | None) -> dict[str, str]:
    """Headers as a ``{name: text}`` dict, for printing and tests (later duplicates win)."""
    return {k: (v or b"").decode("utf-8", "replace") for k, v in headers or ()}
