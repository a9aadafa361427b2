"""The AsyncAPI document: valid AsyncAPI 3.0.0, named after the settings, and true to what labkit writes.

It is checked against the official AsyncAPI 3.0.0 JSON Schema from npm's ``@asyncapi/specs`` and
parsed by ``@asyncapi/parser`` (npm's ``@asyncapi/parser`` carries both; this test installs it in
``LABKIT_ASYNCAPI_NODE_DIR``, default ``~/.cache/labkit/asyncapi-node``, when npm is at hand, and
``.ci/run`` installs npm). Real records made by labkit's own code, and the real hub's
WebSocket messages, must validate against the document's schemas, so the document cannot drift
from the wire.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from jsonschema import Draft7Validator
from referencing import Registry
from referencing.jsonschema import DRAFT7

from labkit.config import Settings
from labkit.records.dead_letters import H_DLQ_TASK, dead_letter_headers
from labkit.records.embeddings import encode_embedding
from labkit.records.serde import RESULTS
from labkit.records.wire import ImageRequest, ScoreResult, header_dict
from labkit.web import create_app
from labkit.web.asyncapi import asyncapi_document
from labkit.web.hub import ResultHub

NODE_DIR = Path(os.environ.get("LABKIT_ASYNCAPI_NODE_DIR") or Path.home() / ".cache" / "labkit" / "asyncapi-node")
PARSER = "@asyncapi/parser@3"
SPEC = NODE_DIR / "node_modules" / "@asyncapi" / "specs" / "schemas" / "3.0.0.json"
#: Parses the document on stdin with @asyncapi/parser and prints its diagnostics as JSON.
PARSE = """
import { Parser } from '@asyncapi/parser';
import { readFileSync } from 'node:fs';
const { diagnostics } = await new Parser().parse(readFileSync(0, 'utf8'));
console.log(JSON.stringify(diagnostics.map(d => ({severity: d.severity, code: d.code, message: d.message,
                                                  path: d.path}))));
"""
CUSTOM = Settings(
    requests_topic="photos-in",
    results_topic="photos-out",
    embeddings_topic="photo-vectors",
    dead_letter_topic="photos-parked",
    group_prefix="team7",
    tasks="clip,ocr",
)


@pytest.fixture(scope="module")
def node_dir() -> Path:
    """The folder whose node_modules holds @asyncapi/parser (and its @asyncapi/specs), installed if need be."""
    if not SPEC.exists() and shutil.which("npm"):
        NODE_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            ["npm", "install", "--no-save", "--no-audit", "--no-fund", "--prefix", str(NODE_DIR), PARSER],
            capture_output=True,
            timeout=300,
        )
    if not SPEC.exists():
        pytest.skip(
            f"the official AsyncAPI 3.0.0 JSON Schema is not at {SPEC} and npm could not install it: "
            f"run `npm install --prefix {NODE_DIR} {PARSER}` (or set LABKIT_ASYNCAPI_NODE_DIR to where it is)"
        )
    return NODE_DIR


def _validator(document: dict, pointer: str) -> Draft7Validator:
    """A draft 07 validator for the schema at ``pointer`` inside ``document`` (its ``#/...`` references resolve)."""
    registry = Registry().with_resource("urn:labkit:asyncapi", DRAFT7.create_resource(document))
    return Draft7Validator({"$ref": f"urn:labkit:asyncapi#{pointer}"}, registry=registry)


def _problems(document: dict, pointer: str, instance) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in _validator(document, pointer).iter_errors(instance)]


def _headers_ok(document: dict, message: str, headers) -> list[str]:
    return _problems(document, f"/components/messages/{message}/headers", header_dict(headers))


def _key_ok(document: dict, message: str, key: bytes | None) -> list[str]:
    value = key.decode() if key is not None else None
    return _problems(document, f"/components/messages/{message}/bindings/kafka/key", value)


