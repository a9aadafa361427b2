"""The OCR task on the real broker with the real PP-OCRv4 models.

Rendered text comes back word for word, each task's group answers every request and commits on its
own, a record for another task is skipped, a crash loses no OCR result.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np
import pytest
from confluent_kafka import Producer
from PIL import Image, ImageDraw, ImageFont
from test_resilience import _wait_until
from websockets.sync.client import connect

from conftest import WebServer
from labkit.bench.ocr import same_text, text_images
from labkit.errors import LabkitError
from labkit.images import load_rgb
from labkit.kafka.admin import create_topics, describe_topics, read_topic
from labkit.records.serde import RESULTS
from labkit.records.wire import ImageRequest, ScoreResult
from labkit.request_sender import RequestSender
from labkit.results_listener import ResultsListener
from labkit.tasks import TASKS, OcrTask, build_task
from labkit.tasks.ocr import DETECTOR_SIDE

#: Debian's fonts-dejavu-core (.ci/run installs it); "default" is the font Pillow bundles.
DEJAVU = Path("/usr/share/fonts/truetype/dejavu")


def _font(name: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if name == "default":
        return ImageFont.load_default(size=size)
    path = DEJAVU / f"{name}.ttf"
    if not path.exists():
        pytest.fail(f"{path} is missing: install Debian's fonts-dejavu-core (.ci/run does)", pytrace=False)
    return ImageFont.truetype(str(path), size)


def _card(lines, font, size=(480, 200), angle=0, background=None, fill="black", stroke=0) -> bytes:
    """A PNG with ``lines`` of text drawn on white (or on a photo), optionally rotated."""
    image = Image.open(background).convert("RGB").resize(size) if background else Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    for n, line in enumerate(lines):
        y = 20 + n * int(font.size * 1.6)
        draw.text((16, y), line, fill=fill, font=font, stroke_width=stroke, stroke_fill="black")
    if angle:
        image = image.rotate(angle, expand=True, fillcolor="white")
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


def _normal(text: str) -> str:
    """Case and spaces do not count (the recogniser may drop a space: 'KAFKASTREAMS')."""
    return "".join(text.split()).lower()


class _Results:
    """Every result produced after start, by (request id, task); the first of duplicates is kept."""

    def __init__(self, settings):
        self.by_key: dict[tuple[str, str], ScoreResult] = {}
        self._listener = ResultsListener(settings, lambda r: self.by_key.setdefault((r.request_id, r.task), r)).start()

    def wait_for(self, keys, timeout=60):
        deadline = time.monotonic() + timeout
        while not set(keys) <= set(self.by_key):
            missing = sorted(set(keys) - set(self.by_key))
            assert time.monotonic() < deadline, f"no result for {missing[:4]} ({len(missing)} missing)"
            time.sleep(0.05)

    def stop(self):
        self._listener.stop()


@pytest.fixture
def results(settings):
    create_topics(settings)
    collected = _Results(settings)
    yield collected
    collected.stop()


def _send(settings, images: list[bytes]) -> list[str]:
    """Produce each image as a request for every task; their ids, once the broker has them all."""
    sender = RequestSender(settings)
    try:
        sent = []
        for n, data in enumerate(images):
            request, _, acked = sender.send(data, f"image-{n}.png")
            sent.append((request.request_id, acked))
        for _, acked in sent:
            acked.result(15)
        return [request_id for request_id, _ in sent]
    finally:
        sender.close()


def _committed(settings, task: str) -> dict[int, int | None]:
    """The task's group's committed offset on each partition of the requests topic."""
    rows = describe_topics(settings, [settings.requests_topic], settings.for_task(task).group_id)
    return {row.partition: row.committed for row in rows}


def _next_offsets(positions) -> dict[int, int]:
    """Per partition, the offset after the last of ``positions`` ((partition, offset) pairs): a full commit."""
    ends: dict[int, int] = {}
    for partition, offset in positions:
        ends[partition] = max(ends.get(partition, 0), offset + 1)
    return ends


def _covers(committed: dict[int, int | None], ends: dict[int, int]) -> bool:
    return all((committed.get(partition) or 0) >= end for partition, end in ends.items())


# --- the task alone -------------------------------------------------------------------------------


def test_the_registry_builds_each_task_and_names_the_known_ones_for_an_unknown_one(settings, text_reader):
    assert set(TASKS) >= {"clip", "ocr"}
    task = build_task(settings.for_task("ocr"), text_reader)
    assert isinstance(task, OcrTask) and task.model_id.startswith("PP-OCRv4")
    with pytest.raises(LabkitError, match="no task 'sound'.*clip, ocr"):
        build_task(settings.for_task("sound"))
    with pytest.raises(LabkitError, match="clip task was given a TextReader.*no embed_and_score"):
        build_task(settings.for_task("clip"), text_reader)  # e.g. LABKIT_TASK=clip for a notebook's OCR reader


def test_the_reader_shrinks_the_detector_input_never_enlarges_it_and_its_threads_sleep(text_reader):
    """The two settings that made OCR ~2.3× faster (see labkit/tasks/ocr.py), and a 640 px card still read exactly."""
    engine = text_reader._engine
    for part in (engine.text_det.infer, engine.text_cls.infer, engine.text_rec.session):
        options = part.session.get_session_options()
        assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    detector_input = engine.text_det.get_preprocess
    assert detector_input(640)(np.zeros((240, 640, 3), np.uint8)).shape == (1, 3, 192, DETECTOR_SIDE)
    assert detector_input(300)(np.zeros((200, 300, 3), np.uint8)).shape == (1, 3, 192, 288)  # rounded to 32s
    card, text = text_images(2)[1]  # 640×240, font 30: the detector sees it at 0.85×, the recogniser at 1×
    lines = text_reader.read(np.ascontiguousarray(np.asarray(load_rgb(card))[:, :, ::-1]))
    assert same_text("\n".join(line.text for line in lines), text), lines


CARDS = {
    "default font, two lines": (["KAFKA STREAMS", "2026"], ("default", 44), {}),
    "serif bold": (["Photo of a cat"], ("DejaVuSerif-Bold", 34), {}),
    "small monospace": (["consumer group lag 42"], ("DejaVuSansMono", 22), {}),
    "rotated 90 degrees": (["ROTATED LINE"], ("DejaVuSans-Bold", 36), {"angle": 90}),
    "tilted": (["Tilted words"], ("DejaVuSans", 30), {"angle": 12}),
    "on a photo": (["HELLO KAFKA"], ("default", 52), {"size": (448, 448), "fill": "white", "stroke": 3}),
}


def test_rendered_text_comes_back_word_for_word_and_a_photo_without_text_reads_empty(
    settings, start_processor, results, photos
):
    """Each card goes the way a phone app's upload goes: POST /api/images → Kafka → the OCR processor → /ws."""
    reader = start_processor(task="ocr")
    cards = {
        name: _card(lines, _font(*font), **({"background": photos[3]} if name == "on a photo" else {}), **options)
        for name, (lines, font, options) in CARDS.items()
    }
    images = [*cards.values(), photos[0].read_bytes()]
    ocr_only = settings.model_copy(update={"tasks": "ocr"})
    with WebServer(ocr_only) as web, connect(f"ws://127.0.0.1:{web.port}/ws") as socket:
        ids = []
        for n, data in enumerate(images):
            kind = ("image/png", "png") if data.startswith(b"\x89PNG") else ("image/jpeg", "jpg")
            accepted = httpx.post(f"{web.url}/api/images", files={"file": (f"card-{n}.{kind[1]}", data, kind[0])})
            assert accepted.status_code == 202 and accepted.json()["tasks"] == ["ocr"], accepted.text
            ids.append(accepted.json()["request_id"])
            socket.send(json.dumps({"type": "subscribe", "request_id": ids[-1]}))
        pushed: dict[str, dict] = {}
        while len(pushed) < len(ids):
            message = json.loads(socket.recv(timeout=90))
            assert message["type"] == "result" and message["task"] == "ocr", message
            pushed.setdefault(message["request_id"], message)
        held = httpx.get(f"{web.url}/api/images/{ids[0]}").json()
    assert held["tasks"]["ocr"]["text"] == pushed[ids[0]]["text"]  # the REST API holds what the socket pushed

    for request_id, (name, data) in zip(ids, cards.items()):
        result = pushed[request_id]
        assert result["status"] == "done" and result["model"].startswith("PP-OCRv4"), (name, result)
        for line in CARDS[name][0]:
            assert _normal(line) in _normal(result["text"] or ""), (name, result["text"])
        width, height = Image.open(io.BytesIO(data)).size
        assert result["text"] == "\n".join(line["text"] for line in result["lines"]) and result["labels"] == []
        for line in result["lines"]:
            assert 0.5 <= line["score"] <= 1 and len(line["box"]) == 4, (name, line)
            assert all(0 <= x <= width and 0 <= y <= height for x, y in line["box"]), (name, line["box"])
        assert result["processor"] == reader.name and result["timings_ms"]["inference"] > 0

    blank = pushed[ids[-1]]
    assert (
        blank["status"] == "done" and blank["text"] == "" and blank["lines"] == []
    )  # no text: an answer, not an error
    # The processor counts a batch once its offsets are committed, a moment after its results went out.
    _wait_until(lambda: reader.stats.scored == len(ids), f"the reader to count {len(ids)} scored")
    assert reader.error is None


