"""Every exercise check, fed the plausible wrong answers: each must fail with the feedback that names the mistake.

The learner path (``test_learner_path.py``) proves each template fails and each solution passes
in a real notebook; these tests prove the grading branches in between, against the session's
real broker (no Kafka mocks): a wrong partition, a producer without idempotence, softmax
without ``logit_scale``, a dead letter's own offset given as its origin, and so on.
"""

from __future__ import annotations

import zlib

import numpy as np
import pytest
from confluent_kafka import OFFSET_BEGINNING, TopicPartition

from labkit import exercises
from labkit.exercises import ExerciseFailed
from labkit.kafka.admin import create_topics, read_topic
from labkit.kafka.client_config import make_consumer, make_producer
from labkit.kafka.partitioning import java_partition


def fails(says: str, check, *args) -> None:
    """``check(*args)`` must fail, and its feedback must contain ``says``."""
    with pytest.raises(ExerciseFailed) as feedback:
        check(*args)
    assert says in str(feedback.value), str(feedback.value)
    assert feedback.value._render_traceback_()[0].startswith("❌")


def passes(check, *args, capsys) -> None:
    check(*args)
    assert "✅" in capsys.readouterr().out


def commit(settings, group: str, topic: str, offsets: dict[int, int]) -> None:
    """Commit ``{partition: next offset}`` for ``group`` without joining it (as a tool would)."""
    consumer = make_consumer(settings, group)
    try:
        consumer.commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
    finally:
        consumer.close()


def test_topic_and_partition_checks(settings, capsys):
    fails("There is no topic", exercises.check_topic_created, settings, "never-created-topic", 4)
    topic = exercises.fresh_topic(settings, "three")
    fails("has 3 partition(s)", exercises.check_topic_created, settings, topic, 4)
    passes(exercises.check_topic_created, settings, topic, 3, capsys=capsys)

    four = exercises.fresh_topic(settings, "keys", partitions=4)
    right = zlib.crc32(b"cat") % 4
    java = java_partition(b"cat", 4)
    assert java != right  # the branch below is reachable for this key
    fails("an int", exercises.check_partition_prediction, settings, four, "cat", ...)
    fails("Java", exercises.check_partition_prediction, settings, four, "cat", java)
    wrong = next(p for p in range(4) if p not in (right, java))
    fails(f"went to partition {right}", exercises.check_partition_prediction, settings, four, "cat", wrong)
    passes(exercises.check_partition_prediction, settings, four, "cat", right, capsys=capsys)


def test_delivery_report_check(settings, capsys):
    topic = exercises.fresh_topic(settings, "orders-02")
    plain = {"bootstrap.servers": settings.bootstrap_servers}
    idempotent = {**plain, "enable.idempotence": True}
    fails("enable.idempotence", exercises.check_delivery_reports, settings, topic, plain, [], 5)
    fails("acks", exercises.check_delivery_reports, settings, topic, {**idempotent, "acks": 1}, [], 5)
    fails("is empty", exercises.check_delivery_reports, settings, topic, idempotent, [], 5)
    exercises.send_records(settings, topic, 5, key="order")
    fails("`delivered` is empty", exercises.check_delivery_reports, settings, topic, idempotent, [], 5)
    stored = [(m.partition(), m.offset()) for m in read_topic(settings, topic, idle_s=0.5)]
    off_by_one = [(p, o + 1) for p, o in stored]
    fails("Your delivery reports say", exercises.check_delivery_reports, settings, topic, idempotent, off_by_one, 5)
    fails("holds 5 record(s)", exercises.check_delivery_reports, settings, topic, idempotent, stored, 6)
    passes(exercises.check_delivery_reports, settings, topic, idempotent, stored, 5, capsys=capsys)


def test_records_sent_check(settings, capsys):
    topic = exercises.fresh_topic(settings, "clicks")
    keys = [f"user-{i}" for i in range(3)]
    fails("is empty", exercises.check_records_sent, settings, topic, 3, "source", keys)
    producer = make_producer(settings)
    for key in keys:
        producer.produce(topic, key=key.encode(), value=b"click")
    producer.flush()
    fails("no 'source' header", exercises.check_records_sent, settings, topic, 3, "source", keys)
    fails("has 3 record(s), expected 10", exercises.check_records_sent, settings, topic, 10, None, None)
    fails("The keys are", exercises.check_records_sent, settings, topic, 3, None, ["a", "b", "c"])
    passes(exercises.check_records_sent, settings, topic, 3, None, keys, capsys=capsys)


