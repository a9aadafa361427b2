"""Checks for notebook 10 (real time, end to end).

Your own labels through the pipeline, and results replayed from a point in time.
"""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import OFFSET_END

from ..config import Settings
from ..kafka.admin import read_topic
from ..records.serde import RESULTS
from ..records.wire import ScoreResult, now_ms, record_headers, record_position
from ..tasks import ClipAnswer, ClipTask
from ._feedback import require, solved


def _result_for(settings: Settings, request_id: str, task: str = "clip", timeout: float = 60) -> ScoreResult | None:
    """``task``'s result for ``request_id`` in the results topic's last 10 minutes, once it is there.

    A request that names no task is answered by every task (CLIP and OCR, each in its own group), in
    whichever order they finish: the key alone does not say whose result a record is.
    """
    from confluent_kafka import TopicPartition

    from ..kafka.client_config import make_consumer

    topic = settings.results_topic
    reader = make_consumer(settings)
    try:
        partitions = sorted(reader.list_topics(topic, timeout=settings.connect_timeout_s).topics[topic].partitions)
        since = [TopicPartition(topic, p, now_ms() - 600_000) for p in partitions]
        reader.assign(
            [tp for tp in reader.offsets_for_times(since, timeout=settings.connect_timeout_s) if tp.offset >= 0]
            or [TopicPartition(topic, p, OFFSET_END) for p in partitions]
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            message = reader.poll(0.2)
            if message is not None and not message.error() and message.key() == request_id.encode():
                result = RESULTS.deserialize(message.value(), record_headers(message))
                if result.task == task:
                    return result
        return None
    finally:
        reader.close()


def check_own_labels(settings: Settings, request_id: Any, labels: Any) -> None:
    """The learner produced an image request by hand whose result was scored against their own labels."""
    require(
        isinstance(labels, (list, tuple)) and len({x for x in labels if isinstance(x, str) and x.strip()}) >= 2,
        "Set `my_labels` to a list of at least two labels of your own (strings), e.g. ['a dog', 'a cat'].",
    )
    require(
        isinstance(request_id, str) and request_id,
        "Set `request_id` to the key of the record you produced (labkit.records.wire.new_request_id()).",
    )
    result = _result_for(settings, request_id)
    require(
        result is not None,
        f"No CLIP result for {request_id} on {settings.results_topic!r} within 60 s. Did you flush() the producer, "
        "key the record with request_id.encode(), and send it to settings.requests_topic? Is a processor running?",
    )
    assert result is not None  # require() raised otherwise
    require(
        result.status == "ok",
        f"The processor answered with an error: {result.error} It parses the record as the wire format says: "
        "headers content-type (image/…), labkit-schema '1.0', and labkit-labels as a JSON list of strings.",
    )
    wanted = {" ".join(x.split()) for x in labels if isinstance(x, str) and x.strip()}
    answer = ClipTask.read(result)  # CLIP's answer, in its own model
    scores = answer.labels if isinstance(answer, ClipAnswer) else []
    got = {score.label for score in scores}
    require(
        got <= wanted,
        f"Request {request_id} was scored against {sorted(got)[:4]}…, the processor's default labels, not yours. "
        "Your labels travel in a header: headers['labkit-labels'] = json.dumps(my_labels).encode().",
    )
    solved(
        f"scored against your {len(wanted)} labels; top: {scores[0].label} ({scores[0].score:.0%}). "
        "The processor embedded your labels once and caches them for the next request that asks the same question."
    )


def check_replayed_window(
    settings: Settings, topic: str, since_ms: int, until_ms: int, starts: Any, replayed: Any
) -> None:
    """The learner read ``topic`` from ``since_ms`` to ``until_ms``.

    Each partition started at the broker's offset for ``since_ms``, and was read on to ``until_ms``.
    """
    from confluent_kafka import TopicPartition

    from ..kafka.client_config import make_consumer

    require(
        isinstance(starts, list) and all(hasattr(tp, "offset") for tp in starts),
        "`starts` must be the list of TopicPartitions you assigned (the answer of offsets_for_times).",
    )
    asker = make_consumer(settings)
    try:
        partitions = sorted(asker.list_topics(topic, timeout=settings.connect_timeout_s).topics[topic].partitions)
        answer = asker.offsets_for_times(
            [TopicPartition(topic, p, since_ms) for p in partitions], timeout=settings.connect_timeout_s
        )
    finally:
        asker.close()
    first = {tp.partition: tp.offset for tp in answer if tp.offset >= 0}
    yours = {tp.partition: tp.offset for tp in starts if tp.offset >= 0}
    require(
        yours == first,
        f"You started at {dict(sorted(yours.items()))} (partition: offset), but the first records at or after "
        f"since_ms are at {dict(sorted(first.items()))}. Ask the broker: "
        "consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions]) returns, per "
        "partition, the first offset whose timestamp is ≥ since_ms (-1 where there is none); assign() those.",
    )
    require(isinstance(replayed, list), "`replayed` must be the list of messages your consumer read.")
    window = {
        (m.partition(), m.offset())
        for m in read_topic(settings, topic, idle_s=0.5)
        if record_position(m).offset >= first.get(record_position(m).partition, 1 << 62)
        and m.timestamp()[1] <= until_ms
    }
    got = {
        (m.partition(), m.offset()) for m in replayed if hasattr(m, "offset") and not m.error() and m.topic() == topic
    }
    missing = sorted(window - got)
    require(
        not missing,
        f"You missed {len(missing)} of the {len(window)} records from your start offsets to "
        f"until_ms (e.g. {missing[:3]}); keep polling until nothing new arrives.",
    )
    require(got <= window, f"{len(got - window)} of your records are newer than until_ms; skip those.")
    solved(
        f"{len(window)} results replayed, each partition from the first offset at or after your timestamp — "
        "how a web replica catches up after a restart."
    )
