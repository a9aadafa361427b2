"""The AsyncAPI 3 document of the WebSocket and the Kafka topics, built from settings and models.

``GET /asyncapi.json`` serves it (``/openapi.json`` is the HTTP API's). It describes

* the WebSocket ``/ws``: the client's ``subscribe``, the server's ``result`` (one per task) and ``error``;
* the Kafka topics (named as ``Settings`` names them): ``image-requests``, ``image-results``,
  ``image-embeddings`` and the dead-letter topic, each record's key, headers and value, the schema
  version it carries (``labkit-schema``), and which labkit service sends or receives it, in which
  consumer group (``<group_prefix>-<task>``, ``<group_prefix>-sink``).

JSON values are described by JSON Schemas generated from the pydantic models the wire format uses
(``ScoreResult``, each task's ``answer_model``), so the document follows the code; binary values
(the image file, the float16 embedding) are described as the bytes they are. AsyncAPI's schemas are
JSON Schema draft 07: pydantic's tuples (``prefixItems``, 2020-12) are written as draft 07 arrays.
"""

from __future__ import annotations

import copy
import re
from importlib.metadata import PackageNotFoundError, version
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema

from ..config import Settings
from ..history.sink import sink_group
from ..images import ACCEPTED_FORMATS
from ..records.dead_letters import (
    H_DLQ_ERROR,
    H_DLQ_FAILED_AT,
    H_DLQ_OFFSET,
    H_DLQ_PARTITION,
    H_DLQ_TASK,
    H_DLQ_TOPIC,
)
from ..records.embeddings import DTYPE, EMBEDDING_SCHEMA, H_DIM, H_DTYPE, H_MODEL
from ..records.versions import H_SCHEMA, REQUEST_SCHEMA, RESULT_SCHEMA, SchemaVersion
from ..records.wire import (
    H_CONTENT_TYPE,
    H_FILENAME,
    H_LABELS,
    H_SENT_AT,
    H_TASKS,
    MAX_LABEL_CHARS,
    MAX_LABELS,
    ScoreResult,
)
from ..tasks import TASKS, Shown

ASYNCAPI_VERSION = "3.0.0"
SCHEMAS = "#/components/schemas/"
#: The task whose processors also produce each image's embedding (``labkit.batch``: ``Output.embedding``).
EMBEDDING_TASK = "clip"


class SubscribeMessage(BaseModel):
    """Client → server: push me every result of this upload (those here at once, the rest as they come)."""

    model_config = ConfigDict(
        json_schema_extra={"anyOf": [{"required": ["request_id"]}, {"required": ["id"]}]},
    )

    type: Literal["subscribe"]
    request_id: str | None = Field(None, description="the upload's request id, as its 202 answered it")
    id: str | None = Field(None, description="deprecated: the request id's name before 1.3, still read")


class ErrorMessage(BaseModel):
    """Server → client: the message it sent was no ``subscribe``; the connection stays open."""

    type: Literal["error"]
    error: str = Field(description="what to send instead")


class ShownAnswer(BaseModel):
    """What the page shows of a task's answer, as the task says (``labkit.tasks.Task.show``)."""

    title: str = Field(description="e.g. 'CLIP labels'")
    layout: str = Field(description="'bars' (a score bar per row) or 'lines' (text rows with a percentage)")
    empty: str = Field(description="what to say when there are no rows")
    rows: list[Shown]


def _draft07(schema: Any) -> Any:
    """pydantic's JSON Schema as draft 07 (AsyncAPI's): a tuple's ``prefixItems`` becomes ``items``."""
    if isinstance(schema, dict):
        fixed = {key: _draft07(value) for key, value in schema.items()}
        if "prefixItems" in fixed:
            fixed["items"] = fixed.pop("prefixItems")
            fixed.setdefault("additionalItems", False)
        return fixed
    if isinstance(schema, list):
        return [_draft07(item) for item in schema]
    return schema


def _version_header(current: SchemaVersion, absent: str) -> dict[str, Any]:
    return {
        "type": "string",
        "pattern": rf"^{current.major}\.[0-9]+$",
        "examples": [str(current)],
        "description": f"the record's schema version, MAJOR.MINOR: this labkit writes {current}; a reader of "
        f"{current.major}.x reads every {current.major}.y and refuses another major version. {absent}",
    }


