"""Lesson 04's check (``check_rewind``), fed the plausible wrong ``rewind`` functions, against the session's broker."""

from __future__ import annotations

import pytest
from confluent_kafka import ConsumerGroupTopicPartitions, TopicPartition
from confluent_kafka.admin import OffsetSpec

from labkit import exercises
from labkit.exercises import ExerciseFailed
from labkit.kafka.client_config import make_admin


def _move(settings, group, topic, target, check_errors=True) -> None:
    """Commit ``target(start, end, n)`` for every partition of ``topic`` with the AdminClient (a learner's rewind)."""
    admin = make_admin(settings)
    partitions = [TopicPartition(topic, p) for p in admin.list_topics(topic, timeout=10).topics[topic].partitions]
    starts = admin.list_offsets({tp: OffsetSpec.earliest() for tp in partitions})
    ends = admin.list_offsets({tp: OffsetSpec.latest() for tp in partitions})
    offsets = [
        TopicPartition(topic, tp.partition, target(starts[tp].result().offset, ends[tp].result().offset))
        for tp in partitions
    ]
    answer = admin.alter_consumer_group_offsets([ConsumerGroupTopicPartitions(group, offsets)])[group].result()
    refused = [tp for tp in answer.topic_partitions if tp.error is not None]
    if check_errors and refused:
        raise RuntimeError(f"refused: {refused[0].error}")


def fails(settings, says: str, rewind) -> None:
    """The check, given ``rewind``, must fail with feedback that contains ``says``."""
    with pytest.raises(ExerciseFailed) as feedback:
        exercises.check_rewind(settings, rewind)
    assert says in str(feedback.value), str(feedback.value)


def test_check_rewind_names_each_mistake(settings, capsys):
    fails(settings, "should be a function", None)
    fails(settings, "still at the end of every partition", lambda settings, group, topic, n: None)
    fails(settings, "back at the start", lambda s, g, t, n: _move(s, g, t, lambda start, end: start))
    fails(
        settings,
        "never go before a partition's first offset",
        lambda s, g, t, n: _move(s, g, t, lambda start, end: end - n),
    )
    fails(
        settings, "returned as if it had worked", lambda s, g, t, n: _move(s, g, t, lambda a, b: max(b - n, a), False)
    )
    exercises.check_rewind(settings, lambda s, g, t, n: _move(s, g, t, lambda start, end: max(end - n, start)))
    assert "✅" in capsys.readouterr().out
