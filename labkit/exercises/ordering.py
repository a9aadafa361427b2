"""Lesson 12's check: producing in order, once each, through a lost request and a dropped connection."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..config import Settings
from ..kafka.admin import read_topic
from ..ops.chaos import ChaosProxy
from ._feedback import require, solved
from ._setup import fresh_topic

#: How many records the check sends after the lost request; each in a request of its own.
RECORDS = 5


def check_ordered_once(settings: Settings, proxy: ChaosProxy, make: Callable[[str], Any]) -> None:
    """The learner's producer sends 0 … 5 through a lost request; they must land in order, once each.

    ``make(bootstrap_servers)`` builds the producer; ``proxy`` stands between it and the broker of
    ``settings`` and loses a request in the middle of the burst, then drops the connection.
    """
    require(callable(make), "`safe_producer` should be a function: def safe_producer(bootstrap_servers): ...")
    topic = fresh_topic(settings, "ordered", partitions=1)  # one partition: one order to keep
    producer = make(settings.bootstrap_servers)
    require(
        hasattr(producer, "produce") and hasattr(producer, "flush"),
        f"`safe_producer` returned {type(producer).__name__}; return a confluent_kafka.Producer built from your "
        "settings.",
    )
    producer.produce(topic, key=b"order", value=b"0")
    require(producer.flush(30) == 0, "Your producer could not deliver a first record within 30 s; is the broker up?")
    proxy.lose_next_produce()  # the next request vanishes, the one after it gets through unanswered, then a drop
    for i in range(1, RECORDS + 1):
        producer.produce(topic, key=b"order", value=str(i).encode())
        producer.flush(0.05)  # send it now: one record per request, several requests in flight
    require(
        producer.flush(60) == 0,
        "Some records were never acknowledged within 60 s: keep retries on (librdkafka retries for "
        "message.timeout.ms, 300 s by default) — do not set message.timeout.ms or retries low.",
    )
    written = [(message.value() or b"").decode() for message in read_topic(settings, topic, idle_s=1)]
    expected = [str(i) for i in range(RECORDS + 1)]
    twice = sorted({value for value in written if written.count(value) > 1})
    require(
        not twice,
        f"The topic holds {written}: {', '.join(twice)} written twice. The request that got through was retried "
        "because its acknowledgement never came; only the broker can tell it already has those records. Turn on "
        "enable.idempotence (the producer numbers its batches, the broker drops the repeat).",
    )
    require(
        written == expected,
        f"The topic holds {written}, not {expected}: a retry landed after a later request. Idempotence also keeps "
        "the order per partition (the broker refuses a batch while an earlier one is missing).",
    )
    solved(f"{', '.join(written)}: in order and once each, through a lost request and a dropped connection.")