def test_consumer_checks(settings, capsys):
    topic = exercises.fresh_topic(settings, "orders", records=6, key="order")
    other = exercises.fresh_topic(settings, "elsewhere", records=6, key="order")
    fails("received 0", exercises.check_consumed_everything, settings, topic, [])
    everything = read_topic(settings, topic, idle_s=0.5)
    fails("not from", exercises.check_consumed_everything, settings, topic, read_topic(settings, other, idle_s=0.5))
    fails("You missed 2", exercises.check_consumed_everything, settings, topic, everything[:4])
    passes(exercises.check_consumed_everything, settings, topic, everything, capsys=capsys)

    group = f"{topic}-workers"
    fails("committed nothing", exercises.check_group_caught_up, settings, topic, group)
    ends = {}
    for message in everything:
        ends[message.partition()] = max(ends.get(message.partition(), 0), message.offset() + 1)
    first = min(ends)
    commit(settings, group, topic, {first: ends[first]})  # one partition done, the others not
    if len(ends) > 1:
        fails("still lags", exercises.check_group_caught_up, settings, topic, group)
    commit(settings, group, topic, ends)
    passes(exercises.check_group_caught_up, settings, topic, group, capsys=capsys)


def test_partitions_shared_check(settings, capsys):
    topic = exercises.fresh_topic(settings, "exercise-04", records=12, key="order")
    by_partition: dict[int, list] = {}
    for message in read_topic(settings, topic, idle_s=0.5):
        by_partition.setdefault(message.partition(), []).append(message)
    assert len(by_partition) >= 2, "12 keyed records should span at least two partitions"
    first, *rest = sorted(by_partition)
    a_messages = by_partition[first]
    b_messages = [m for p in rest for m in by_partition[p]]
    closed, still_open = make_consumer(settings), make_consumer(settings)
    closed.close()
    try:
        fails(
            "Member a got 0",
            exercises.check_partitions_shared,
            settings,
            topic,
            {"a": [], "b": b_messages},
            closed,
            closed,
        )
        fails(
            "Both members read partition",
            exercises.check_partitions_shared,
            settings,
            topic,
            {"a": a_messages, "b": a_messages + b_messages},
            closed,
            closed,
        )
        fails(
            "read by nobody",
            exercises.check_partitions_shared,
            settings,
            topic,
            {"a": a_messages, "b": b_messages[:1]},
            closed,
            closed,
        )
        fails(
            "Consumer b is still open",
            exercises.check_partitions_shared,
            settings,
            topic,
            {"a": a_messages, "b": b_messages},
            closed,
            still_open,
        )
        fails('keys "a" and "b"', exercises.check_partitions_shared, settings, topic, [a_messages], closed, closed)
        passes(
            exercises.check_partitions_shared,
            settings,
            topic,
            {"a": a_messages, "b": b_messages},
            closed,
            closed,
            capsys=capsys,
        )
    finally:
        still_open.close()


def test_zero_shot_checks(capsys):
    rng = np.random.default_rng(0)
    unit = lambda v: v / np.linalg.norm(v, axis=-1, keepdims=True)  # noqa: E731
    image, labels = unit(rng.normal(size=8)), unit(rng.normal(size=(3, 8)))
    cosines = labels @ image
    softmax = lambda x: np.exp(x - x.max()) / np.exp(x - x.max()).sum()  # noqa: E731
    fails("replace the", exercises.check_zero_shot_probabilities, ..., image, labels, 100.0)
    fails("one per label", exercises.check_zero_shot_probabilities, softmax(cosines)[:2], image, labels, 100.0)
    fails("sum to", exercises.check_zero_shot_probabilities, np.exp(100 * cosines), image, labels, 100.0)
    fails("logit_scale", exercises.check_zero_shot_probabilities, softmax(cosines), image, labels, 100.0)
    passes(exercises.check_zero_shot_probabilities, softmax(100 * cosines), image, labels, 100.0, capsys=capsys)

    fails("Define a function", exercises.check_unknown_threshold, ...)
    fails(
        "expected 'unknown'",
        exercises.check_unknown_threshold,
        lambda cosines, threshold: max(cosines, key=cosines.get),
    )

    def predict(cosines, threshold, strict=False):
        best = max(cosines, key=cosines.get)
        return best if cosines[best] > threshold or (cosines[best] == threshold and not strict) else "unknown"

    fails("exactly at the threshold", exercises.check_unknown_threshold, lambda c, t: predict(c, t, strict=True))
    fails("raised KeyError", exercises.check_unknown_threshold, lambda cosines, threshold: cosines["dog"] and {}["x"])
    passes(exercises.check_unknown_threshold, predict, capsys=capsys)


