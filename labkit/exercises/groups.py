"""Check for notebook 05 (consumer groups): two members split a topic's records by partition.

The split is judged against the topic itself.
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..kafka.admin import read_topic
from ._feedback import require, solved


def _is_closed(consumer: Any) -> bool:
    try:
        consumer.assignment()
    except RuntimeError:  # confluent-kafka: "Consumer closed"
        return True
    except AttributeError:
        return False
    return False


def check_partitions_shared(settings: Settings, topic: str, received: Any, consumer_a: Any, consumer_b: Any) -> None:
    """Members a and b of one group read every record of ``topic`` between them.

    Each read from its own partitions, and both are closed.
    """
    require(
        isinstance(received, dict) and set(received) == {"a", "b"},
        'Set `received` to a dict with keys "a" and "b": the messages each member polled.',
    )
    stored = {(m.partition(), m.offset()) for m in read_topic(settings, topic, idle_s=0.5)}
    got = {
        name: {(m.partition(), m.offset()) for m in messages if hasattr(m, "offset") and m.topic() == topic}
        for name, messages in received.items()
    }
    require(
        got["a"] and got["b"],
        f"Member a got {len(got['a'])} record(s), b got {len(got['b'])}. Both must be in the group before the "
        "records arrive: subscribe both, then call poll() on *both* until each has an assignment — a member "
        "joins the group, and receives partitions, only inside poll().",
    )
    shared = {p for p, _ in got["a"]} & {p for p, _ in got["b"]}
    require(
        not shared,
        f"Both members read partition(s) {sorted(shared)}. In one group a partition has exactly one owner: "
        "did the two consumers use different group ids?",
    )
    missing = stored - got["a"] - got["b"]
    require(
        not missing,
        f"{len(missing)} of {len(stored)} records were read by nobody; keep polling both "
        "until the two lists hold them all.",
    )
    for name, consumer in (("a", consumer_a), ("b", consumer_b)):
        require(
            _is_closed(consumer),
            f"Consumer {name} is still open: call {name}.close(). An abandoned member keeps its partitions "
            "until max.poll.interval.ms passes without a poll (its heartbeats go on in the background).",
        )
    owned = {name: sorted({p for p, _ in got[name]}) for name in got}
    solved(
        f"a read partitions {owned['a']}, b read {owned['b']}: every record once, and both left the group "
        "cleanly. That is how processors share the work."
    )
