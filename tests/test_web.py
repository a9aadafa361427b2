"""The web app end to end over real HTTP and WebSockets: upload → Kafka → processor → Kafka → browser socket."""

from __future__ import annotations

import asyncio
import json
import time

import httpx
import pytest
from pydantic import SecretStr
from test_resilience import _wait_until as _wait_for
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
            ids.append(response.json()["request_id"])
            socket.send(json.dumps({"type": "subscribe", "request_id": ids[-1]}))
        received = {}
        while len(received) < len(ids):
            message = json.loads(socket.recv(timeout=30))
            assert message["type"] == "result"
            received[message["request_id"]] = message
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
    request_id = response.json()["request_id"]
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
        request_id = upload(replica_a, photos[30].read_bytes()).json()["request_id"]
        deadline = time.monotonic() + 30
        while httpx.get(f"{replica_b.url}/api/images/{request_id}").status_code == 404:
            assert time.monotonic() < deadline, "replica B never saw the result"
            time.sleep(0.1)
        assert httpx.get(f"{replica_b.url}/api/images/{request_id}").json()["status"] == "done"
        with connect(f"ws://127.0.0.1:{replica_b.port}/ws") as socket:  # a browser that reconnected elsewhere
            socket.send(json.dumps({"type": "subscribe", "request_id": request_id}))
            assert json.loads(socket.recv(timeout=10))["id"] == request_id


def test_upload_with_custom_labels_and_bad_labels(web, photos):
    from labkit.records.wire import MAX_LABELS

    photo = photos[16].read_bytes()
    ok = httpx.post(
        f"{web.url}/api/images",
        files={"file": ("pizza.jpg", photo, "image/jpeg")},
        data={"labels": "pizza, burger\nteapot"},
    )
    assert ok.status_code == 202, ok.text
    request_id = ok.json()["request_id"]
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


def test_metrics_count_uploads_results_and_latency(web, settings, photos):
    for path in photos[40:43]:
        request_id = upload(web, path.read_bytes(), path.name).json()["request_id"]
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
    assert value('labkit_results_total{status="ok",task="clip"}') == 3
    assert value('labkit_upload_to_result_seconds_count{task="clip"}') == 3
    assert value("labkit_batch_size_count") == 3
    assert value("labkit_pending_uploads") == 0
    assert f'labkit_request_lag{{group="{settings.group_id}",partition="0"}}' in text


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

    from labkit.kafka.admin import create_topics
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
            assert accepted.body()["result_url"] == f"/api/images/{accepted.request_id}" and accepted.bytes_sent > 0
            assert hub.status(accepted.request_id) == {
                "request_id": accepted.request_id,
                "id": accepted.request_id,
                "status": "processing",
                "labels": [],
                "filename": "seven.jpg",
                "tasks": {task: {"status": "processing"} for task in one.enabled_tasks},
            }
            assert hub.health().pending == gauge() == 1
            with pytest.raises(Backlogged) as refused:
                hub.admit()
            assert refused.value.status == 429 and 1 <= int(refused.value.headers["Retry-After"]) <= 60
            deadline = time.monotonic() + 15
            while hub.pending_count():
                assert time.monotonic() < deadline, "the pending upload never expired"
                await asyncio.sleep(0.05)
            assert hub.health().pending == gauge() == 0 and hub.status(accepted.request_id) is None
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


