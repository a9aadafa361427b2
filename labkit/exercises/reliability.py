"""Checks for notebook 11 (reliability).

Nothing committed that was not processed, and the dead letter's reason and origin.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..kafka.admin import describe_topics, read_topic
from ..records.wire import record_position
from ._feedback import require, solved


def check_at_least_once(settings: Settings, topic: str, group_id: str, processed: Any) -> None:
    """After a crash, the group's committed offsets cover exactly the records the learner processed.

    None is lost, and the work done is kept (not redone after a restart).
    """
    require(
        isinstance(processed, list) and processed,
        "`processed` should list the keys of the payments your loop processed before the crash.",
    )
    committed = {r.partition: r.committed or 0 for r in describe_topics(settings, [topic], group_id=group_id)}
    records = read_topic(settings, topic, idle_s=0.5)
    done = {
        (m.key() or b"").decode()
        for m in records
        if record_position(m).offset < committed.get(record_position(m).partition, 0)
    }
    unknown = set(processed) - {(m.key() or b"").decode() for m in records}
    require(
        not unknown, f"{sorted(unknown)[:3]} are not keys of {topic!r}; list the keys of the records you processed."
    )
    lost = sorted(done - set(processed))
    require(
        not lost,
        f"{len(lost)} payment(s) are lost: {lost[:4]}. Group {group_id!r} has committed offsets past them, yet "
        "they were never processed, so a restarted consumer skips them. With enable.auto.commit=True and "
        "librdkafka's automatic offset store, the background timer commits what poll()/consume() *handed "
        "out*, processed or not.",
    )
    redo = sorted(set(processed) - done)
    require(
        not redo,
        f"Nothing is lost, but {len(redo)} processed payment(s) ({redo[:3]}) were never committed, so a "
        "restart processes them again. Commit each one after processing it "
        "(consumer.commit(message=message, asynchronous=False)), or store its offset "
        "(consumer.store_offsets(message)) and let the auto-commit timer commit what you stored.",
    )
    solved(
        f"{len(processed)} processed and committed, {len(records) - len(processed)} still waiting for the next "
        "member of the group: at-least-once."
    )


def check_dead_letter_reason(settings: Settings, request_id: str, reason: Any, origin: Any) -> None:
    """The learner found ``request_id``'s dead letter: why it failed and where the original record is."""
    from ..records.dead_letters import H_DLQ_ERROR
    from ..records.wire import header_dict, record_headers

    letters = [
        m for m in read_topic(settings, settings.dead_letter_topic, idle_s=0.5) if m.key() == request_id.encode()
    ]
    require(letters, f"No dead letter for {request_id} yet: did the processor receive the bad record?")
    headers = header_dict(record_headers(letters[-1]))
    require(
        isinstance(reason, str) and reason == headers[H_DLQ_ERROR],
        f"`reason` should be the dead letter's {H_DLQ_ERROR!r} header, as text. Read the topic with "
        "labkit.read_topic(settings, settings.dead_letter_topic), find the record whose key is the "
        "request id, and decode its headers (labkit.records.wire.header_dict).",
    )
    expected = (headers["labkit-dlq-topic"], int(headers["labkit-dlq-partition"]), int(headers["labkit-dlq-offset"]))
    require(
        isinstance(origin, tuple) and tuple(origin) == expected,
        f"`origin` is {origin!r}; it should be (topic, partition, offset) of the original record, from the "
        "dead letter's labkit-dlq-topic, -partition and -offset headers (partition and offset as ints) — not "
        "the dead letter's own partition and offset.",
    )
    solved(
        f"the record at {expected[0]}[{expected[1]}]@{expected[2]} failed with: {reason[:80].rstrip('.')}. Fix the "
        "producer, then replay it: produce the dead letter's key, value and headers to the requests topic again."
    )
