"""Check for notebook 19 (troubleshooting): the learner's diagnose() must name what is wrong.

It is tried in four situations staged on a real broker.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from confluent_kafka import TopicPartition

from .._net import free_port, port_is_open
from ..config import Settings
from ..kafka.admin import describe_topics
from ..kafka.client_config import make_admin, make_consumer
from ..kafka.offsets import end_offsets
from ._feedback import ExerciseFailed, require, solved
from ._setup import fresh_topic

#: What diagnose() may answer, most basic first: nothing else can be asked of a broker that does not answer.
DIAGNOSES = ("broker unreachable", "topic missing", "not consuming", "ok")


@dataclass(frozen=True)
class Situation:
    """A staged pipeline state: settings pointing at it, the true diagnosis, and how a diagnosis can tell."""

    what: str
    settings: Settings
    truth: str
    tell: str


def _unreachable(settings: Settings) -> Situation:
    port = free_port()
    require(not port_is_open("127.0.0.1", port), f"Port {port} was taken while staging; run the check again.")
    bootstrap = f"127.0.0.1:{port}"
    return Situation(
        f"bootstrap {bootstrap}",
        settings.model_copy(update={"bootstrap": bootstrap, "connect_timeout_s": 1.0}),
        "broker unreachable",
        f"nothing listens at {bootstrap}, so labkit.wait_for_broker(settings) raises labkit.BrokerUnavailable. "
        "Ask that first: a broker that does not answer cannot say whether a topic exists.",
    )


def _missing(settings: Settings) -> Situation:
    topic = f"troubleshoot-missing-{uuid.uuid4().hex[:4]}"
    topics = make_admin(settings).list_topics(timeout=settings.connect_timeout_s).topics
    require(topic not in topics, f"Topic {topic} exists already; run the check again.")
    return Situation(
        f"requests topic {topic!r}",
        settings.model_copy(update={"requests_topic": topic}),
        "topic missing",
        f"the broker answers, but {topic} does not exist: labkit.describe_topics(settings, "
        "[settings.requests_topic]) raises labkit.TopicMissing (so does labkit.kafka.admin.require_topics). "
        "Catch it — and don't produce to find out: a broker that auto-creates topics would create it.",
    )


def _not_consuming(settings: Settings) -> Situation:
    topic = fresh_topic(settings, "troubleshoot-stuck", partitions=2, records=3, key="request")
    staged = settings.model_copy(update={"requests_topic": topic, "group_prefix": topic})
    group = staged.group_id  # nobody ever joins it
    rows = describe_topics(settings, [topic], group)
    require(any(r.high > r.low and r.committed is None for r in rows), f"Staging {topic} failed; run the check again.")
    return Situation(
        f"requests topic {topic!r}, group {group!r}",
        staged,
        "not consuming",
        f"3 records wait in {topic} and group {group} has committed none of them: in labkit.describe_topics' "
        "rows, .high (the end) is beyond .committed — and .committed is None where the group never committed "
        "(count from .low then, not as 'no lag').",
    )


def _ok(settings: Settings) -> Situation:
    # Four partitions for three records: at least one is empty and never committed, as on a real, idle pipeline.
    topic = fresh_topic(settings, "troubleshoot-ok", partitions=4, records=3, key="request")
    staged = settings.model_copy(update={"requests_topic": topic, "group_prefix": topic})
    group = staged.group_id
    consumer = make_consumer(settings, group, client_id="labkit-exercise-setup")
    try:
        ends = end_offsets(consumer, [topic], settings.connect_timeout_s)  # the partitions that hold records
        done = [TopicPartition(t, p, end) for (t, p), end in ends.items()]
        consumer.commit(offsets=done, asynchronous=False)  # the group has finished everything
    finally:
        consumer.close()
    rows = describe_topics(settings, [topic], group)
    require(
        all(r.lag in (0, None) and (r.committed is not None or r.high == r.low) for r in rows),
        f"Staging {topic} failed; run the check again.",
    )
    return Situation(
        f"requests topic {topic!r}, group {group!r}",
        staged,
        "ok",
        f"group {group} has committed every record of {topic}: each row's .committed equals its .high, and a "
        "partition with no records (.high == .low) waits for nothing, committed or not.",
    )


def stage_situations(settings: Settings) -> list[Situation]:
    """The four situations, freshly staged on ``settings``' broker (new topics and groups each time)."""
    return [stage(settings) for stage in (_unreachable, _missing, _not_consuming, _ok)]


def check_diagnosis(settings: Settings, diagnose: Any) -> None:
    """Run ``diagnose(settings)`` on four staged situations, each answer checked against the broker."""
    require(
        callable(diagnose),
        "Define `diagnose(settings)` — a function that returns one of " + ", ".join(map(repr, DIAGNOSES)) + ".",
    )
    wrong = []
    for situation in stage_situations(settings):
        try:
            answer = diagnose(situation.settings)
        except Exception as exc:  # the learner's code: any exception is feedback, not a crash of the check
            raise ExerciseFailed(
                f"For {situation.what}, diagnose() raised {type(exc).__name__}: {str(exc)[:200]}. "
                f"Catch it and return {situation.truth!r} instead: {situation.tell}"
            ) from None
        require(
            answer in DIAGNOSES,
            f"For {situation.what}, diagnose() returned {answer!r}; return one of "
            + ", ".join(map(repr, DIAGNOSES))
            + ".",
        )
        if answer != situation.truth:
            wrong.append(f"for {situation.what} it said {answer!r}, the truth is {situation.truth!r}: {situation.tell}")
    if wrong:
        raise ExerciseFailed(f"diagnose() was wrong in {len(wrong)} of 4 staged situations. First, {wrong[0]}")
    solved(
        "diagnose() named all four staged situations right: unreachable broker, missing topic, stalled group, healthy."
    )