def test_a_result_says_where_its_request_sat_and_where_its_time_went_and_the_pipeline_shows_it(web, settings, photos):
    from labkit.kafka.client_config import make_producer
    from labkit.records.wire import ImageRequest, new_request_id

    before_ms = time.time() * 1000
    accepted = upload(web, photos[18].read_bytes(), photos[18].name)
    assert accepted.status_code == 202, accepted.text
    sent = accepted.json()
    assert 0 <= sent["partition"] < settings.partitions and sent["offset"] == 0  # a fresh topic's first record

    def result_of(request_id):
        body = httpx.get(f"{web.url}/api/images/{request_id}", timeout=5).json()
        return body if body.get("status") not in (None, "processing") else None

    result = _wait_for(lambda: result_of(sent["id"]), "no result")
    assert result["status"] == "done"
    # The processor consumed the very record whose position the web app's delivery report gave.
    assert (result["partition"], result["offset"]) == (sent["partition"], sent["offset"])
    assert result["processor"] == web.processor.name and result["batch_size"] >= 1
    assert before_ms - 1 <= result["produced_at_ms"] <= time.time() * 1000 + 1
    t = result["timings_ms"]
    assert min(t["queued"], t["batch_wait"], t["decode"]) >= 0 and t["inference"] > 0
    # Consecutive stretches of one request's life (inference is its share of the pass): they fit in total.
    assert t["queued"] + t["batch_wait"] + t["decode"] + t["inference"] <= t["total"] + 2, t

    # A record the processor cannot decode: its error result says where it was, too.
    bad = ImageRequest(new_request_id(), b"\xff\xd8 not really a JPEG", "image/jpeg")
    delivered = []
    producer = make_producer(settings)
    producer.produce(
        settings.requests_topic,
        bad.image,
        bad.key(),
        headers=bad.headers(),
        on_delivery=lambda e, m: delivered.append(m),
    )
    producer.flush(10)
    error = _wait_for(lambda: result_of(bad.request_id), "no error result")
    assert error["status"] == "error" and error["processor"] == web.processor.name
    assert (error["partition"], error["offset"]) == (delivered[0].partition(), delivered[0].offset())
    assert error["produced_at_ms"] >= before_ms

    # The live view: both records in the requests topic, the processor in its group, nothing left to do.
    def caught_up():
        answer = httpx.get(f"{web.url}/api/pipeline", timeout=10)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        return (
            body
            if body["lag"]["records"] == 0 and sum(body["topics"][settings.requests_topic]["end_offsets"]) == 2
            else None
        )

    snapshot = _wait_for(caught_up, "the pipeline never showed both records processed")
    requests = snapshot["topics"][settings.requests_topic]
    assert requests["partitions"] == settings.partitions
    assert requests["end_offsets"][sent["partition"]] > sent["offset"]
    assert snapshot["lag"]["seconds"] == 0 and len(snapshot["lag"]["partitions"]) == settings.partitions
    assert snapshot["group"]["id"] == settings.group_id
    members = snapshot["group"]["members"]
    # Apache Kafka lists the members (tests/test_engines.py); Tansu calls the group stable and lists
    # nobody: None, unknown.
    if settings.engine == "kafka":
        assert members == {web.processor.name: [f"{settings.requests_topic}[{p}]" for p in range(3)]}
    else:
        assert members is None
    assert 0 <= snapshot["age_s"] <= 1.5