def _answers_by_task(ok: str) -> list[dict[str, Any]]:
    """Per registered task: when ``task`` is it and ``status`` is ``ok``, ``answer`` is its model."""
    return [
        {
            "if": {"required": ["task", "status"], "properties": {"task": {"const": name}, "status": {"const": ok}}},
            "then": {"properties": {"answer": {"$ref": SCHEMAS + task.answer_model.__name__}}},
        }
        for name, task in TASKS.items()
    ]


def payload_schemas() -> dict[str, Any]:
    """``components.schemas``: the result record and each task's answer, from their pydantic models.

    Also the WebSocket's messages, and the two binary values (an image file, a float16 embedding).
    """
    models: list[type[BaseModel]] = [ScoreResult, *(task.answer_model for task in TASKS.values())]
    models += [SubscribeMessage, ErrorMessage, ShownAnswer]
    _, generated = models_json_schema([(model, "serialization") for model in models], ref_template=SCHEMAS + "{model}")
    schemas: dict[str, Any] = _draft07(generated["$defs"])
    # The WebSocket's result: the record as public_view shows it (status done/error, plus `type` and `shown`).
    message = copy.deepcopy(schemas["ScoreResult"])
    message["title"] = "ResultMessage"
    message["description"] = "Server → client: one task's result for a subscribed upload (the result record, shown)."
    message["properties"]["type"] = {"type": "string", "const": "result"}
    message["properties"]["status"] = {
        "type": "string",
        "enum": ["done", "error"],
        "description": "done: the task answered (the record's ok); error: it could not (`error` says why)",
    }
    message["properties"]["shown"] = {
        "anyOf": [{"$ref": SCHEMAS + "ShownAnswer"}, {"type": "null"}],
        "description": "what to show of `answer`, as its task says; null for an error or a task unknown here",
    }
    message["required"] = ["type", *message["required"], "shown"]
    schemas["ResultMessage"] = {"allOf": [message, *_answers_by_task("done")]}
    schemas["ImageResult"] = {
        "description": "A result record's value: ScoreResult, with `answer` in the model of the task named.",
        "allOf": [{"$ref": SCHEMAS + "ScoreResult"}, *_answers_by_task("ok")],
    }
    schemas["ImageFile"] = {
        "type": "string",
        "format": "binary",
        "description": "the image file's own bytes, not base64 (its media type is the content-type header)",
    }
    schemas["Float16Vector"] = {
        "type": "string",
        "format": "binary",
        "description": "the unit-length image embedding as little-endian IEEE 754 float16 values, "
        "labkit-dim × 2 bytes (1,024 bytes for ViT-B/32's 512 dimensions); no header, no padding",
    }
    return schemas