# --- two tasks, two groups, one topic ---------------------------------------------------------------


def test_clip_and_ocr_each_answer_every_request_and_their_groups_commit_on_their_own(
    settings, start_processor, results, photos, caplog
):
    caplog.set_level(logging.INFO, logger="labkit.batch")
    clip = start_processor(task="clip")
    ocr = start_processor(task="ocr")
    text = _card(["TWO GROUPS"], _font("default", 44))
    for_all = _send(settings, [text, photos[0].read_bytes(), photos[1].read_bytes()])
    # One request for CLIP only, produced as any client could: its labkit-tasks header says so.
    clip_only = ImageRequest(
        request_id="clip-only-1", image=photos[2].read_bytes(), content_type="image/jpeg", tasks=("clip",)
    )
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    position = []
    producer.produce(
        settings.requests_topic,
        key=clip_only.key(),
        value=clip_only.image,
        headers=clip_only.headers(),
        on_delivery=lambda error, message: position.append((message.partition(), message.offset())),
    )
    assert producer.flush(10) == 0 and position

    results.wait_for([(i, "clip") for i in [*for_all, clip_only.request_id]] + [(i, "ocr") for i in for_all])
    assert all(r.status == "ok" for r in results.by_key.values())
    assert "twogroups" in _normal(results.by_key[for_all[0], "ocr"].text or "")
    assert results.by_key[for_all[0], "clip"].labels and results.by_key[for_all[0], "clip"].text is None
    ends = _next_offsets([(r.partition, r.offset) for r in results.by_key.values()] + position)
    # Each group commits past every request, the skipped one included (OCR moved past it undecoded).
    for task in ("clip", "ocr"):
        _wait_until(lambda task=task: _covers(_committed(settings, task), ends), f"the {task} group's commits")
    _wait_until(lambda: (ocr.stats.skipped, ocr.stats.scored, clip.stats.scored) == (1, 3, 4), "the counts")
    assert any("skipped clip-only-1" in r.getMessage() and "not ocr" in r.getMessage() for r in caplog.records)

    # OCR stops: CLIP carries on alone, and only CLIP's committed offsets move.
    ocr.stop()
    ocr_committed = _committed(settings, "ocr")
    later = _send(settings, [photos[4].read_bytes(), _card(["CATCH UP"], _font("DejaVuSans-Bold", 36))])
    results.wait_for([(i, "clip") for i in later])
    later_ends = _next_offsets([(results.by_key[i, "clip"].partition, results.by_key[i, "clip"].offset) for i in later])
    _wait_until(lambda: _covers(_committed(settings, "clip"), later_ends), "the clip group's commits")
    assert _committed(settings, "ocr") == ocr_committed and not any((i, "ocr") in results.by_key for i in later)

    # A new OCR member picks up from its group's committed offsets: the two it missed, nothing again.
    again = start_processor(task="ocr")
    results.wait_for([(i, "ocr") for i in later])
    _wait_until(lambda: _covers(_committed(settings, "ocr"), later_ends), "the ocr group's commits")
    assert "catchup" in _normal(results.by_key[later[1], "ocr"].text or "")
    _wait_until(lambda: (again.stats.scored, again.stats.skipped) == (2, 0), "the new member's counts")
    written = [RESULTS.deserialize(m.value(), m.headers()) for m in read_topic(settings, settings.results_topic)]
    assert not [
        r for r in written if r.request_id == clip_only.request_id and r.task == "ocr"
    ]  # skipped: nothing produced


