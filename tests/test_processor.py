"""The processor end to end on the real broker.

Results out, offsets committed, bad records dead-lettered, partitions shared.
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka import Producer

from labkit.kafka.admin import describe_topics, read_topic
from labkit.processor import DECODE_THREAD
from labkit.records.wire import header_dict
from labkit.request_sender import RequestSender
from labkit.results_listener import ResultsListener


def _collect(settings):
    results = {}
    listener = ResultsListener(settings, lambda r: results.__setitem__(r.request_id, r)).start()
    return results, listener


def _wait_for(predicate, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_images_in_results_out_offsets_committed(settings, start_processor, photos):
    runner = start_processor()
    results, listener = _collect(settings)
    sender = RequestSender(settings)
    ids = []
    for path in photos[:12]:
        request, _, acked = sender.send(path.read_bytes(), path.name)
        acked.result(10)
        ids.append(request.request_id)
    try:
        assert _wait_for(lambda: set(ids) <= set(results)), f"got {len(results)} of {len(ids)} results"
    finally:
        sender.close()
        listener.stop()
    for request_id in ids:
        result = results[request_id]
        assert result.status == "ok" and len(result.labels) == settings.top_k
        assert result.task == "clip" and result.text is None and result.lines == []
        assert result.model == "test-tiny (random weights)" and result.processor == runner.name
        assert result.timings_ms.total >= result.timings_ms.inference > 0
    # Committed offsets cover all 12 requests (committed after the results were acknowledged).
    assert _wait_for(lambda: sum(r.committed or 0 for r in describe_topics(settings, [settings.requests_topic])) == 12)
    assert _wait_for(lambda: runner.stats.scored == 12) and runner.error is None  # counted after the commit
    # What `labkit bench`'s CPU budget reads: the loop thread's CPU time inside the task's runs, and the decode
    # thread by its OS name.
    assert runner.stats.run_thread_cpu_s > 0
    assert DECODE_THREAD in _os_thread_names()


def _os_thread_names() -> set[str]:
    names = set()
    for task in Path("/proc/self/task").iterdir():
        try:
            names.add((task / "comm").read_text().strip())
        except OSError:  # a thread that ended since the listing
            pass
    return names


def test_malformed_records_go_to_the_dead_letter_topic_and_the_processor_keeps_going(settings, start_processor, photos):
    runner = start_processor()
    results, listener = _collect(settings)
    producer = Producer({"bootstrap.servers": settings.bootstrap_servers})
    good_headers = [("labkit-schema", b"1"), ("content-type", b"image/jpeg")]
    producer.produce(settings.requests_topic, key=b"bad-image-1", value=b"definitely not a jpeg", headers=good_headers)
    producer.produce(settings.requests_topic, key=b"no-headers-2", value=b"???")
    future = [("labkit-schema", b"2.0"), ("content-type", b"image/jpeg")]  # a major version this processor can't read
    producer.produce(settings.requests_topic, key=b"schema-two-3", value=photos[3].read_bytes(), headers=future)
    producer.flush(5)
    sender = RequestSender(settings)
    good, _, acked = sender.send(photos[7].read_bytes(), "007.jpg")
    acked.result(10)
    try:
        assert _wait_for(lambda: {"bad-image-1", "no-headers-2", "schema-two-3", good.request_id} <= set(results))
    finally:
        sender.close()
        listener.stop()
    assert results[good.request_id].status == "ok"
    assert results["bad-image-1"].status == "error" and "not an image" in results["bad-image-1"].error
    assert results["no-headers-2"].status == "error" and "schema" in results["no-headers-2"].error
    assert results["schema-two-3"].status == "error" and "has schema 2.0" in results["schema-two-3"].error

    deadline = time.monotonic() + 30  # read outside any group: no join to wait for
    while len(dead := {m.key(): m for m in read_topic(settings, settings.dead_letter_topic, idle_s=0.3)}) < 3:
        assert time.monotonic() < deadline, dead
    assert set(dead) == {b"bad-image-1", b"no-headers-2", b"schema-two-3"}
    bad = dead[b"bad-image-1"]
    headers = header_dict(bad.headers())
    assert bad.value() == b"definitely not a jpeg"  # the original bytes, kept for replay
    assert headers["labkit-dlq-topic"] == settings.requests_topic
    assert int(headers["labkit-dlq-offset"]) >= 0 and headers["labkit-dlq-partition"] in {"0", "1", "2"}
    assert "not an image" in headers["labkit-dlq-error"] and headers["content-type"] == "image/jpeg"
    assert headers["labkit-dlq-task"] == "clip" and results["bad-image-1"].task == "clip"  # which task failed it
    assert runner.running and runner.stats.dead_lettered == 3 and runner.error is None


def test_processors_in_one_group_share_the_partitions(settings, start_processor):
    first = start_processor("member-a")
    second = start_processor("member-b", wait=False)
    assert second.ready.wait(30)

    def split_evenly():
        a, b = set(first.assignment), set(second.assignment)
        return a and b and not (a & b) and a | b == {0, 1, 2}

    assert _wait_for(split_evenly, 30), (first.assignment, second.assignment)


def test_custom_labels_travel_with_the_request(settings, start_processor, photos):
    start_processor()
    results, listener = _collect(settings)
    sender = RequestSender(settings)
    custom, _, acked = sender.send(photos[0].read_bytes(), "000.jpg", labels=["kitten", "teapot", "  pyramids "])
    default, _, acked2 = sender.send(photos[1].read_bytes(), "001.jpg")
    acked.result(10), acked2.result(10)
    try:
        assert _wait_for(lambda: {custom.request_id, default.request_id} <= set(results))
    finally:
        sender.close()
        listener.stop()
    assert sorted(s.label for s in results[custom.request_id].labels) == ["kitten", "pyramids", "teapot"]
    assert len(results[default.request_id].labels) == settings.top_k