def test_the_pipeline_view_reads_kafka_once_for_many_pages_and_says_so_when_kafka_does_not_answer(
    settings, monkeypatch
):
    from fastapi import HTTPException

    import labkit.ops.monitor
    from labkit._net import free_port
    from labkit.kafka.admin import create_topics
    from labkit.web.app import PipelineView

    create_topics(settings)
    reads = []
    real = labkit.ops.monitor.pipeline_snapshot
    monkeypatch.setattr(labkit.ops.monitor, "pipeline_snapshot", lambda s: reads.append(s) or real(s))

    async def many_pages():
        view = PipelineView(settings, max_age_s=60)
        try:
            answers = await asyncio.gather(*(view.snapshot() for _ in range(20)))
            answers.append(await view.snapshot())  # later, still within max_age_s: from the cache
        finally:
            view.close()
        return answers

    answers = asyncio.run(many_pages())
    assert len(reads) == 1 and len(answers) == 21
    assert all(a["topics"] == answers[0]["topics"] for a in answers)
    assert answers[0]["topics"][settings.requests_topic]["partitions"] == settings.partitions

    async def kafka_away():
        view = PipelineView(settings.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"}), timeout_s=10)
        ticks = 0

        async def tick():  # the event loop stays free while the read waits for a broker that is not there
            nonlocal ticks
            while True:
                await asyncio.sleep(0.05)
                ticks += 1

        ticker = asyncio.create_task(tick())
        started = time.monotonic()
        try:
            with pytest.raises(HTTPException) as refused:
                await view.snapshot()
        finally:
            ticker.cancel()
            view.close()
        return refused.value, ticks, time.monotonic() - started

    refused, ticks, waited = asyncio.run(kafka_away())
    assert refused.status_code == 503 and refused.headers == {"Retry-After": "2"}
    assert "did not answer" in refused.detail and "labkit up" in refused.detail
    assert waited < 10 and ticks >= waited / 0.05 * 0.5, (waited, ticks)


# --- several tasks: one result per task per upload, each pushed as it arrives ------------------------------------


def _produce_result(settings, result) -> None:
    """Write ``result`` onto the results topic as a processor of its task would (keyed by its request id)."""
    from labkit.kafka.client_config import make_producer
    from labkit.records.serde import RESULTS

    value, headers = RESULTS.serialize(result, settings.results_topic)
    producer = make_producer(settings)
    producer.produce(settings.results_topic, value, result.request_id.encode(), headers=headers)
    assert producer.flush(10) == 0, "the broker did not take the result"


def _ocr_result(request_id: str, **fields):
    from labkit.records.wire import ScoreResult, TextLine

    read = [
        TextLine(text="KAFKA STREAMS 2026", score=0.99, box=[(10, 20), (400, 20), (400, 70), (10, 70)]),
        TextLine(text="Photo of a cat: 89.5%", score=0.97, box=[(10, 90), (420, 90), (420, 140), (10, 140)]),
    ]
    return ScoreResult(
        request_id=request_id,
        status="ok",
        task="ocr",
        model="PP-OCRv4 (by hand)",
        processor="ocr-by-hand",
        text="\n".join(line.text for line in read),
        lines=read,
        **fields,
    )


def _image_when(web, request_id: str, ready, what: str) -> dict:
    """``GET /api/images/{id}`` once ``ready(body)`` holds."""

    def answer():
        body = httpx.get(f"{web.url}/api/images/{request_id}", timeout=5).json()
        return body if ready(body) else None

    return _wait_for(answer, what)


def _rendered_text(lines=("Kafka streams", "HELLO 2026")) -> bytes:
    """A 640×200 PNG (sent to Kafka unchanged) of black lines of text on white.

    Drawn in Pillow's own font (no system font).
    """
    import io

    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (640, 200), "white")
    draw = ImageDraw.Draw(image)
    for i, line in enumerate(lines):
        draw.text((20, 25 + 85 * i), line, fill="black", font=ImageFont.load_default(size=56))
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def test_each_task_answers_on_its_own_duplicates_are_dropped_and_a_failed_one_holds_back_no_other(
    settings, start_processor, photos
):
    """CLIP scores for real; OCR's results are written by hand onto the results topic, as its processor would."""
    from labkit.records.wire import ScoreResult

    both = settings.model_copy(update={"tasks": "clip,ocr"})
    start_processor()  # the CLIP task only
    with WebServer(both) as web, connect(f"ws://127.0.0.1:{web.port}/ws") as socket:
        accepted = upload(web, photos[5].read_bytes(), "sign.jpg").json()
        assert accepted["tasks"] == ["clip", "ocr"]
        request_id = accepted["id"]
        socket.send(json.dumps({"type": "subscribe", "request_id": request_id}))
        clip = json.loads(socket.recv(timeout=30))
        assert (clip["type"], clip["task"], clip["status"], len(clip["labels"])) == ("result", "clip", "done", 5)
        body = httpx.get(f"{web.url}/api/images/{request_id}").json()
        # CLIP's result is there at once, at the top level as before; the upload still waits for OCR.
        assert body["status"] == "processing" and body["labels"] == clip["labels"] and body["filename"] == "sign.jpg"
        assert body["tasks"]["clip"]["status"] == "done" and body["tasks"]["ocr"] == {"status": "processing"}
        assert httpx.get(f"{web.url}/healthz").json()["pending"] == 1

        _produce_result(both, _ocr_result(request_id))
        _produce_result(both, _ocr_result(request_id))  # delivered twice (at-least-once)
        ocr = json.loads(socket.recv(timeout=30))
        assert (ocr["type"], ocr["task"], ocr["status"]) == ("result", "ocr", "done")
        assert ocr["text"] == "KAFKA STREAMS 2026\nPhoto of a cat: 89.5%" and ocr["lines"][1]["box"][2] == [420, 140]
        # A third group's result, behind the duplicate in the same partition: once it shows, the duplicate was read.
        _produce_result(both, ScoreResult(request_id=request_id, status="ok", task="colours", processor="by-hand"))
        body = _image_when(
            web, request_id, lambda b: "colours" in b["tasks"], "the unexpected task's result never showed"
        )
        assert body["status"] == "done" and body["labels"] == clip["labels"] and "filename" not in body
        assert body["tasks"]["ocr"]["text"] == ocr["text"] and body["tasks"]["ocr"]["processor"] == "ocr-by-hand"
        assert body["tasks"]["colours"]["status"] == "done"
        assert httpx.get(f"{web.url}/healthz").json()["pending"] == 0
        socket.send(
            json.dumps({"type": "subscribe", "request_id": request_id})
        )  # again: one message per task, no duplicate
        assert sorted(json.loads(socket.recv(timeout=10))["task"] for _ in range(3)) == ["clip", "colours", "ocr"]
        metrics = httpx.get(f"{web.url}/metrics", timeout=30).text
        assert 'labkit_results_total{status="ok",task="ocr"} 1.0' in metrics

        # OCR fails on the next upload, before or after CLIP answers: CLIP's result is not held back.
        failing = upload(web, photos[6].read_bytes()).json()["request_id"]
        _produce_result(
            both, ScoreResult(request_id=failing, status="error", task="ocr", error="no text detector today")
        )
        body = _image_when(web, failing, lambda b: b["status"] != "processing", "no answer from both tasks")
        assert body["status"] == "done" and len(body["labels"]) == 5 and body["tasks"]["clip"]["status"] == "done"
        assert body["tasks"]["ocr"]["status"] == "error" and body["tasks"]["ocr"]["error"] == "no text detector today"


