"""Hostile and odd input, at the HTTP edge and in Kafka.

Property-based tests (hypothesis), and the image modes phones and editors produce.

The properties: whatever bytes arrive, the record decoder either returns a request or raises
WireFormatError; image decoding either returns an RGB image or raises BadImage; the upload
endpoint answers 202 or a 4xx with a message, never a 5xx, and stays healthy. Records that reach
the processors fail alone: for each task on its own, and without the records around them.
"""

from __future__ import annotations

import io
import time

import httpx
import pytest
from confluent_kafka import Producer
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from PIL import Image, ImageDraw, ImageFont

from conftest import WebServer
from labkit.errors import BadImage, WireFormatError
from labkit.images import load_rgb, prepare_upload
from labkit.kafka.admin import create_topics, read_topic
from labkit.records.serde import RESULTS
from labkit.records.versions import H_SCHEMA
from labkit.records.wire import H_CONTENT_TYPE, H_LABELS, H_SENT_AT, ImageRequest, ScoreResult, header_dict
from labkit.results_listener import ResultsListener

header_names = st.sampled_from([H_CONTENT_TYPE, H_SCHEMA, H_SENT_AT, H_LABELS, "labkit-filename", "x-other"])
header_values = st.one_of(
    st.none(),
    st.binary(max_size=64),
    st.sampled_from(
        [b"1", b"image/jpeg", b"text/plain", b"[]", b'["a", "b"]', b'["a"]', b"{}", b"-5", b"\xff\xfe", b"null"]
    ),
)


@given(
    key=st.one_of(st.none(), st.binary(max_size=80)),
    value=st.one_of(st.none(), st.binary(max_size=256)),
    headers=st.one_of(st.none(), st.lists(st.tuples(header_names, header_values), max_size=8)),
)
@hypothesis_settings(max_examples=400, deadline=None)
def test_the_record_decoder_returns_a_request_or_says_what_is_wrong(key, value, headers):
    try:
        request = ImageRequest.from_record(key, value, headers)
    except WireFormatError as exc:
        assert str(exc)
        return
    assert (
        request.request_id == key.decode("ascii")
        and request.image == value
        and request.content_type.startswith("image/")
    )


def _jpeg(size=(64, 48), color=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "JPEG")
    return buffer.getvalue()


@given(
    data=st.one_of(
        st.binary(max_size=2048),
        st.integers(0, len(_jpeg()) - 1).map(lambda n: _jpeg()[:n]),  # truncated
        st.tuples(st.integers(0, len(_jpeg()) - 1), st.integers(0, 255)).map(  # one byte changed
            lambda change: _jpeg()[: change[0]] + bytes([change[1]]) + _jpeg()[change[0] + 1 :]
        ),
    )
)
@hypothesis_settings(max_examples=300, deadline=None)
def test_image_decoding_returns_rgb_or_bad_image(data):
    try:
        image = load_rgb(data, max_pixels=10_000_000)
    except BadImage as exc:
        assert "image" in str(exc).lower()
        return
    assert image.mode == "RGB" and image.width > 0


@pytest.fixture(scope="module")
def fuzz_web(broker):
    from labkit.config import Settings

    settings = Settings(
        bootstrap=broker.bootstrap_servers,
        model="test-tiny",
        requests_topic="fuzz-requests",
        results_topic="fuzz-results",
        dead_letter_topic="fuzz-dlq",
        group_prefix="fuzz",
        max_upload_bytes=200_000,
        max_pending_uploads=100_000,
    )
    create_topics(settings)
    with WebServer(settings) as web:
        yield web


@given(
    body=st.one_of(st.binary(max_size=4096), st.just(_jpeg())),
    filename=st.text(max_size=300),
    content_type=st.sampled_from(
        ["image/jpeg", "image/png", "application/pdf", "text/html", "", "image/../../etc/passwd"]
    ),
    labels=st.one_of(st.none(), st.text(max_size=3000)),
)
@hypothesis_settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_the_upload_endpoint_never_fails_with_a_5xx(fuzz_web, body, filename, content_type, labels):
    data = {"labels": labels} if labels is not None else None
    response = httpx.post(
        f"{fuzz_web.url}/api/images", files={"file": (filename, body, content_type)}, data=data, timeout=30
    )
    assert response.status_code in (202, 400, 413, 415, 422), response.text
    if response.status_code != 202:
        assert len(response.json()["detail"]) > 20  # a sentence that says what to do
    else:
        assert "/" not in (
            httpx.get(f"{fuzz_web.url}/api/images/{response.json()['request_id']}").json()["filename"] or ""
        )


