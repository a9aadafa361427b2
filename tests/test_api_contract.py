"""The HTTP API as a contract: a property-based fuzzer (schemathesis) drives every route from ``/openapi.json``.

It runs against a running web app with a real broker, a processor and the history. No answer is a
server error; every status, content type, header and body is one the document promises; and the
app still does its work afterwards. The WebSocket's contract is the AsyncAPI document's.
"""

from __future__ import annotations

import base64

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.errors import FailureGroup
from test_resilience import _wait_until

from conftest import WebServer, sink_on_a_thread

#: What every answer is checked for (schemathesis' names): no 5xx, and nothing the document does not promise.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
    schemathesis.checks.response_headers_conformance,
]
#: Generated requests per route and generation mode (valid by the document, and not): ~1 s per route and mode.
EXAMPLES = 25


@pytest.fixture
def history_web(embedded_history, start_processor, photos):
    """A web app with a CLIP processor and a sink writing the history; one photo is already in it."""
    settings = embedded_history.model_copy(update={"max_upload_bytes": 300_000})
    start_processor()
    with sink_on_a_thread(settings), WebServer(settings) as web:
        web.stored = _upload(web, photos[3].read_bytes())
        _wait_until(lambda: _in_history(web, web.stored), "the sink never wrote the first photo")
        yield web


def _upload(web, data: bytes) -> str:
    response = httpx.post(f"{web.url}/api/images", files={"file": ("photo.jpg", data, "image/jpeg")}, timeout=30)
    assert response.status_code == 202, response.text
    return response.json()["request_id"]


def _in_history(web, request_id: str) -> bool:
    return any(hit["request_id"] == request_id for hit in httpx.get(f"{web.url}/api/history").json()["images"])


def _fuzz(operation, mode: GenerationMode, base_url: str) -> None:
    """``EXAMPLES`` requests generated for ``operation`` in ``mode``, each answer checked; the same ones every run."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,  # the same requests on every run: CI is not flaky, a failure reproduces
        database=None,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        case.call_and_validate(base_url=base_url, checks=CHECKS, timeout=60)

    check()


@pytest.mark.timeout(240)
def test_every_route_keeps_the_openapi_contract_and_the_app_still_works_afterwards(history_web, photos):
    web = history_web
    schema = schemathesis.openapi.from_url(f"{web.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {f"{op.method.upper()} {op.path}" for op in operations} >= {
        "POST /api/images",
        "GET /api/images/{request_id}",
        "GET /api/history",
        "GET /api/search",
        "GET /api/images/{request_id}/similar",
        "GET /api/images/{request_id}/duplicates",
        "GET /api/images/{request_id}/thumbnail",
        "GET /api/tasks",
        "GET /api/pipeline",
        "GET /healthz",
    }
    broken = []  # every route and mode that broke the contract, each with the smallest request that shows it
    for operation in operations:
        takes = any(len(part) for part in (operation.path_parameters, operation.query, operation.body))
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if takes else (GenerationMode.POSITIVE,):
            try:
                _fuzz(operation, mode, web.url)
            except (AssertionError, FailureGroup) as exc:  # the failures schemathesis found, each kept
                broken.append(f"{operation.label} ({mode.value} requests):\n{exc}")
        if "{request_id}" in operation.path:  # a stored image too: its 200 answers are checked, not only 404s
            case = operation.Case(path_parameters={"request_id": web.stored})
            try:
                answer = case.call_and_validate(base_url=web.url, checks=CHECKS, timeout=60)
                assert answer.status_code == 200, answer.text
            except (AssertionError, FailureGroup) as exc:
                broken.append(f"{operation.label} (the stored image):\n{exc}")
    assert not broken, "\n\n".join(broken)

    # Input no generator is sure to try, per route: NUL, a lone surrogate (its UTF-8 bytes), control characters,
    # over-long values, odd unicode, forged cursors. Each is refused with a 4xx that says what to send instead.
    stored, forged = web.stored, base64.urlsafe_b64encode(b"2026-01-01T00:00:00+00:00|a\x00b").decode()
    ids = ["%00", "a%00b", "%ED%A0%80", "x" * 1000, "0" * 31 + "%C3%A9", "..%2F..%2Fetc", stored.upper()]
    paths = [f"/api/images/{i}{tail}" for i in ids for tail in ("", "/similar", "/duplicates", "/thumbnail")]
    queries = ["q=a%00b", "q=a%0Ab", "q=" + "x" * 201, "q=cat&limit=1e2", "q=cat&min_score=nan"]
    pages = ["before=%00", "before=AAAA", f"before={forged}", "before=" + "A" * 500, "limit=0", "limit=%00"]
    refused = [httpx.get(f"{web.url}{path}") for path in paths]
    refused += [httpx.get(f"{web.url}/api/search?{query}") for query in queries]
    refused += [httpx.get(f"{web.url}/api/history?{page}") for page in pages]
    photo = photos[5].read_bytes()
    for form in [{"labels": "a\x00b,c"}, {"tasks": "cl\x00ip"}]:
        refused.append(httpx.post(f"{web.url}/api/images", files={"file": ("p.jpg", photo, "image/jpeg")}, data=form))
    # A NUL in the file's name, as a client that does not escape it sends it (httpx would send `a%00b.jpg`).
    part = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="a\x00b.jpg"\r\nContent-Type: image/jpeg\r\n\r\n'
    )
    raw = part + photo + b"\r\n--x--\r\n"
    headers = {"content-type": "multipart/form-data; boundary=x"}
    refused.append(httpx.post(f"{web.url}/api/images", content=raw, headers=headers))
    for answer in refused:
        assert 400 <= answer.status_code < 500, (answer.request.url, answer.status_code, answer.text)
        assert list(answer.json()) == ["detail"] and len(answer.json()["detail"]) > 30, answer.text
    assert httpx.get(f"{web.url}/api/search", params={"q": "\u202e\U0001f408 ünïcödé"}, timeout=120).status_code == 200
    # A lone surrogate's bytes are no UTF-8: the server reads them as U+FFFD, harmless text, and answers.
    assert httpx.get(f"{web.url}/api/search?q=%ED%A0%80").json()["query"] == "\ufffd" * 3

    # Afterwards: healthy, and a new upload is processed and stored as before.
    assert httpx.get(f"{web.url}/healthz").json()["status"] == "ok"
    request_id = _upload(web, photos[4].read_bytes())
    _wait_until(
        lambda: httpx.get(f"{web.url}/api/images/{request_id}").json()["status"] == "done", "no result after fuzzing"
    )
    _wait_until(lambda: _in_history(web, request_id), "the sink stopped writing the history")