def test_an_upload_names_its_tasks_and_waits_for_those_alone(settings, start_processor, photos):
    from labkit.kafka.admin import read_topic
    from labkit.records.wire import ImageRequest, record_headers

    both = settings.model_copy(update={"tasks": "clip,ocr"})
    start_processor()
    photo = photos[8].read_bytes()
    with WebServer(both) as web:
        assert httpx.get(f"{web.url}/api/tasks").json() == {
            "tasks": ["clip", "ocr"],
            "shown": {
                "clip": {"title": "CLIP labels", "layout": "bars"},
                "ocr": {"title": "Text (OCR)", "layout": "lines"},
            },
        }

        def send(tasks):
            return httpx.post(f"{web.url}/api/images", files={"file": ("p.jpg", photo, "image/jpeg")}, data=tasks)

        only_clip = send({"tasks": "clip"})
        assert only_clip.status_code == 202 and only_clip.json()["tasks"] == ["clip"], only_clip.text
        assert send({"tasks": ["ocr", "clip"]}).json()["tasks"] == ["ocr", "clip"]  # repeated
        assert send({"tasks": "clip, OCR"}).json()["tasks"] == ["clip", "ocr"]  # comma-separated
        unknown, empty = send({"tasks": "clip,colours"}), send({"tasks": " "})
        assert unknown.status_code == empty.status_code == 422
        assert "'colours'" in unknown.json()["detail"] and "choose from clip, ocr" in unknown.json()["detail"]
        assert "task names" in empty.json()["detail"]
        # Only CLIP was asked for: done once CLIP answers, though OCR is enabled (and runs nowhere here).
        request_id = only_clip.json()["request_id"]
        body = _image_when(
            web, request_id, lambda b: b["status"] != "processing", "the CLIP-only upload never finished"
        )
        assert body["status"] == "done" and list(body["tasks"]) == ["clip"]
        text = httpx.get(f"{web.url}/metrics", timeout=30).text
        assert 'labkit_uploads_total{outcome="bad_tasks"} 2.0' in text
    named = {}
    for record in read_topic(both, both.requests_topic, idle_s=0.5):  # the header each processor reads
        request = ImageRequest.from_record(record.key(), record.value(), record_headers(record))
        named[request.request_id] = request.tasks
    assert named[request_id] == ("clip",) and sorted(named.values()) == [("clip",), ("clip", "ocr"), ("ocr", "clip")]


@pytest.mark.timeout(120)
def test_rendered_text_comes_back_from_the_ocr_processor_while_clip_answers_separately(settings, start_processor):
    both = settings.model_copy(update={"tasks": "clip,ocr"})
    start_processor()
    start_processor(task="ocr")
    with WebServer(both) as web, connect(f"ws://127.0.0.1:{web.port}/ws") as socket:
        accepted = upload(web, _rendered_text(), "sign.png", "image/png").json()
        socket.send(json.dumps({"type": "subscribe", "request_id": accepted["id"]}))
        messages = {}
        while len(messages) < 2:
            message = json.loads(socket.recv(timeout=60))
            assert message["task"] not in messages, "a task's result came twice"
            messages[message["task"]] = message
        body = httpx.get(f"{web.url}/api/images/{accepted['id']}").json()
    assert set(messages) == {"clip", "ocr"} and all(m["status"] == "done" for m in messages.values())
    assert messages["ocr"]["text"] == "Kafka streams\nHELLO 2026" and messages["ocr"]["lines"][0]["score"] > 0.8
    assert len(messages["clip"]["labels"]) == 5 and messages["clip"]["text"] is None
    assert messages["ocr"]["processor"] != messages["clip"]["processor"]  # two groups, two processors
    assert body["status"] == "done" and body["tasks"]["ocr"]["text"] == messages["ocr"]["text"]