@given(
    raw=st.binary(max_size=2048),
    content_type=st.sampled_from(
        ["application/json", "text/plain", "multipart/form-data", "multipart/form-data; boundary=x", ""]
    ),
)
@hypothesis_settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_a_body_that_is_not_a_form_gets_a_4xx(fuzz_web, raw, content_type):
    response = httpx.post(f"{fuzz_web.url}/api/images", content=raw, headers={"content-type": content_type}, timeout=30)
    assert 400 <= response.status_code < 500, response.text
    assert httpx.get(f"{fuzz_web.url}/healthz").status_code == 200


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "name, data",
    [
        ("CMYK JPEG", _encoded(Image.new("CMYK", (80, 60), (0, 255, 255, 0)), "JPEG")),
        ("16-bit grey PNG", _encoded(Image.new("I;16", (80, 60), 40000), "PNG")),
        ("palette PNG", _encoded(Image.new("RGB", (80, 60), (200, 30, 30)).convert("P"), "PNG")),
        ("RGBA PNG", _encoded(Image.new("RGBA", (80, 60), (200, 30, 30, 128)), "PNG")),
        ("1-bit PNG", _encoded(Image.new("1", (80, 60), 1), "PNG")),
        ("grey+alpha PNG", _encoded(Image.new("LA", (80, 60), (90, 200)), "PNG")),
    ],
)
def test_image_modes_from_phones_and_editors_are_scored_as_rgb(settings, name, data):
    prepared = prepare_upload(data, settings)
    image = load_rgb(prepared.data)
    assert image.mode == "RGB" and image.size == (80, 60), name


