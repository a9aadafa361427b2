"""Checks for notebook 06 (real time, end to end): your own labels through the pipeline, and results replayed from a point in time."""

from __future__ import annotations

from ..admin import read_topic
from ..config import Settings
from ._feedback import require, solved


def check_own_labels(lab: object, request_ids: object, labels: object) -> None:
    """The learner sent at least three photos with their own candidate labels and has every result."""
    require(isinstance(labels, (list, tuple)) and len([x for x in labels if isinstance(x, str)]) >= 2,
            "Set `my_labels` to a list of at least two labels of your own (strings), e.g. ['a dog', 'a cat'].")
    require(isinstance(request_ids, list) and len(request_ids) >= 3,
            f"`request_ids` holds {len(request_ids) if isinstance(request_ids, list) else 'no list of'} id(s); "
            "submit at least three photos (lab.submit returns each request id) and keep the ids in the list.")
    unknown = [r for r in request_ids if r not in lab.sent]  # type: ignore[attr-defined]
    require(not unknown, f"{unknown[:2]} were not sent by this LabClient; use the ids lab.submit returned.")
    waiting = [r for r in request_ids if lab.results.get(r) is None]  # type: ignore[attr-defined]
    require(not waiting, f"{len(waiting)} result(s) have not arrived yet. Results come back asynchronously: "
                         "call lab.wait(request_id) for each id before you read them.")
    wanted = {" ".join(x.split()) for x in labels if isinstance(x, str) and x.strip()}
    for request_id in request_ids:
        result = lab.results.get(request_id)  # type: ignore[attr-defined]
        require(result.status == "ok", f"Request {request_id} failed: {result.error}")
        got = {s.label for s in result.labels}
        require(got <= wanted,
                f"Request {request_id} was scored against {sorted(got)[:4]}…, not your labels. Pass "
                "labels=my_labels to lab.submit, so they travel with the request (a Kafka header).")
    solved(f"{len(request_ids)} photos scored against your {len(wanted)} labels — the processor embedded "
           "your labels once and cached them for the rest.")


def check_replayed_window(settings: Settings, topic: str, since_ms: int, until_ms: int, starts: object,
                          replayed: object) -> None:
    """The learner started each partition of ``topic`` at the broker's offset for ``since_ms`` and read on to ``until_ms``."""
    from confluent_kafka import TopicPartition

    from ..clients import make_consumer

    require(isinstance(starts, list) and all(hasattr(tp, "offset") for tp in starts),
            "`starts` must be the list of TopicPartitions you assigned (the answer of offsets_for_times).")
    asker = make_consumer(settings)
    try:
        partitions = sorted(asker.list_topics(topic, timeout=settings.connect_timeout_s).topics[topic].partitions)
        answer = asker.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions],
                                         timeout=settings.connect_timeout_s)
    finally:
        asker.close()
    first = {tp.partition: tp.offset for tp in answer if tp.offset >= 0}
    yours = {tp.partition: tp.offset for tp in starts if tp.offset >= 0}
    require(yours == first,
            f"You started at {dict(sorted(yours.items()))} (partition: offset), but the first records at or after "
            f"since_ms are at {dict(sorted(first.items()))}. Ask the broker: "
            "consumer.offsets_for_times([TopicPartition(topic, p, since_ms) for p in partitions]) returns, per "
            "partition, the first offset whose timestamp is ≥ since_ms (-1 where there is none); assign() those.")
    require(isinstance(replayed, list), "`replayed` must be the list of messages your consumer read.")
    window = {(m.partition(), m.offset()) for m in read_topic(settings, topic, idle_s=0.5)
              if m.offset() >= first.get(m.partition(), 1 << 62) and m.timestamp()[1] <= until_ms}
    got = {(m.partition(), m.offset()) for m in replayed
           if hasattr(m, "offset") and not m.error() and m.topic() == topic}
    missing = sorted(window - got)
    require(not missing, f"You missed {len(missing)} of the {len(window)} records from your start offsets to "
                         f"until_ms (e.g. {missing[:3]}); keep polling until nothing new arrives.")
    require(got <= window, f"{len(got - window)} of your records are newer than until_ms; skip those.")
    solved(f"{len(window)} results replayed, each partition from the first offset at or after your timestamp — "
           "how a web replica catches up after a restart.")
