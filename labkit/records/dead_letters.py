"""Dead letters: a record no task can use goes to the dead-letter topic, unchanged.

It gets headers saying why and where it failed.

The value and the original headers are kept as they were, so the record can be read, fixed and
sent again (to one task: ``labkit-tasks: ["<task>"]``). The headers added:

    labkit-dlq-error      what was wrong (at most 1,000 bytes)
    labkit-dlq-topic      where the record was: topic, partition and offset
    labkit-dlq-partition
    labkit-dlq-offset
    labkit-dlq-failed-at  when it was given up (ms since the epoch)
    labkit-dlq-task       the task that could not use it (each task dead-letters on its own)
"""

from __future__ import annotations

from .wire import Headers, ProduceHeaders, now_ms

H_DLQ_ERROR = "labkit-dlq-error"
H_DLQ_TOPIC = "labkit-dlq-topic"
H_DLQ_PARTITION = "labkit-dlq-partition"
H_DLQ_OFFSET = "labkit-dlq-offset"
H_DLQ_FAILED_AT = "labkit-dlq-failed-at"
H_DLQ_TASK = "labkit-dlq-task"  # the task that could not use the record (each task dead-letters on its own)


def dead_letter_headers(headers: Headers | None, error: str, topic: str, partition: int, offset: int) -> ProduceHeaders:
    """The original headers plus why and where a record failed."""
    original: ProduceHeaders = list(headers or [])
    return original + [
        (H_DLQ_ERROR, error.encode("utf-8", "replace")[:1000]),
        (H_DLQ_TOPIC, topic.encode()),
        (H_DLQ_PARTITION, str(partition).encode()),
        (H_DLQ_OFFSET, str(offset).encode()),
        (H_DLQ_FAILED_AT, str(now_ms()).encode()),
    ]
