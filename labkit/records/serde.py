"""Serializers and deserializers (serdes): a value as JSON bytes and back, checked against its schema.

Kafka stores bytes and never looks inside them; the schema is a contract between the programs
that write a topic and the programs that read it. labkit's contract for results is the pydantic
model :class:`~labkit.records.wire.ScoreResult`, published as a JSON Schema (:meth:`Serde.json_schema`),
and a ``labkit-schema: MAJOR.MINOR`` header on every record (see :mod:`labkit.records.wire`).

The classes follow confluent-kafka's ``Serializer``/``Deserializer`` interface (a callable taking
the value and a ``SerializationContext``), so they also plug into its ``SerializingProducer``
and ``DeserializingConsumer``. With a Schema Registry one would use confluent-kafka's
``JSONSerializer`` instead: it registers the schema, enforces a compatibility rule when a new
version is registered, and puts a schema id in the record. labkit has no registry, so the
version travels in a header and each reader knows which major version it understands.
"""

from __future__ import annotations

from typing import Generic, TypeVar, cast

from confluent_kafka.serialization import Deserializer, MessageField, SerializationContext, Serializer
from pydantic import BaseModel, ValidationError

from ..errors import WireFormatError
from .versions import H_SCHEMA, RESULT_SCHEMA, SchemaVersion, schema_of
from .wire import Headers, ProduceHeaders, ScoreResult

Model = TypeVar("Model", bound=BaseModel)


def validation_problem(error: ValidationError) -> str:
    """pydantic's first complaint in one line, e.g. ``field 'labels.0.score': Input should be …``."""
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"])
    return f"field {where!r}: {first['msg']}" if where else first["msg"]


class JsonSerializer(Serializer, Generic[Model]):
    """A pydantic model (or a dict it validates) → UTF-8 JSON; adds ``labkit-schema`` to the headers."""

    def __init__(self, model: type[Model], version: SchemaVersion):
        self.model, self.version = model, version

    def __call__(self, obj: Model | dict, ctx: SerializationContext | None = None) -> bytes:
        try:
            record = obj if isinstance(obj, self.model) else self.model.model_validate(obj)
        except ValidationError as exc:
            raise WireFormatError(f"not a valid {self.model.__name__}: {validation_problem(exc)}") from None
        if ctx is not None and isinstance(ctx.headers, list):
            ctx.headers.append((H_SCHEMA, str(self.version).encode()))
        return record.model_dump_json(by_alias=True).encode()


class JsonDeserializer(Deserializer, Generic[Model]):
    """UTF-8 JSON → a pydantic model; refuses major versions it cannot read (:class:`WireFormatError`)."""

    def __init__(self, model: type[Model], version: SchemaVersion):
        self.model, self.version = model, version

    def __call__(self, value: bytes | None, ctx: SerializationContext | None = None) -> Model:
        headers = ctx.headers if ctx is not None else None
        if isinstance(headers, dict):  # confluent-kafka also accepts headers as a dict of name → str or bytes
            headers = [(name, v.encode() if isinstance(v, str) else v) for name, v in headers.items()]
        written = schema_of(cast("Headers | None", headers), default=SchemaVersion(self.version.major, 0))
        if not self.version.reads(written):
            raise WireFormatError(
                f"the record has schema {written}, but this reader understands {self.version.major}.x: "
                f"upgrade the reader, or have the writer keep to {self.version.major}.x"
            )
        if value is None:
            raise WireFormatError(f"the record has no value; a {self.model.__name__} was expected")
        try:  # fields this reader does not know are ignored (pydantic's default), missing optional ones defaulted
            return self.model.model_validate_json(value)
        except ValidationError as exc:
            raise WireFormatError(
                f"not a valid {self.model.__name__} (schema {written}): {validation_problem(exc)}"
            ) from None


class Serde(Generic[Model]):
    """One record type's serializer and deserializer, its current version and its JSON Schema."""

    def __init__(self, model: type[Model], version: SchemaVersion):
        self.model, self.version = model, version
        self.serializer = JsonSerializer(model, version)
        self.deserializer = JsonDeserializer(model, version)

    def serialize(self, obj: Model | dict, topic: str = "") -> tuple[bytes, ProduceHeaders]:
        """The value and the headers to produce (``labkit-schema`` included)."""
        headers: ProduceHeaders = []
        value = self.serializer(obj, SerializationContext(topic, MessageField.VALUE, headers))
        return value, headers

    def deserialize(self, value: bytes | None, headers: Headers | None = None, topic: str = "") -> Model:
        """A consumed record's value (and headers) as the model; :class:`WireFormatError` if it is not one."""
        return self.deserializer(value, SerializationContext(topic, MessageField.VALUE, list(headers or [])))

    def json_schema(self) -> dict:
        """The JSON Schema of the value, with the version it describes (what a reader in any language can use)."""
        schema = self.model.model_json_schema(by_alias=True)
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "version": str(self.version), **schema}


#: The result records on ``image-results``: what processors write and the web app, LabClient and the lessons read.
RESULTS: Serde[ScoreResult] = Serde(ScoreResult, RESULT_SCHEMA)