def _headers(properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    return {"type": "object", "description": description, "properties": properties, "required": required}


def request_headers() -> dict[str, Any]:
    """The headers of a request record (Kafka header values are bytes: here UTF-8 text)."""
    return {
        H_CONTENT_TYPE: {
            "type": "string",
            "pattern": "^image/",
            "examples": sorted(ACCEPTED_FORMATS.values()),
            "description": "the image's media type; labkit sends " + ", ".join(sorted(ACCEPTED_FORMATS.values())),
        },
        H_SCHEMA: _version_header(REQUEST_SCHEMA, "A request must carry it."),
        H_SENT_AT: {"type": "string", "pattern": "^[0-9]+$", "description": "when it was sent, ms since the epoch"},
        H_FILENAME: {"type": "string", "description": "the uploaded file's name (a label only)"},
        H_LABELS: {
            "type": "string",
            "contentMediaType": "application/json",
            "description": f"a JSON list of the upload's own candidate labels for CLIP, 2 to {MAX_LABELS}, "
            f"at most {MAX_LABEL_CHARS} characters each; absent: the processor's label set",
        },
        H_TASKS: {
            "type": "string",
            "contentMediaType": "application/json",
            "description": 'a JSON list of the tasks meant to score it, 1 to 10, e.g. ["clip"]; absent: every task',
        },
    }


def kafka_messages() -> dict[str, Any]:
    """``components.messages`` for the four topics: each record's key, headers and value."""
    request_id = {"type": "string", "pattern": "^[0-9a-f]{32}$", "description": "the request id (a uuid4, hex)"}
    dlq_headers = {
        H_DLQ_ERROR: {"type": "string", "maxLength": 1000, "description": "what was wrong (at most 1,000 bytes)"},
        H_DLQ_TOPIC: {"type": "string", "description": "the topic the record was in"},
        H_DLQ_PARTITION: {"type": "string", "pattern": "^[0-9]+$", "description": "its partition there"},
        H_DLQ_OFFSET: {"type": "string", "pattern": "^[0-9]+$", "description": "its offset there"},
        H_DLQ_FAILED_AT: {"type": "string", "pattern": "^[0-9]+$", "description": "when it was given up (ms)"},
        H_DLQ_TASK: {"type": "string", "description": "the task that could not use it (each dead-letters on its own)"},
    }
    return {
        "imageRequest": {
            "name": "imageRequest",
            "title": f"Image request (schema {REQUEST_SCHEMA})",
            "summary": "One image to score, keyed by its request id; every task's group reads it.",
            "contentType": "application/octet-stream",
            "headers": _headers(request_headers(), [H_CONTENT_TYPE, H_SCHEMA], "the request's headers"),
            "payload": {"$ref": SCHEMAS + "ImageFile"},
            "bindings": {"kafka": {"key": request_id, "bindingVersion": "0.5.0"}},
            "x-labkit-schema-version": str(REQUEST_SCHEMA),
        },
        "imageResult": {
            "name": "imageResult",
            "title": f"Result (schema {RESULT_SCHEMA})",
            "summary": "One task's answer to one request (or why it has none), keyed by the request id.",
            "description": "Written and read by `labkit.records.serde.RESULTS`. A minor version only adds optional "
            "fields: readers ignore fields they do not know. `answer` is read strictly, in the task's own model.",
            "contentType": "application/json",
            "headers": _headers(
                {H_SCHEMA: _version_header(RESULT_SCHEMA, "A result without it is read as 1.0.")},
                [],
                "the result's headers",
            ),
            "payload": {"$ref": SCHEMAS + "ImageResult"},
            "correlationId": {"location": "$message.payload#/request_id", "description": "the request it answers"},
            "bindings": {"kafka": {"key": request_id, "bindingVersion": "0.5.0"}},
            "x-labkit-schema-version": str(RESULT_SCHEMA),
        },
        "imageEmbedding": {
            "name": "imageEmbedding",
            "title": f"Image embedding (schema {EMBEDDING_SCHEMA})",
            "summary": "The image's unit CLIP vector, float16, keyed by the request id (the history's sink reads it).",
            "description": "Vectors of two models live in different spaces: compare only those of one labkit-model.",
            "contentType": "application/octet-stream",
            "headers": _headers(
                {
                    H_SCHEMA: _version_header(EMBEDDING_SCHEMA, "Absent: read as the current version."),
                    H_MODEL: {"type": "string", "minLength": 1, "description": "the model, e.g. ViT-B-32/openai"},
                    H_DIM: {"type": "string", "pattern": "^[0-9]+$", "description": "how many values the vector has"},
                    H_DTYPE: {"type": "string", "const": DTYPE, "description": "the value type (absent: float16)"},
                },
                [H_MODEL],
                "the embedding's headers",
            ),
            "payload": {"$ref": SCHEMAS + "Float16Vector"},
            "bindings": {"kafka": {"key": request_id, "bindingVersion": "0.5.0"}},
            "x-labkit-schema-version": str(EMBEDDING_SCHEMA),
        },
        "deadLetter": {
            "name": "deadLetter",
            "title": "Dead letter",
            "summary": "A request a task could not use: its key, value and headers unchanged, plus why and where.",
            "description": 'Read it, fix it, and send it again (to one task: `labkit-tasks: ["<task>"]`). The value '
            "is the original record's, usually an image file; the original headers are as they were.",
            "contentType": "application/octet-stream",
            "headers": {
                **_headers({**request_headers(), **dlq_headers}, list(dlq_headers), "the original headers + why"),
                "additionalProperties": True,
            },
            "payload": {"type": ["string", "null"], "format": "binary", "description": "the original value"},
            "bindings": {
                "kafka": {
                    "key": {"type": ["string", "null"], "description": "the original key (the request id)"},
                    "bindingVersion": "0.5.0",
                }
            },
        },
    }


def _ref(*path: str) -> dict[str, str]:
    return {"$ref": "#/" + "/".join(path)}


def _operation(
    action: str,
    channel: str,
    messages: list[str],
    service: str,
    summary: str,
    group: dict[str, Any] | None = None,
    client_ids: list[str] | None = None,
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "action": action,
        "channel": _ref("channels", channel),
        "messages": [_ref("channels", channel, "messages", message) for message in messages],
        "summary": summary,
        "tags": [{"name": service}],
    }
    kafka: dict[str, Any] = {}
    if group is not None:
        kafka["groupId"] = group
    if client_ids:
        kafka["clientId"] = {"type": "string", "enum": client_ids}
    if kafka:
        operation["bindings"] = {"kafka": {**kafka, "bindingVersion": "0.5.0"}}
    return operation


def _group(*names: str, pattern: str | None = None, description: str = "") -> dict[str, Any]:
    if pattern is not None:
        return {"type": "string", "pattern": pattern, "description": description}
    return {"type": "string", "enum": list(names), "description": description}


def kafka_operations(settings: Settings) -> dict[str, Any]:
    """What each labkit service sends and receives on the topics, and in which consumer group."""
    operations: dict[str, Any] = {
        "sendImageRequest": _operation(
            "send",
            "imageRequests",
            ["imageRequest"],
            "web",
            "The web app (each upload, once checked and shrunk) and LabClient send requests (RequestSender).",
            client_ids=["labkit-web", "labkit-client"],
        ),
        "receiveResults": _operation(
            "receive",
            "imageResults",
            ["imageResult"],
            "web",
            "Each web replica and LabClient read every result: assigned every partition, no consumer group, no "
            f"commits, from the end (a web replica from results_replay_s = {settings.results_replay_s:g} s back).",
            client_ids=["labkit-web-results", "labkit-client-results"],
        ),
    }
    for task in settings.enabled_tasks:
        group = settings.for_task(task).group_id
        operations[f"{task}ReceiveImageRequests"] = _operation(
            "receive",
            "imageRequests",
            ["imageRequest"],
            "processor",
            f"The {task} task's processors share group {group}: every task sees every request (publish/subscribe), "
            f"the members of one share its partitions (a queue). A request naming other tasks is skipped.",
            group=_group(group, description=f"the {task} task's group: <group_prefix>-{task}"),
        )
    operations["sendResults"] = _operation(
        "send",
        "imageResults",
        ["imageResult"],
        "processor",
        "Each task's processor sends one result per request it scores (status ok), and an error result per request "
        "it dead-letters; it commits the request's offset only once Kafka acknowledged them.",
    )
    operations["sendImageEmbeddings"] = _operation(
        "send",
        "imageEmbeddings",
        ["imageEmbedding"],
        "processor",
        f"The {EMBEDDING_TASK} task's processors send each image's embedding before its result; re-embedding "
        f"(`labkit sink --rebuild --reembed`) sends them again under a new model's name.",
    )
    operations["sendDeadLetters"] = _operation(
        "send",
        "deadLetters",
        ["deadLetter"],
        "processor",
        "A processor parks a request its task cannot use (no key, a schema it cannot read, no image…) here.",
    )
    prefix = re.escape(settings.group_prefix)
    sink = _group(
        pattern=rf"^{prefix}-sink(-rebuild-v[0-9]+)?$",
        description=f"{sink_group(settings)}; a rebuild replays in {sink_group(settings)}-rebuild-v<N>",
    )
    for channel, message, what in (
        ("imageRequests", "imageRequest", "requests (thumbnails, hashes)"),
        ("imageResults", "imageResult", "every task's results"),
        ("imageEmbeddings", "imageEmbedding", "embeddings (what search ranks on)"),
    ):
        operations[f"sinkReceive{channel[0].upper()}{channel[1:]}"] = _operation(
            "receive",
            channel,
            [message],
            "sink",
            f"The history's sink keeps the {what} in PostgreSQL, committing offsets after its transaction.",
            group=sink,
        )
    operations["reembedReceiveImageRequests"] = _operation(
        "receive",
        "imageRequests",
        ["imageRequest"],
        "sink",
        "After a model change, re-embedding reads the kept requests from the start in a group of its own.",
        group=_group(pattern=rf"^{prefix}-sink-reembed-v[0-9]+$", description="<group_prefix>-sink-reembed-v<N>"),
    )
    return operations


def kafka_channels(settings: Settings) -> dict[str, Any]:
    """One channel per topic, named as ``settings`` names them."""
    binding: dict[str, Any] = {"partitions": settings.partitions, "bindingVersion": "0.5.0"}
    if settings.replication_factor is not None:
        binding["replicas"] = settings.replication_factor

    def channel(topic: str, message: str, description: str) -> dict[str, Any]:
        return {
            "address": topic,
            "description": description,
            "servers": [_ref("servers", "kafka")],
            "messages": {message: _ref("components", "messages", message)},
            "bindings": {"kafka": binding},
        }

    return {
        "imageRequests": channel(
            settings.requests_topic,
            "imageRequest",
            f"Uploads, one record per image, at most max_record_bytes = {settings.max_record_bytes} bytes "
            "(the web app shrinks photos first). Kafka hashes the key to pick the partition.",
        ),
        "imageResults": channel(settings.results_topic, "imageResult", "Each task's result for each request."),
        "imageEmbeddings": channel(
            settings.embeddings_topic, "imageEmbedding", "One CLIP image embedding per request CLIP scored."
        ),
        "deadLetters": channel(settings.dead_letter_topic, "deadLetter", "Requests a task could not use."),
    }


def websocket_part(settings: Settings) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The WebSocket ``/ws``: its channel, its messages, and the web app's operations on it."""
    channel = {
        "address": "/ws",
        "title": "Results of uploads",
        "description": "Open it before uploading, send one `subscribe` per upload (after its 202 and after every "
        "reconnect): the results already here come at once, the rest as each task's processor produces them, one "
        "message per task. Results are delivered at least once: keep the first per request id and task. A message "
        "that is not JSON text ends the connection. A browser page of another origin than the app's (or one in "
        "LABKIT_ALLOWED_ORIGINS) is refused at the handshake; a client that sends no Origin (a phone app) is let in.",
        "servers": [_ref("servers", "web")],
        "messages": {name: _ref("components", "messages", name) for name in ("subscribe", "result", "error")},
        "bindings": {"ws": {"method": "GET", "bindingVersion": "0.1.0"}},
    }
    messages = {
        "subscribe": {
            "name": "subscribe",
            "title": "Subscribe to an upload's results",
            "contentType": "application/json",
            "payload": {"$ref": SCHEMAS + "SubscribeMessage"},
            "correlationId": {"location": "$message.payload#/request_id"},
            "examples": [{"payload": {"type": "subscribe", "request_id": "3f2a9c0e5b7d4e1f8a6b2c9d0e1f2a3b"}}],
        },
        "result": {
            "name": "result",
            "title": "One task's result",
            "contentType": "application/json",
            "payload": {"$ref": SCHEMAS + "ResultMessage"},
            "correlationId": {"location": "$message.payload#/request_id"},
        },
        "error": {
            "name": "error",
            "title": "Not a subscribe message",
            "contentType": "application/json",
            "payload": {"$ref": SCHEMAS + "ErrorMessage"},
        },
    }
    operations = {
        "receiveSubscribe": _operation("receive", "results", ["subscribe"], "web", "A client asks for an upload."),
        "sendResult": _operation("send", "results", ["result"], "web", "Each task's result, as it arrives."),
        "sendError": _operation("send", "results", ["error"], "web", "The answer to a message that is no subscribe."),
    }
    return channel, messages, operations


def _labkit_version() -> str:
    try:
        return version("labkit")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "0.0.0"


def asyncapi_document(settings: Settings, web_host: str | None = None, secure: bool = False) -> dict[str, Any]:
    """The AsyncAPI 3.0.0 document for ``settings``' topics and groups.

    ``web_host``: the address clients reach the web app at (``Host``), default ``web_host:web_port``;
    ``secure``: the app is behind HTTPS, so its WebSocket is ``wss``.
    """
    socket, socket_messages, socket_operations = websocket_part(settings)
    bootstrap = settings.bootstrap_servers
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "info": {
            "title": "labkit: the WebSocket and the Kafka topics",
            "version": _labkit_version(),
            "description": "Real-time image analysis (CLIP, OCR) with Kafka. An upload (`POST /api/images`, in "
            "`/openapi.json`) becomes a record on the requests topic; each task's processors answer it with a "
            "result record, which the web app pushes to the WebSockets subscribed to its request id. Kafka header "
            "values are bytes: the headers here are their UTF-8 text.",
            "tags": [
                {"name": "web", "description": "the web app (`labkit web`) and LabClient (notebooks)"},
                {"name": "processor", "description": "a task's processors (`labkit processor --task NAME`)"},
                {"name": "sink", "description": "the history's sink (`labkit sink`)"},
            ],
        },
        "defaultContentType": "application/json",
        "servers": {
            "web": {
                "host": web_host or f"{settings.web_host}:{settings.web_port}",
                "protocol": "wss" if secure else "ws",
                "description": "the web app",
            },
            "kafka": {
                "host": bootstrap.split(",")[0],
                "protocol": "kafka",
                "description": f"the Kafka cluster; bootstrap servers: {bootstrap}",
            },
        },
        "channels": {"results": socket, **kafka_channels(settings)},
        "operations": {**socket_operations, **kafka_operations(settings)},
        "components": {
            "schemas": payload_schemas(),
            "messages": {**socket_messages, **kafka_messages()},
        },
    }
