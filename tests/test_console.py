"""Console tools (`labkit topics tail` / `perf`): every record shown, values made readable.

Each record is shown with its place, key, time and headers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from labkit.images import PreparedImage, prepare_upload
from labkit.kafka.admin import create_topics
from labkit.kafka.client_config import make_producer
from labkit.kafka.console import consumer_throughput, describe_value, tail


def _topic_with_three_kinds_of_value(settings, photos) -> tuple[str, PreparedImage]:
    """A one-partition topic holding a JSON result, an image request and some binary bytes."""
    topic = settings.results_topic
    create_topics(settings.model_copy(update={"partitions": 1}), [topic])
    image = prepare_upload(photos[0].read_bytes(), settings)
    producer = make_producer(settings)
    # One request per record: the lab's broker counts batches in its end offsets, and `tail`
    # without --from-beginning starts at the end offset.
    for key, value, headers in [
        (b"id-1", json.dumps({"id": "id-1", "status": "ok"}).encode(), None),
        (b"id-2", image.data, [("content-type", b"image/jpeg")]),
        (None, bytes(range(200, 256)), None),
    ]:
        producer.produce(topic, key=key, value=value, headers=headers)
        assert producer.flush(10) == 0
    return topic, image


def test_tail_from_the_beginning_shows_each_record_readably_and_stops_when_caught_up(settings, photos):
    topic, image = _topic_with_three_kinds_of_value(settings, photos)
    blocks: list[str] = []
    summary = tail(settings, topic, blocks.append, from_beginning=True)
    assert summary.records == 3 and len(blocks) == 3
    assert blocks[0].startswith(f"{topic}[0]@0  key=id-1") and '"status": "ok"' in blocks[0]  # pretty JSON
    assert "headers: content-type=image/jpeg" in blocks[1]
    assert f"<JPEG image, {len(image.data) / 1000:.1f} kB, {image.width}×{image.height} px>" in blocks[1]  # not dumped
    assert "key=-" in blocks[2] and "<56 bytes of binary data>" in blocks[2]


def test_tail_in_a_group_moves_its_offsets_and_max_stops_early(settings, photos):
    topic, _ = _topic_with_three_kinds_of_value(settings, photos)
    group = f"tail-{topic}"
    first = tail(settings, topic, lambda _: None, from_beginning=True, group=group, max_records=2)
    assert first.records == 2
    rest = tail(settings, topic, lambda _: None, group=group)  # from the group's committed offset on
    assert rest.records == 1


def test_tail_follow_prints_records_produced_while_it_waits(settings, photos):
    topic, _ = _topic_with_three_kinds_of_value(settings, photos)
    blocks: list[str] = []
    stop = threading.Event()
    reader = threading.Thread(
        target=tail, args=(settings, topic, blocks.append), kwargs={"follow": True, "stop": stop.is_set}
    )
    reader.start()
    try:
        producer = make_producer(settings)
        deadline = time.monotonic() + 30
        while not blocks:  # the reader starts at the end: produce until it is positioned and sees one
            assert time.monotonic() < deadline, "tail --follow printed nothing new"
            producer.produce(topic, key=b"late", value=b"hello")
            producer.flush(5)
            time.sleep(0.3)
    finally:
        stop.set()
        reader.join(10)
    assert "key=late" in blocks[0] and blocks[0].endswith("hello")


def test_perf_reads_every_record_and_reports_a_rate(settings, photos):
    topic, image = _topic_with_three_kinds_of_value(settings, photos)
    summary = consumer_throughput(settings, topic)
    assert summary.records == 3 and summary.bytes >= len(image.data) and summary.records_per_s > 0


def test_describe_value_names_tombstones_and_text():
    assert "tombstone" in describe_value(None)
    assert describe_value("café".encode()) == "café"


def test_the_cli_tails_and_says_what_to_pass(settings, photos):
    topic, _ = _topic_with_three_kinds_of_value(settings, photos)
    command = [sys.executable, "-m", "labkit", "topics", "tail", topic, "--from-beginning", "--max", "2"]
    result = subprocess.run(
        [*command, "--bootstrap", settings.bootstrap_servers], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "key=id-1" in result.stdout and "key=id-2" in result.stdout and "(2 record(s)" in result.stdout
    missing = subprocess.run(
        [sys.executable, "-m", "labkit", "topics", "tail", "--bootstrap", settings.bootstrap_servers],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and "needs a topic" in missing.stderr