def test_the_document_is_valid_asyncapi_3_and_parses_without_errors(node_dir):
    document = asyncapi_document(CUSTOM)
    spec = json.loads(SPEC.read_text())
    errors = [f"{list(e.absolute_path)}: {e.message[:200]}" for e in Draft7Validator(spec).iter_errors(document)]
    assert not errors, errors
    broken = json.loads(json.dumps(document))
    del broken["operations"]["sendResults"]["action"]
    assert not Draft7Validator(spec).is_valid(broken)  # the official schema does check what we send it

    parsed = subprocess.run(
        ["node", "--input-type=module", "-e", PARSE],
        input=json.dumps(document),
        cwd=node_dir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert parsed.returncode == 0, parsed.stderr
    diagnostics = json.loads(parsed.stdout)
    assert not [d for d in diagnostics if d["severity"] == 0], diagnostics  # 0: error (1 warning, 2 info)


def test_topics_and_groups_follow_the_settings_and_the_web_app_serves_it():
    document = asyncapi_document(CUSTOM)
    addresses = {name: channel["address"] for name, channel in document["channels"].items()}
    assert addresses == {
        "results": "/ws",
        "imageRequests": "photos-in",
        "imageResults": "photos-out",
        "imageEmbeddings": "photo-vectors",
        "deadLetters": "photos-parked",
    }
    groups = {
        name: operation["bindings"]["kafka"]["groupId"]
        for name, operation in document["operations"].items()
        if "groupId" in operation.get("bindings", {}).get("kafka", {})
    }
    assert groups["clipReceiveImageRequests"]["enum"] == ["team7-clip"]
    assert groups["ocrReceiveImageRequests"]["enum"] == ["team7-ocr"]
    assert _validator(document, "/operations/sinkReceiveImageResults/bindings/kafka/groupId").is_valid("team7-sink")
    assert not _validator(document, "/operations/sinkReceiveImageResults/bindings/kafka/groupId").is_valid(
        "labkit-sink"
    )

    client = TestClient(create_app(CUSTOM), base_url="https://photos.example")  # no lifespan: Kafka is not needed
    served = client.get("/asyncapi.json")
    assert served.status_code == 200
    assert served.json() == asyncapi_document(CUSTOM, web_host="photos.example", secure=True)
    assert served.json()["servers"]["web"] == {
        "host": "photos.example",
        "protocol": "wss",
        "description": "the web app",
    }
    assert "/asyncapi.json" in client.get("/openapi.json").json()["paths"]  # the HTTP API's document points to it


def _results(request_id: str) -> list[ScoreResult]:
    """A CLIP, an OCR and an error result, as processors make them."""
    return [
        ScoreResult(
            request_id=request_id,
            status="ok",
            task="clip",
            model="test-tiny",
            answer={"labels": [{"label": "cat", "score": 0.9}, {"label": "dog", "score": 0.1}]},
            partition=1,
            offset=7,
        ),
        ScoreResult(
            request_id=request_id,
            status="ok",
            task="ocr",
            answer={
                "text": "KAFKA",
                "lines": [{"text": "KAFKA", "score": 0.99, "box": [[0, 0], [9, 0], [9, 5], [0, 5]]}],
            },
        ),
        ScoreResult(request_id=request_id, status="error", task="ocr", error="not an image"),
    ]


def test_records_labkit_writes_match_the_document(photos):
    document = asyncapi_document(CUSTOM)
    request = ImageRequest(
        request_id="0123456789abcdef0123456789abcdef",
        image=photos[0].read_bytes(),
        content_type="image/jpeg",
        filename="cat.jpg",
        labels=("cat", "dog"),
        tasks=("clip",),
    )
    assert not _headers_ok(document, "imageRequest", request.headers())
    assert not _key_ok(document, "imageRequest", request.key())

    for result in _results(request.request_id):
        value, headers = RESULTS.serialize(result, CUSTOM.results_topic)  # the processors' own serializer
        assert not _problems(document, "/components/messages/imageResult/payload", json.loads(value)), result
        assert not _headers_ok(document, "imageResult", headers)
    # The payload schema bites: a CLIP answer with a field CLIP's model does not declare is refused, as readers do.
    odd = json.loads(RESULTS.serialize(_results(request.request_id)[0])[0])
    odd["answer"]["colour"] = "red"
    assert _problems(document, "/components/messages/imageResult/payload", odd)

    vector = np.ones(512, dtype=np.float32) / np.sqrt(512)
    value, headers = encode_embedding(vector, "ViT-B-32/openai")
    assert not _headers_ok(document, "imageEmbedding", headers)
    assert len(value) == 512 * 2  # Float16Vector: labkit-dim × 2 bytes
    assert header_dict(headers)["labkit-dim"] == "512"

    parked = [*dead_letter_headers(request.headers(), "not an image", "photos-in", 2, 41), (H_DLQ_TASK, b"clip")]
    assert not _headers_ok(document, "deadLetter", parked)
    assert _headers_ok(document, "deadLetter", request.headers())  # without why and where, it is no dead letter


class _Socket:
    """A WebSocket stand-in: hands the hub the client's messages, keeps what the hub sends."""

    def __init__(self, incoming: list):
        self.incoming, self.sent = list(incoming), []

    async def receive_json(self):
        if not self.incoming:
            from fastapi import WebSocketDisconnect

            raise WebSocketDisconnect(1000)
        return self.incoming.pop(0)

    async def send_json(self, message) -> None:
        self.sent.append(json.loads(json.dumps(message)))  # as Starlette's send_json puts it on the wire


def test_the_hubs_websocket_messages_match_the_document():
    document = asyncapi_document(CUSTOM)
    hub = ResultHub(CUSTOM)  # not started: its socket side needs no Kafka
    request_id = "0123456789abcdef0123456789abcdef"
    for result in _results(request_id)[:2]:
        hub.results.add(result)
    subscribe = {"type": "subscribe", "request_id": request_id}
    assert not _problems(document, "/components/messages/subscribe/payload", subscribe)
    assert not _problems(document, "/components/messages/subscribe/payload", {"type": "subscribe", "id": request_id})
    assert _problems(document, "/components/messages/subscribe/payload", {"type": "subscribe"})
    socket = _Socket([subscribe, {"hello": "there"}])

    asyncio.run(hub.serve_socket(socket))  # type: ignore[arg-type]

    results, errors = socket.sent[:2], socket.sent[2:]
    assert sorted(message["task"] for message in results) == ["clip", "ocr"]
    for message in results:
        assert not _problems(document, "/components/messages/result/payload", message), message
    assert [message["type"] for message in errors] == ["error"]
    assert not _problems(document, "/components/messages/error/payload", errors[0])
