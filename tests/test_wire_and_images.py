"""The wire format round trip through the real broker, and upload preparation on real photos."""

from __future__ import annotations

import io

import pytest
from confluent_kafka import Producer
from PIL import Image

from labkit.bench.images import TWELVE_MP, enlarged_jpeg
from labkit.errors import BadImage, WireFormatError
from labkit.images import load_rgb, prepare_upload
from labkit.kafka.admin import create_topics
from labkit.kafka.client_config import make_consumer
from labkit.records.wire import ImageRequest, LabelScore, ScoreResult, Timings


def test_request_survives_a_trip_through_kafka(settings, photos):
    create_topics(settings)
    sent = ImageRequest(
        request_id="a" * 32, image=photos[0].read_bytes(), content_type="image/jpeg", filename="000.jpg"
    )
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    producer.produce(settings.requests_topic, key=sent.key(), value=sent.image, headers=sent.headers())
    assert producer.flush(5) == 0
    # A member of the processors' group, with labkit's group timeouts (librdkafka's take ~20 s to join here).
    consumer = make_consumer(settings, settings.group_id)
    consumer.subscribe([settings.requests_topic])
    message = None
    for _ in range(60):
        message = consumer.poll(0.5)
        if message is not None and not message.error():
            break
    consumer.close()
    assert message is not None and not message.error()
    received = ImageRequest.from_record(message.key(), message.value(), message.headers())
    assert received == sent


def test_result_json_round_trip():
    result = ScoreResult(
        id="b" * 32,
        status="ok",
        labels=[LabelScore(label="cat", score=0.895)],
        model="ViT-B-32/openai",
        timings_ms=Timings(queued=3, decode=4, inference=30, total=40),
    )
    data = result.to_json()
    assert b'"schema":1' in data
    assert ScoreResult.from_json(data) == result


@pytest.mark.parametrize(
    "key, value, headers, problem",
    [
        (None, b"x", [("labkit-schema", b"1"), ("content-type", b"image/jpeg")], "no key"),
        (b"id1", b"x", [("content-type", b"image/jpeg")], "schema"),
        (b"id1", b"x", [("labkit-schema", b"1"), ("content-type", b"text/plain")], "content-type"),
        (b"id1", b"", [("labkit-schema", b"1"), ("content-type", b"image/png")], "no image"),
    ],
)
def test_malformed_requests_are_rejected_with_the_reason(key, value, headers, problem):
    with pytest.raises(WireFormatError, match=problem):
        ImageRequest.from_record(key, value, headers)


def test_unreadable_result_is_a_wire_format_error():
    with pytest.raises(WireFormatError):
        ScoreResult.from_json(b'{"id": 3}')


def _jpeg(image: Image.Image, **save) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", **save)
    return buffer.getvalue()


def phone_photo(photo_path, size=TWELVE_MP) -> bytes:
    """A 12-megapixel JPEG of several MB made from a real photo."""
    return enlarged_jpeg(photo_path, size)


def test_small_photo_passes_unchanged(settings, photos):
    data = photos[0].read_bytes()
    prepared = prepare_upload(data, settings)
    assert prepared.data == data and not prepared.reencoded and prepared.content_type == "image/jpeg"


def test_twelve_megapixel_photo_is_shrunk_below_the_record_limit(settings, photos):
    data = phone_photo(photos[1])
    assert len(data) > 3_000_000  # several MB, far over Kafka's default ~1 MB
    prepared = prepare_upload(data, settings)
    assert prepared.reencoded and len(prepared.data) <= settings.max_record_bytes
    assert max(prepared.width, prepared.height) == settings.max_image_side
    side = settings.max_image_side
    assert load_rgb(prepared.data).size == (side, side * 3 // 4)


def test_exif_rotated_photo_is_sent_upright(settings, photos):
    image = Image.open(photos[2]).convert("RGB").resize((300, 200))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    prepared = prepare_upload(_jpeg(image, exif=exif), settings)
    assert prepared.reencoded and (prepared.width, prepared.height) == (200, 300)


def test_png_with_alpha_and_gif_are_accepted(settings, photos):
    rgba = Image.open(photos[3]).convert("RGBA")
    buffer = io.BytesIO()
    rgba.save(buffer, format="PNG")
    assert prepare_upload(buffer.getvalue(), settings).content_type == "image/png"
    buffer = io.BytesIO()
    rgba.convert("P").save(buffer, format="GIF")
    gif = prepare_upload(buffer.getvalue(), settings)
    assert gif.content_type == "image/jpeg" and load_rgb(gif.data).mode == "RGB"


@pytest.mark.parametrize("data, reason", [(b"", "empty"), (b"hello, world", "not an image")])
def test_non_images_are_refused_with_a_hint(settings, data, reason):
    with pytest.raises(BadImage, match=reason) as error:
        prepare_upload(data, settings)
    assert "JPEG, PNG, WebP or GIF" in str(error.value)


@pytest.mark.parametrize("image_format", ["JPEG", "PNG", "WEBP"])
def test_an_upload_cut_short_is_refused_without_decoding_it(settings, photos, image_format):
    buffer = io.BytesIO()
    Image.open(photos[4]).save(buffer, image_format)
    data = buffer.getvalue()
    assert prepare_upload(data, settings).data == data  # whole: passed on as it came
    for cut in (len(data) // 2, len(data) - 3):  # (Pillow's WebP reader already refuses it as it opens the file)
        with pytest.raises(BadImage, match="damaged or truncated|not an image labkit can read"):
            prepare_upload(data[:cut], settings)


def test_a_small_upload_is_not_decoded_by_the_web_tier(settings, photos, monkeypatch):
    """The processor decodes it, once: a JPEG damaged inside but whole in structure gets through to it."""
    data = bytearray(photos[4].read_bytes())
    data[len(data) // 2] ^= 0xFF
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("the web tier decoded a small upload"))
    assert prepare_upload(bytes(data), settings).data == bytes(data)
