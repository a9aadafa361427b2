"""labkit.ops.monitor against the real broker: lag in records and in seconds, the pipeline snapshot.

Also the lesson 17 check, fed its wrong answers.
"""

from __future__ import annotations

import json
import re
import time

import pytest
from confluent_kafka import TopicPartition
from test_exercises import commit as _commit

from labkit import exercises
from labkit._net import free_port
from labkit.errors import BrokerUnavailable, TopicMissing
from labkit.exercises import ExerciseFailed
from labkit.kafka.admin import create_topics, describe_topics
from labkit.kafka.client_config import make_consumer, make_producer
from labkit.ops.monitor import PartitionLag, partition_lag, pipeline_snapshot


def _backdated(settings, topic: str, ages: dict[int, list[float]]) -> dict[int, list[float]]:
    """Write one record per age (seconds ago) to each partition, one request each; returns their timestamps (s)."""
    now = time.time()
    producer = make_producer(settings)
    stamps = {p: [now - age for age in partition_ages] for p, partition_ages in ages.items()}
    for partition, times in stamps.items():
        for stamp in times:
            producer.produce(topic, value=b"x" * 50_000, partition=partition, timestamp=int(stamp * 1000))
            producer.flush(10)
    return stamps


def test_lag_in_records_and_seconds_from_committed_offsets_and_record_timestamps(settings):
    create_topics(settings)
    topic, group = settings.requests_topic, settings.group_id
    stamps = _backdated(settings, topic, {0: [300, 200, 100], 1: [50, 20]})
    # Nothing committed yet: the group will start at the beginning, so every record waits.
    fresh = partition_lag(settings, topic, group)
    assert [(r.partition, r.committed, r.end, r.lag_records) for r in fresh] == [
        (0, None, 3, 3),
        (1, None, 2, 2),
        (2, None, 0, 0),
    ]
    assert fresh[0].lag_seconds == pytest.approx(time.time() - stamps[0][0], abs=2)
    assert fresh[2].lag_seconds == 0.0

    _commit(settings, group, topic, {0: 1, 1: 2, 2: 0})
    before = time.time()
    rows = partition_lag(settings, topic, group)
    assert rows[0] == PartitionLag(topic, 0, 1, 3, 2, rows[0].lag_seconds)
    # The oldest *unfinished* record is the one at the committed offset, 200 s old — not the finished 300 s one.
    assert rows[0].lag_seconds == pytest.approx(before - stamps[0][1], abs=2)
    assert (rows[1].lag_records, rows[1].lag_seconds) == (0, 0.0)  # caught up
    assert (rows[2].committed, rows[2].lag_records, rows[2].lag_seconds) == (0, 0, 0.0)
    # It agrees with admin.describe_topics on offsets, and it never joined the group to read them.
    assert [r.high for r in describe_topics(settings, [topic], group)] == [r.end for r in rows]


def test_lag_seconds_climb_while_lag_records_stay_put(settings):
    create_topics(settings)
    _backdated(settings, settings.requests_topic, {0: [5]})
    first = partition_lag(settings, settings.requests_topic, settings.group_id)[0]
    deadline = time.monotonic() + 5
    while (later := partition_lag(settings, settings.requests_topic, settings.group_id)[0]).lag_seconds <= (
        first.lag_seconds or 0
    ) + 0.3:
        assert time.monotonic() < deadline, (first, later)
    assert later.lag_records == first.lag_records == 1


def test_errors_say_what_to_do(settings):
    with pytest.raises(TopicMissing, match="labkit topics create"):
        partition_lag(settings, "never-created-topic", settings.group_id)
    nowhere = settings.model_copy(update={"bootstrap": f"127.0.0.1:{free_port()}"})
    started = time.monotonic()
    with pytest.raises(BrokerUnavailable, match="labkit up"):
        partition_lag(nowhere, "anything", "anyone")
    assert time.monotonic() - started < 10  # short timeouts: a live view must not hang


def test_snapshot_is_plain_json_with_topics_members_and_lag(settings, start_processor, photos):
    from labkit.lab_client import LabClient

    processor = start_processor(name="monitored-processor")
    with LabClient(settings) as lab:
        ids = [lab.submit(photo) for photo in photos[:4]]  # one request each
        for request_id in ids:
            lab.wait(request_id)
    deadline = time.monotonic() + 15
    while (snapshot := pipeline_snapshot(settings))["lag"]["records"] != 0:
        assert time.monotonic() < deadline, snapshot  # the processor commits what it has answered
    assert json.loads(json.dumps(snapshot)) == snapshot
    requests = snapshot["topics"][settings.requests_topic]
    assert requests["exists"] and requests["partitions"] == 3 and sum(requests["end_offsets"]) >= 4
    assert snapshot["topics"][settings.results_topic]["partitions"] == 3
    assert snapshot["lag"]["seconds"] == 0.0 and len(snapshot["lag"]["partitions"]) == 3
    members = snapshot["group"]["members"]
    assert members is None or list(members) == [processor.name], members  # None = unknown, never {}
    assert "labkit-monitor" not in (members or {})
    # Cheap enough for a live view every couple of seconds.
    started = time.monotonic()
    for _ in range(5):
        pipeline_snapshot(settings)
    assert time.monotonic() - started < 5


def test_snapshot_reports_missing_topics_instead_of_failing(settings):
    snapshot = pipeline_snapshot(settings.model_copy(update={"requests_topic": "no-such-requests"}))
    assert snapshot["topics"]["no-such-requests"] == {"exists": False, "partitions": 0, "end_offsets": []}
    assert snapshot["lag"]["records"] is None and snapshot["lag"]["partitions"] == []