def test_own_labels_check_reads_the_result_from_the_results_topic(settings, capsys):
    from labkit.records.wire import LabelScore, ScoreResult, new_request_id

    create_topics(settings)
    fails("at least two labels", exercises.check_own_labels, settings, "r1", ["a dog"])
    fails("Set `request_id`", exercises.check_own_labels, settings, ..., ["a dog", "a cat"])
    producer = make_producer(settings)

    def answer(request_id, labels, status="ok", error=None):
        result = ScoreResult(
            request_id=request_id,
            status=status,
            error=error,
            model="test",
            processor="test",
            labels=[LabelScore(label=label, score=1 / len(labels)) for label in labels],
        )
        producer.produce(settings.results_topic, key=request_id.encode(), value=result.to_json())
        producer.flush()

    default, failed, mine = new_request_id(), new_request_id(), new_request_id()
    answer(default, ["kitten", "dog"])
    answer(failed, [], status="error", error="request has schema None.")
    # A request that names no task is answered by OCR too, maybe first: the check waits for CLIP's.
    ocr = ScoreResult(request_id=mine, status="ok", task="ocr", answer={"text": "", "lines": []})
    producer.produce(settings.results_topic, key=mine.encode(), value=ocr.to_json())
    answer(mine, ["a dog", "a cat"])
    fails("the processor's default labels", exercises.check_own_labels, settings, default, ["a dog", "a cat"])
    fails("answered with an error", exercises.check_own_labels, settings, failed, ["a dog", "a cat"])
    passes(exercises.check_own_labels, settings, mine, ["a dog", "a cat", "a pizza"], capsys=capsys)


def test_replay_check(settings, capsys):
    import time

    topic = exercises.fresh_topic(settings, "results", records=4, key="early")
    time.sleep(0.05)
    since_ms = int(time.time() * 1000)
    exercises.send_records(settings, topic, 6, key="late")
    until_ms = int(time.time() * 1000)
    time.sleep(0.05)
    exercises.send_records(settings, topic, 2, key="later")
    reader = make_consumer(settings)
    try:
        starts = [
            tp
            for tp in reader.offsets_for_times([TopicPartition(topic, p, since_ms) for p in range(3)], timeout=10)
            if tp.offset >= 0
        ]
    finally:
        reader.close()
    everything = read_topic(settings, topic, idle_s=0.5)
    window = [m for m in everything if m.key().startswith(b"late-")]
    beginning = [TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(3)]
    fails(
        "You started at {}", exercises.check_replayed_window, settings, topic, since_ms, until_ms, beginning, everything
    )
    fails("You missed", exercises.check_replayed_window, settings, topic, since_ms, until_ms, starts, window[:-1])
    fails(
        "newer than until_ms",
        exercises.check_replayed_window,
        settings,
        topic,
        since_ms,
        until_ms,
        starts,
        [m for m in everything if not m.key().startswith(b"early-")],
    )
    passes(exercises.check_replayed_window, settings, topic, since_ms, until_ms, starts, window, capsys=capsys)


def test_at_least_once_check(settings, capsys):
    topic = exercises.fresh_topic(settings, "payments", records=8, key="payment")
    records = read_topic(settings, topic, idle_s=0.5)
    done = records[:3]
    processed = [m.key().decode() for m in done]
    fails("should list the keys", exercises.check_at_least_once, settings, topic, f"{topic}-a", [])
    fails("never committed", exercises.check_at_least_once, settings, topic, f"{topic}-a", processed)
    fails("are not keys", exercises.check_at_least_once, settings, topic, f"{topic}-a", ["payment-99"])
    ends: dict[int, int] = {}
    for message in records:  # what auto-commit does: everything handed out
        ends[message.partition()] = message.offset() + 1
    commit(settings, f"{topic}-auto", topic, ends)
    fails("are lost", exercises.check_at_least_once, settings, topic, f"{topic}-auto", processed)
    commit(settings, f"{topic}-good", topic, {m.partition(): m.offset() + 1 for m in done})
    passes(exercises.check_at_least_once, settings, topic, f"{topic}-good", processed, capsys=capsys)