# --- a crash ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("failpoint", ["after-consume:2", "before-commit:2"])
def test_the_ocr_processor_killed_mid_batch_loses_no_ocr_result(
    settings, start_processor, results, tmp_path, failpoint
):
    """``labkit processor --task ocr`` as a child process, killed by its failpoint in its second batch.

    Killed just after polling it, or with its results acknowledged but its offsets not yet committed.
    """
    images = [_card([f"RECORD {n}"], _font("DejaVuSans-Bold", 32), size=(320, 96)) for n in range(8)]
    ids = _send(settings, images)  # all waiting before the processor starts: batches of two
    ready = tmp_path / "ready"
    env = {**os.environ, **settings.to_env()}
    command = [sys.executable, "-m", "labkit", "processor", "--task", "ocr", "--ready-file", str(ready)]
    log = tmp_path / "processor.log"
    with log.open("w") as output:
        doomed = subprocess.Popen(
            # labkit's session.timeout.ms (6 s, Apache Kafka's least) hands its partitions on soon after it dies.
            [*command, "--failpoint", failpoint, "--max-batch-size", "2"],
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        try:
            assert doomed.wait(90) == -signal.SIGKILL, log.read_text()[-2000:]  # died at the failpoint
        finally:
            if doomed.poll() is None:
                doomed.kill()
    assert "joining group" in log.read_text() and "task ocr" in log.read_text()

    rescuer = start_processor(task="ocr")  # same group: it re-reads from the last commit
    results.wait_for([(i, "ocr") for i in ids])
    for n, request_id in enumerate(ids):
        assert _normal(f"RECORD {n}") in _normal(results.by_key[request_id, "ocr"].text or "")
    # Its batch in hand (and the one decoding behind it) were never answered: the rescuer answered them.
    assert any(results.by_key[i, "ocr"].processor == rescuer.name for i in ids)