def test_an_animated_gif_is_scored_by_its_first_frame(settings):
    frames = [Image.new("RGB", (64, 64), color) for color in ((220, 20, 20), (20, 20, 220))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    red, _, blue = load_rgb(prepare_upload(buffer.getvalue(), settings).data).getpixel((32, 32))
    assert red > 150 and blue < 80  # the first (red) frame, not the second


def test_a_decompression_bomb_is_refused_by_its_pixel_count(settings):
    bomb = _encoded(Image.new("1", (12_000, 9_000), 0), "PNG")  # 108 megapixels in a few kB
    assert len(bomb) < 100_000
    with pytest.raises(BadImage, match="pixels.*Resize"):
        prepare_upload(bomb, settings)


class _FailsOnWidth:
    """The session's text reader, except that the model fails on images exactly ``width`` pixels wide."""

    def __init__(self, reader, width: int):
        self.reader, self.width = reader, width

    def read(self, bgr):
        if bgr.shape[1] == self.width:
            raise RuntimeError("the detector choked on this image")
        return self.reader.read(bgr)

    def __getattr__(self, name):
        return getattr(self.reader, name)


def _text_png(text: str, width: int = 360) -> bytes:
    image = Image.new("RGB", (width, 100), "white")
    ImageDraw.Draw(image).text((12, 24), text, fill="black", font=ImageFont.load_default(size=40))
    return _encoded(image, "PNG")


def test_hostile_records_reach_the_ocr_task_and_each_fails_alone(settings, start_processor, text_reader):
    """Odd images are read (no text in them), bad ones are dead-lettered by each task for itself.

    An image the OCR model fails on fails for OCR only — while the records around them are answered
    by both tasks.
    """
    frames = [Image.new("RGB", (64, 64), color) for color in ((220, 20, 20), (20, 20, 220))]
    gif = io.BytesIO()
    frames[0].save(gif, "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    records = {
        "not-an-image": (b"definitely not a png", "image/png"),
        "truncated": (_text_png("CUT SHORT")[:300], "image/png"),
        "bomb": (_encoded(Image.new("1", (12_000, 9_000), 0), "PNG"), "image/png"),
        "cmyk": (_encoded(Image.new("CMYK", (80, 60), (0, 255, 255, 0)), "JPEG"), "image/jpeg"),
        "grey16": (_encoded(Image.new("I;16", (80, 60), 40000), "PNG"), "image/png"),
        "one-bit": (_encoded(Image.new("1", (80, 60), 1), "PNG"), "image/png"),
        "animated": (gif.getvalue(), "image/gif"),
        "ocr-fails": (_text_png("NOT READ", width=333), "image/png"),
        "text": (_text_png("STILL READ"), "image/png"),
    }
    create_topics(settings)
    results: dict[tuple[str, str], ScoreResult] = {}
    listener = ResultsListener(settings, lambda r: results.setdefault((r.request_id, r.task), r)).start()
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    for request_id, (data, content_type) in records.items():  # all waiting before the processors start
        request = ImageRequest(request_id=request_id, image=data, content_type=content_type)
        producer.produce(settings.requests_topic, key=request.key(), value=data, headers=request.headers())
    assert producer.flush(10) == 0
    clip = start_processor(task="clip")
    ocr = start_processor(task="ocr", model=_FailsOnWidth(text_reader, 333))
    try:
        deadline = time.monotonic() + 60
        while len(results) < 2 * len(records):
            assert time.monotonic() < deadline, sorted(results)
            time.sleep(0.05)
    finally:
        listener.stop()

    bad = {"not-an-image": "not an image", "truncated": "truncated", "bomb": "decompression bomb"}
    for request_id in records:
        for task in ("clip", "ocr"):
            result = results[request_id, task]
            assert result.task == task and result.model, result
            if request_id in bad or (request_id, task) == ("ocr-fails", "ocr"):
                assert result.status == "error", result
            else:
                assert result.status == "ok", result
    for request_id, cause in bad.items():
        assert cause in results[request_id, "clip"].error and cause in results[request_id, "ocr"].error
    assert "the ocr task failed: RuntimeError: the detector choked" in results["ocr-fails", "ocr"].error
    assert "stillread" in "".join((results["text", "ocr"].text or "").split()).lower()
    assert all(results[i, "ocr"].text == "" for i in ("cmyk", "grey16", "one-bit", "animated"))

    # Each task dead-letters what it failed on, saying so: one copy per task for a record bad for both.
    deadline = time.monotonic() + 30
    while len(dead := read_topic(settings, settings.dead_letter_topic, idle_s=0.3)) < 7:
        assert time.monotonic() < deadline, [m.key() for m in dead]
    failed = sorted((m.key().decode(), header_dict(m.headers())["labkit-dlq-task"]) for m in dead)
    assert failed == sorted([(i, t) for i in bad for t in ("clip", "ocr")] + [("ocr-fails", "ocr")])
    assert clip.running and ocr.running and clip.error is None and ocr.error is None
    assert (clip.stats.dead_lettered, ocr.stats.dead_lettered) == (3, 4)


def test_a_result_whose_answer_its_task_does_not_declare_is_skipped_and_nothing_else_is_lost(settings, caplog):
    """A reader checks each answer against its task's model: a stray field is refused, the next result still comes."""
    create_topics(settings)
    results: dict[str, ScoreResult] = {}
    listener = ResultsListener(settings, lambda r: results.setdefault(r.request_id, r)).start()
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    stray = ScoreResult(request_id="stray", status="ok", task="ocr", answer={"text": "A", "caption": "a cat"})
    good = ScoreResult(request_id="good", status="ok", task="ocr", answer={"text": "B", "lines": []})
    for result in (stray, good):
        value, headers = RESULTS.serialize(result, settings.results_topic)
        producer.produce(settings.results_topic, key=result.request_id.encode(), value=value, headers=headers)
    assert producer.flush(10) == 0
    try:
        deadline = time.monotonic() + 30
        while "good" not in results:
            assert time.monotonic() < deadline, "the good result never arrived"
            time.sleep(0.05)
    finally:
        listener.stop()
    assert "stray" not in results and results["good"].text == "B"
    assert any("caption" in record.getMessage() for record in caplog.records), "the skip was not logged"