def test_each_task_group_has_its_own_lag_in_the_snapshot_the_describe_table_and_metrics(settings):
    from labkit.kafka.console import describe_groups
    from labkit.web.metrics import WebMetrics

    settings = settings.model_copy(update={"tasks": "clip,ocr"})
    create_topics(settings)
    topic, clip, ocr = settings.requests_topic, settings.group_id, settings.for_task("ocr").group_id
    stamps = _backdated(settings, topic, {0: [60, 30], 1: [10]})
    _commit(settings, clip, topic, {0: 2, 1: 1, 2: 0})  # CLIP has finished every upload, OCR none yet

    def waited(seconds: float, since: float) -> bool:  # the oldest upload's age, read between `since` and now
        return since - stamps[0][0] - 1 <= seconds <= time.time() - stamps[0][0] + 1

    before = time.time()
    snapshot = pipeline_snapshot(settings)
    assert json.loads(json.dumps(snapshot)) == snapshot
    assert [(g["id"], g["task"]) for g in snapshot["groups"]] == [(clip, "clip"), (ocr, "ocr")]
    lag = {g["task"]: g["lag"] for g in snapshot["groups"]}
    assert (lag["clip"]["records"], lag["clip"]["seconds"]) == (0, 0.0)
    assert lag["ocr"]["records"] == 3 and lag["ocr"]["topic"] == topic
    assert waited(lag["ocr"]["seconds"], before), lag["ocr"]  # its oldest waiting upload
    assert [row["lag_records"] for row in lag["ocr"]["partitions"]] == [2, 1, 0]
    assert all(g["members"] is None or g["members"] == {} for g in snapshot["groups"])  # nobody consumes
    # As before there were several tasks: `group` and `lag` are the settings' own task's (CLIP).
    assert snapshot["group"]["id"] == clip and snapshot["lag"]["records"] == 0

    lines: list[str] = []
    before = time.time()
    describe_groups(settings, {}, lines.append)
    totals = {line.split()[0]: line.split()[-2:] for line in lines if " all " in line}
    assert totals[clip] == ["0", "0.0"] and totals[ocr][0] == "3"
    assert waited(float(totals[ocr][1]), before), totals[ocr]

    before = time.time()
    scraped = WebMetrics(settings).render().decode()
    assert f'labkit_request_lag{{group="{ocr}",partition="0"}} 2.0' in scraped, scraped
    assert f'labkit_request_lag{{group="{clip}",partition="0"}} 0.0' in scraped
    seconds = re.search(rf'labkit_request_lag_seconds{{group="{ocr}",partition="0"}} (\S+)', scraped)
    assert seconds and waited(float(seconds[1]), before), seconds


# --- the check behind notebook 17's exercise -------------------------------------------------------------


def _record_time(settings, topic: str, partition: int, offset: int) -> float:
    reader = make_consumer(settings)
    try:
        reader.assign([TopicPartition(topic, partition, offset)])
        message = reader.poll(10)
        assert message is not None and not message.error()
        return message.timestamp()[1] / 1000
    finally:
        reader.close()


def _ages(settings, topic: str, group: str, at, caught_up_is_zero: bool = True) -> dict[int, float]:
    """{partition: now − timestamp of the record at ``at(committed, end)``; 0.0 where committed = end}."""
    return {
        row.partition: 0.0
        if caught_up_is_zero and row.committed is not None and row.committed >= row.high
        else time.time() - _record_time(settings, topic, row.partition, at(row.committed or 0, row.high))
        for row in describe_topics(settings, [topic], group)
    }


def right(settings, topic, group):
    return _ages(settings, topic, group, lambda committed, end: committed)


def test_lag_check_names_each_mistake(settings, capsys):
    def check(answer):
        exercises.check_lag_in_seconds(settings, answer)

    def says(text: str, answer) -> None:
        with pytest.raises(ExerciseFailed) as feedback:
            check(answer)
        assert text in str(feedback.value), str(feedback.value)
        assert len(str(feedback.value)) > 30

    says("without calling it", {0: 1.0, 1: 1.0, 2: 0.0})
    says("records waiting", lambda s, t, g: {r.partition: float(r.lag or 0) for r in describe_topics(s, [t], g)})
    says("raised KeyError", lambda s, t, g: {}["boom"])
    says("should return a dict", lambda s, t, g: list(right(s, t, g).values()))
    says("has keys", lambda s, t, g: {str(p): v for p, v in right(s, t, g).items()})
    says("Negative seconds", lambda s, t, g: {p: -v for p, v in right(s, t, g).items()})
    says("milliseconds", lambda s, t, g: {p: v * 1000 for p, v in right(s, t, g).items()})
    # Reading "the record at the committed offset" even where nothing waits: the last finished one.
    says("nothing waiting", lambda s, t, g: _ages(s, t, g, lambda committed, end: min(committed, end - 1), False))
    says("*before* the committed offset", lambda s, t, g: right(s, t, g) | {0: _ages(s, t, g, lambda c, e: c - 1)[0]})
    says("newest record", lambda s, t, g: right(s, t, g) | {0: _ages(s, t, g, lambda c, e: e - 1)[0]})
    says("written", lambda s, t, g: right(s, t, g) | {1: 0.5})
    exercises.check_lag_in_seconds(settings, right)
    assert "✅" in capsys.readouterr().out
