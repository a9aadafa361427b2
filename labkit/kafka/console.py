"""Console tools: tail a topic as kafka-console-consumer and kcat do, measure a consumer's throughput.

``labkit topics tail TOPIC`` and ``labkit topics perf TOPIC`` call these; notebooks call them too.
Each record is shown with what Kafka stores beside the value — partition, offset, key,
timestamp, headers — and the value made readable: JSON pretty-printed, an image summarised as
its type, size and pixel size (the bytes themselves mean nothing on a terminal), other bytes as
text when they are text.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, KafkaError, Message, TopicPartition

from ..config import Settings
from ..records.wire import record_headers
from .admin import require_topics
from .client_config import make_consumer


def describe_value(value: bytes | None) -> str:
    """A record's value for people: JSON indented, an image as type/size/pixels, text as is, else its size."""
    if value is None:
        return "(no value: a tombstone)"
    try:
        return json.dumps(json.loads(value), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(value)) as image:  # reads the header only, decodes nothing
            return f"<{image.format} image, {len(value) / 1000:.1f} kB, {image.width}×{image.height} px>"
    except (UnidentifiedImageError, OSError):
        pass
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return f"<{len(value)} bytes of binary data>"


def format_record(message: Message) -> str:
    """One record as a block of text: where it is, its key, time and headers, then its value."""
    kind, stamp = message.timestamp()
    when = datetime.fromtimestamp(stamp / 1000, timezone.utc).isoformat(timespec="milliseconds") if stamp > 0 else "-"
    key = message.key()
    headers = ", ".join(
        f"{name}={value.decode('utf-8', 'replace') if value is not None else ''}"
        for name, value in (record_headers(message) or [])
    )
    value = describe_value(message.value()).replace("\n", "\n    ")
    return (
        f"{message.topic()}[{message.partition()}]@{message.offset()}"
        f"  key={key.decode('utf-8', 'replace') if key else '-'}  {when}\n    headers: {headers or '-'}\n    {value}"
    )


