"""The web app end to end over real HTTP and WebSockets: upload → Kafka → processor → Kafka → browser socket."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from pydantic import SecretStr
from test_wire_and_images import phone_photo
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from conftest import WebServer


def upload(web, data, name="photo.jpg", content_type="image/jpeg"):
    return httpx.post(f"{web.url}/api/images", files={"file": (name, data, content_type)}, timeout=30)


def _upload_from_another_site(web, data: bytes) -> httpx.Response:
    """What a page on another origin posting to the upload endpoint sends (its Origin header)."""
    files = {"file": ("a.jpg", data, "image/jpeg")}
    return httpx.post(f"{web.url}/api/images", files=files, headers={"Origin": "https://evil.example"}, timeout=30)


def test_upload_then_result_arrives_on_the_websocket(web, photos):
    assert httpx.get(f"{web.url}/healthz").json()["status"] == "ok"
    assert "Choose images" in httpx.get(web.url).text
    with connect(f"ws://127.0.0.1:{web.port}/ws") as socket:
        ids = []
        for path in photos[10:14]:
            response = upload(web, path.read_bytes(), path.name)
            assert response.status_code == 202, response.text
            ids.append(response.json()["id"])
            socket.send(json.dumps({"type": "subscribe", "id": ids[-1]}))
        received = {}
        while len(received) < len(ids):
            message = json.loads(socket.recv(timeout=30))
            assert message["type"] == "result"
            received[message["id"]] = message
    assert set(received) == set(ids)
    for message in received.values():
        assert message["status"] == "done"
        assert len(message["labels"]) == 5 and {"label", "score"} <= set(message["labels"][0])
        assert message["timings_ms"]["total"] > 0
    # REST fallback answers the same result.
    rest = httpx.get(f"{web.url}/api/images/{ids[0]}").json()
    assert rest["status"] == "done" and rest["labels"] == received[ids[0]]["labels"]


def test_twelve_megapixel_phone_photo_goes_through(web, photos):
    data = phone_photo(photos[20])
    assert len(data) > 3_000_000
    response = upload(web, data, "IMG_0001.JPG")
    assert response.status_code == 202 and response.json()["bytes_sent"] < 1_000_000
    request_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while (body := httpx.get(f"{web.url}/api/images/{request_id}").json())["status"] == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert body["status"] == "done" and body["labels"]


def test_bad_uploads_get_clear_4xx_and_the_app_stays_healthy(web, settings):
    not_image = upload(web, b"%PDF-1.7 not an image", "report.pdf", "application/pdf")
    assert not_image.status_code == 415 and "JPEG, PNG, WebP or GIF" in not_image.json()["detail"]
    too_big = upload(web, b"\xff" * (settings.max_upload_bytes + 10))
    assert too_big.status_code == 413 and "limit" in too_big.json()["detail"]
    assert httpx.get(f"{web.url}/api/images/{'0' * 32}").status_code == 404
    assert httpx.get(f"{web.url}/healthz").status_code == 200


def test_any_replica_knows_a_result_uploaded_through_another(settings, start_processor, photos):
    start_processor()
    with WebServer(settings) as replica_a, WebServer(settings) as replica_b:
        request_id = upload(replica_a, photos[30].read_bytes()).json()["id"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{replica_b.url}/api/images/{request_id}").status_code == 404:
            assert time.monotonic() < deadline, "replica B never saw the result"
            time.sleep(0.1)
        assert httpx.get(f"{replica_b.url}/api/images/{request_id}").json()["status"] == "done"
        with connect(f"ws://127.0.0.1:{replica_b.port}/ws") as socket:  # a browser that reconnected elsewhere
            socket.send(json.dumps({"type": "subscribe", "id": request_id}))
            assert json.loads(socket.recv(timeout=10))["id"] == request_id


def test_upload_with_custom_labels_and_bad_labels(web, photos):
    from labkit.wire import MAX_LABELS

    photo = photos[16].read_bytes()
    ok = httpx.post(
        f"{web.url}/api/images",
        files={"file": ("pizza.jpg", photo, "image/jpeg")},
        data={"labels": "pizza, burger\nteapot"},
    )
    assert ok.status_code == 202, ok.text
    request_id = ok.json()["id"]
    deadline = time.monotonic() + 30
    while (body := httpx.get(f"{web.url}/api/images/{request_id}").json())["status"] == "processing":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert sorted(s["label"] for s in body["labels"]) == ["burger", "pizza", "teapot"]
    too_many = ",".join(f"label {i}" for i in range(MAX_LABELS + 1))
    bad = httpx.post(f"{web.url}/api/images", files={"file": ("p.jpg", photo, "image/jpeg")}, data={"labels": too_many})
    assert bad.status_code == 422 and "between 2 and" in bad.json()["detail"]


def test_security_headers_and_other_sites_are_refused(web, photos):
    page = httpx.get(web.url)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "access-control-allow-origin" not in page.headers  # CORS closed by default
    data = photos[0].read_bytes()
    foreign = _upload_from_another_site(web, data)
    assert foreign.status_code == 403 and "other web sites" in foreign.json()["detail"]
    own = httpx.post(
        f"{web.url}/api/images", files={"file": ("a.jpg", data, "image/jpeg")}, headers={"Origin": web.url}, timeout=30
    )
    assert own.status_code == 202
    with pytest.raises(InvalidStatus):  # a foreign page's WebSocket is refused at the handshake
        with connect(f"ws://127.0.0.1:{web.port}/ws", origin="https://evil.example"):
            pass


def test_api_token_guards_uploads_and_is_never_logged(settings, start_processor, photos, caplog):
    start_processor()
    secret = "s3cret-token-value"
    with WebServer(settings.model_copy(update={"api_token": SecretStr(secret)})) as server:
        data = photos[1].read_bytes()
        files = {"file": ("a.jpg", data, "image/jpeg")}
        assert httpx.post(f"{server.url}/api/images", files=files, timeout=30).status_code == 401
        wrong = httpx.post(
            f"{server.url}/api/images", files=files, headers={"Authorization": "Bearer nope"}, timeout=30
        )
        assert wrong.status_code == 401 and "LABKIT_API_TOKEN" in wrong.json()["detail"]
        right = httpx.post(
            f"{server.url}/api/images", files=files, headers={"Authorization": f"Bearer {secret}"}, timeout=30
        )
        assert right.status_code == 202
    assert secret not in caplog.text and secret not in repr(
        settings.model_copy(update={"api_token": SecretStr(secret)})
    )


def test_metrics_count_uploads_results_and_latency(web, photos):
    for path in photos[40:43]:
        request_id = upload(web, path.read_bytes(), path.name).json()["id"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{web.url}/api/images/{request_id}").json()["status"] == "processing":
            assert time.monotonic() < deadline
            time.sleep(0.1)
    upload(web, b"not an image", "x.txt", "text/plain")
    text = httpx.get(f"{web.url}/metrics", timeout=30).text

    def value(line_start: str) -> float:
        return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(line_start))

    assert value('labkit_uploads_total{outcome="accepted"}') == 3
    assert value('labkit_uploads_total{outcome="bad_image"}') == 1
    assert value('labkit_results_total{status="ok"}') == 3
    assert value("labkit_upload_to_result_seconds_count") == 3
    assert value("labkit_batch_size_count") == 3
    assert value("labkit_pending_uploads") == 0
    assert "labkit_request_lag" in text


def test_each_refusal_is_answered_and_counted_once_by_its_reason(web, settings, photos):
    import socket

    from test_resilience import _read_reply

    data = photos[2].read_bytes()
    foreign = _upload_from_another_site(web, data)
    no_form = httpx.post(f"{web.url}/api/images", content=b"hello", headers={"content-type": "text/plain"})
    labels = httpx.post(f"{web.url}/api/images", files={"file": ("a.jpg", data, "image/jpeg")}, data={"labels": "one"})
    not_image = upload(web, b"GIF89a but not really", "x.gif", "image/gif")
    too_big = upload(web, b"\xff" * (settings.max_upload_bytes + 10))
    with socket.create_connection(("127.0.0.1", web.port), timeout=10) as raw:  # declared too big: refused unread
        raw.sendall(
            b"POST /api/images HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=x\r\n"
            + f"Content-Length: {settings.max_upload_bytes * 4}\r\n\r\n".encode()
        )
        declared = _read_reply(raw)
    assert [r.status_code for r in (foreign, no_form, labels, not_image, too_big)] == [403, 422, 422, 415, 413]
    assert declared.startswith("HTTP/1.1 413") and "connection: close" in declared.lower()
    assert all(len(r.json()["detail"]) > 20 for r in (foreign, no_form, labels, not_image, too_big))
    text = httpx.get(f"{web.url}/metrics", timeout=30).text
    counted = {
        line.split('"')[1]: float(line.split()[-1])
        for line in text.splitlines()
        if line.startswith("labkit_uploads_total{")
    }
    assert counted == {"forbidden": 1, "bad_request": 1, "bad_labels": 1, "bad_image": 1, "too_large": 2}


def test_the_hub_owns_pending_uploads_so_gauge_health_and_429_agree_through_expiry(settings, photos):
    import asyncio

    from labkit.admin import create_topics
    from labkit.web.errors import Backlogged
    from labkit.web.hub import ResultHub
    from labkit.web.limits import Upload
    from labkit.web.metrics import WebMetrics

    one = settings.model_copy(update={"max_pending_uploads": 1})
    create_topics(one)  # no processor: the upload stays pending until it expires
    metrics = WebMetrics(one)
    hub = ResultHub(one, on_result=metrics.result, pending_expiry_s=5.0)  # > the first ack
    metrics.count_pending(hub.pending_count)

    def gauge() -> float:
        return metrics.registry.get_sample_value("labkit_pending_uploads")

    async def scenario():
        await hub.start()
        try:
            accepted = await hub.submit_upload(Upload(photos[7].read_bytes(), "seven.jpg", None))
            assert accepted.body()["result_url"] == f"/api/images/{accepted.id}" and accepted.bytes_sent > 0
            assert hub.status(accepted.id) == {
                "id": accepted.id,
                "status": "processing",
                "labels": [],
                "filename": "seven.jpg",
            }
            assert hub.health().pending == gauge() == 1
            with pytest.raises(Backlogged) as refused:
                hub.admit()
            assert refused.value.status == 429 and 1 <= int(refused.value.headers["Retry-After"]) <= 60
            deadline = time.monotonic() + 15
            while hub.pending_count():
                assert time.monotonic() < deadline, "the pending upload never expired"
                await asyncio.sleep(0.05)
            assert hub.health().pending == gauge() == 0 and hub.status(accepted.id) is None
            hub.admit()  # room again
        finally:
            await hub.stop()

    asyncio.run(scenario())


def test_the_readme_api_example_is_a_working_client(web, photos):
    """The README's WebSocket client, run as written against a real web app and processor."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    example = next(block for block in re.findall(r"```python\n(.*?)```", readme, re.S) if "async def classify" in block)
    definitions = example.split("\nprint(")[0]  # everything but the call on a file we don't have
    namespace: dict = {}
    exec(compile(definitions, "README.md", "exec"), namespace)
    result = asyncio.run(namespace["classify"](str(photos[0]), web.url))
    assert result["type"] == "result" and result["status"] == "done" and len(result["labels"]) == 5
