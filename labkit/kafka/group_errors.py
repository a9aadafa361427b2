"""Answers from a group coordinator that no retry can fix, raised as errors that say what to change.

librdkafka hands a consumer these as error events from ``poll()``/``consume()`` and then keeps
asking, forever: a member whose ``session.timeout.ms`` the broker refuses would wait without a
word. Every consumer-group loop in labkit (processor, sink, re-embedding) passes the errors it
meets to :func:`raise_if_refused`.
"""

from __future__ import annotations

from confluent_kafka import KafkaError, Message

from ..errors import LabkitError

#: Error code → what to do about it.
REFUSALS = {
    KafkaError.INVALID_SESSION_TIMEOUT: (
        "the broker refuses this consumer's session.timeout.ms ({session_ms} ms): Apache Kafka accepts "
        "group.min.session.timeout.ms (6000 by default) to group.max.session.timeout.ms (30 min). Set "
        "LABKIT_SESSION_TIMEOUT_MS (--session-timeout-ms) to 6000 or more."
    ),
    KafkaError.GROUP_AUTHORIZATION_FAILED: (
        "the broker does not let this client join consumer group {group}: grant it READ on the group "
        "(kafka-acls --add --allow-principal ... --operation Read --group {group}) or use another group prefix."
    ),
}


def raise_if_refused(messages: list[Message], group: str, session_ms: int) -> list[Message]:
    """The records in ``messages`` (no errors); :class:`LabkitError` if the coordinator refused the member."""
    records = []
    for message in messages:
        error = message.error()
        if error is None:
            records.append(message)
        elif (advice := REFUSALS.get(error.code())) is not None:
            raise LabkitError(f"Consumer group {group}: {advice.format(group=group, session_ms=session_ms)}")
    return records