@dataclass
class ReadSummary:
    """What a read did: how many records and bytes (keys and values), in how many seconds."""

    records: int = 0
    bytes: int = 0
    seconds: float = 0.0

    @property
    def records_per_s(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def mb_per_s(self) -> float:
        return self.bytes / 1e6 / self.seconds if self.seconds else 0.0


def read_records(
    settings: Settings,
    topic: str,
    on_record: Callable[[Message], None],
    from_beginning: bool = False,
    group: str | None = None,
    max_records: int | None = None,
    follow: bool = False,
    stop: Callable[[], bool] = lambda: False,
) -> ReadSummary:
    """Read ``topic`` and hand each record to ``on_record``; returns what was read.

    Where it starts: the beginning with ``from_beginning``; else ``group``'s committed offsets
    (the end where it has none); else the end. Where it stops: after ``max_records``; or, unless
    ``follow``, once every partition is caught up (librdkafka's partition-EOF event); or when
    ``stop()`` says so. Without ``group`` nothing is committed (``assign``, as kcat does); with one,
    the group's offsets move on (``subscribe``, as kafka-console-consumer ``--group`` does).
    """
    partitions = sorted(require_topics(settings, [topic]).topics[topic].partitions)
    # "Caught up" here is librdkafka's partition-EOF event: the end as it is at each fetch, which a tail that
    # follows needs, not the ends fixed once at the start that labkit.kafka.offsets reads to.
    extra = {
        "enable.partition.eof": True,  # librdkafka tells us when a partition is caught up
        "auto.offset.reset": "earliest" if from_beginning else "latest",
        "enable.auto.commit": group is not None,  # a group's offsets move on as records are read
    }
    consumer = make_consumer(settings, group, client_id="labkit-console", **extra)
    caught_up: set[int] = set()
    summary = ReadSummary()
    started = time.perf_counter()
    try:
        if group is None:
            start = OFFSET_BEGINNING if from_beginning else OFFSET_END
            consumer.assign([TopicPartition(topic, p, start) for p in partitions])
        else:
            consumer.subscribe([topic])
        while not stop() and (max_records is None or summary.records < max_records):
            message = consumer.poll(0.2)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() != KafkaError._PARTITION_EOF:
                    raise RuntimeError(f"reading {topic}: {error}")
                caught_up.add(message.partition() or 0)
                if not follow and caught_up >= set(partitions):
                    break
                continue
            caught_up.discard(message.partition() or 0)
            summary.records += 1
            summary.bytes += len(message.value() or b"") + len(message.key() or b"")
            on_record(message)
    finally:
        summary.seconds = time.perf_counter() - started
        consumer.close()  # with a group: commits what was read (auto-commit), then leaves
    return summary


def tail(settings: Settings, topic: str, print_line: Callable[[str], None] = print, **options) -> ReadSummary:
    """Print ``topic``'s records, one block each (:func:`read_records` has the options)."""
    return read_records(settings, topic, lambda message: print_line(format_record(message)), **options)


def consumer_throughput(settings: Settings, topic: str, max_records: int | None = None) -> ReadSummary:
    """Read ``topic`` from the beginning as fast as one consumer can (no printing, nothing committed)."""
    return read_records(settings, topic, lambda message: None, from_beginning=True, max_records=max_records)


def describe_groups(settings: Settings, extra: dict[str, str], print_line: Callable[[str], None] = print) -> None:
    """Print each task's group (and ``extra``'s {group: task}) on the requests topic: committed, end, lag.

    The lag in records, and in seconds: how long the oldest record not committed yet has waited.
    """
    from ..ops.monitor import partition_lag, task_groups

    topic = settings.requests_topic
    print_line(f"consumer groups on {topic}: lag = records not committed yet, lag s = how long the oldest has waited")
    groups = {**task_groups(settings), **extra}
    width = max(len(group) for group in groups) + 2
    print_line(f"{'group':<{width}}{'task':<6}{'partition':>10}{'committed':>11}{'end':>8}{'lag':>6}{'lag s':>9}")
    for group, task in groups.items():
        rows = partition_lag(settings, topic, group)
        for r in rows:
            committed = "-" if r.committed is None else r.committed  # nothing committed: it starts at the beginning
            age = "?" if r.lag_seconds is None else f"{r.lag_seconds:.1f}"
            print_line(f"{group:<{width}}{task:<6}{r.partition:>10}{committed:>11}{r.end:>8}{r.lag_records:>6}{age:>9}")
        ages = [r.lag_seconds for r in rows]
        oldest = "?" if None in ages else f"{max((a or 0.0 for a in ages), default=0.0):.1f}"
        print_line(
            f"{group:<{width}}{task:<6}{'all':>10}{'':>11}{'':>8}{sum(r.lag_records for r in rows):>6}{oldest:>9}"
        )


def topics_command(settings: Settings, action: str, topic: str | None, follow: bool = False, **options) -> int:
    """``labkit topics ACTION [TOPIC]``: create, list, describe, tail, perf; prints, returns the exit code."""
    from ..errors import LabkitError
    from .admin import create_topics, describe_topics, labkit_topics, wait_for_broker

    if action == "create":
        for name, state in create_topics(settings).items():
            print(f"{name}: {state}")
    elif action == "list":
        metadata = wait_for_broker(settings)
        for name in sorted(t for t in metadata.topics if not t.startswith("__")):
            mark = "*" if name in labkit_topics(settings) else " "
            print(f"{mark} {name}  ({len(metadata.topics[name].partitions)} partitions)")
    elif action == "describe":
        print(f"{'topic':<22}{'partition':>10}{'leader':>8}{'low':>8}{'high':>8}")
        for r in describe_topics(settings):
            print(f"{r.topic:<22}{r.partition:>10}{r.leader:>8}{r.low:>8}{r.high:>8}")
        print()
        describe_groups(settings, {options["group"]: "-"} if options.get("group") else {})
    elif topic is None:
        raise LabkitError(f"`labkit topics {action}` needs a topic, e.g. `labkit topics {action} image-results`.")
    elif action == "tail":
        import threading

        from .._process import on_stop_signal

        stopped = threading.Event()
        on_stop_signal(stopped.set)  # Ctrl-C or SIGTERM ends a --follow cleanly
        # Starting at the end with no group, there is nothing to show until something new comes: follow.
        follow = follow or not (options.get("from_beginning") or options.get("group"))
        summary = tail(
            settings, topic, lambda block: print(block, flush=True), follow=follow, stop=stopped.is_set, **options
        )
        print(f"({summary.records} record(s) from {topic})")
    else:
        summary = consumer_throughput(settings, topic, options.get("max_records"))
        print(f"{'records':>10}{'MB':>10}{'seconds':>10}{'records/s':>12}{'MB/s':>10}")
        print(
            f"{summary.records:>10}{summary.bytes / 1e6:>10.2f}{summary.seconds:>10.2f}"
            f"{summary.records_per_s:>12.0f}{summary.mb_per_s:>10.2f}"
        )
    return 0