def test_dead_letter_check(settings, capsys):
    from labkit.records.wire import header_dict

    create_topics(settings)
    headers = {
        "labkit-dlq-error": "not an image",
        "labkit-dlq-topic": settings.requests_topic,
        "labkit-dlq-partition": "2",
        "labkit-dlq-offset": "7",
        "labkit-dlq-failed-at": "0",
    }
    producer = make_producer(settings)
    producer.produce(
        settings.dead_letter_topic, key=b"bad-1", value=b"x", headers={k: v.encode() for k, v in headers.items()}
    )
    producer.flush()
    letter = read_topic(settings, settings.dead_letter_topic, idle_s=0.5)[-1]
    assert header_dict(letter.headers())["labkit-dlq-error"] == "not an image"
    fails("No dead letter", exercises.check_dead_letter_reason, settings, "bad-0", "", ())
    fails("labkit-dlq-error", exercises.check_dead_letter_reason, settings, "bad-1", b"not an image", ())
    own = (settings.dead_letter_topic, letter.partition(), letter.offset())
    fails("not the dead letter's own", exercises.check_dead_letter_reason, settings, "bad-1", "not an image", own)
    passes(
        exercises.check_dead_letter_reason,
        settings,
        "bad-1",
        "not an image",
        (settings.requests_topic, 2, 7),
        capsys=capsys,
    )


def test_reachable_broker_check(settings, capsys):
    from labkit._net import free_port
    from labkit.kafka.engines import make_broker

    fails("the broker you started", exercises.check_reachable_broker, settings, "127.0.0.1")
    with make_broker(free_port(), advertised_host="kafka-in-docker") as unreachable:
        fails(
            "advertise one that a program on this machine can reach",
            exercises.check_reachable_broker,
            settings,
            unreachable,
        )
    with make_broker(free_port(), advertised_host="127.0.0.1") as reachable:
        passes(exercises.check_reachable_broker, settings, reachable, capsys=capsys)


def test_results_as_they_arrive_check(settings, web, photos, capsys):
    import asyncio
    import json

    import httpx
    import websockets

    settings = settings.model_copy(update={"web_port": web.port})
    fails("holds 0", exercises.check_results_as_they_arrive, settings, [])
    polled = []
    for photo in photos[:3]:
        request_id = httpx.post(f"{web.url}/api/images", files={"file": photo.open("rb")}).json()["request_id"]
        polled.append(httpx.get(f"{web.url}/api/images/{request_id}").json())
    fails("not messages pushed on the socket", exercises.check_results_as_they_arrive, settings, polled)

    async def pushed() -> list[dict]:
        async with websockets.connect(web.url.replace("http", "ws", 1) + "/ws") as socket:
            for entry in polled:
                await socket.send(json.dumps({"type": "subscribe", "request_id": entry["request_id"]}))
            return [json.loads(await socket.recv()) for _ in polled]

    arrived = asyncio.run(pushed())
    fails("more than once", exercises.check_results_as_they_arrive, settings, [arrived[0]] * 3)
    # Re-sorted after the fact (here into upload order, for results produced 2 s apart): not the arrival order.
    spaced = [dict(m, produced_at_ms=arrived[0]["produced_at_ms"] + 2000 * i) for i, m in enumerate(arrived)]
    fails("not in the order they arrived", exercises.check_results_as_they_arrive, settings, spaced[::-1])
    passes(exercises.check_results_as_they_arrive, settings, arrived, capsys=capsys)


def test_idempotent_upsert_check(embedded_history, capsys):
    def plain_insert(connection, table, request_id, label):
        connection.execute(f"INSERT INTO {table} (request_id, label) VALUES (%s, %s)", (request_id, label))

    def last_wins(connection, table, request_id, label):
        connection.execute(
            f"INSERT INTO {table} (request_id, label) VALUES (%s, %s) "
            "ON CONFLICT (request_id) DO UPDATE SET label = EXCLUDED.label",
            (request_id, label),
        )

    def first_stays(connection, table, request_id, label):
        connection.execute(
            f"INSERT INTO {table} (request_id, label) VALUES (%s, %s) ON CONFLICT (request_id) DO NOTHING",
            (request_id, label),
        )

    fails("should be a function", exercises.check_idempotent_upsert, embedded_history, None)
    fails("must not fail: INSERT … ON CONFLICT", exercises.check_idempotent_upsert, embedded_history, plain_insert)
    fails("the last delivery won", exercises.check_idempotent_upsert, embedded_history, last_wins)
    fails("The table is empty", exercises.check_idempotent_upsert, embedded_history, lambda *args: None)
    passes(exercises.check_idempotent_upsert, embedded_history, first_stays, capsys=capsys)
