"""What an exercise cell sets up per attempt: a new topic and records in it, on any Kafka cluster."""

from __future__ import annotations

import uuid

from ..config import Settings
from ..kafka.admin import create_topics
from ..kafka.client_config import make_producer


def fresh_topic(settings: Settings, name: str, partitions: int = 3, records: int = 0, key: str = "record") -> str:
    """Create ``name-<4 hex>``: a new topic for one exercise attempt, holding ``records`` keyed records.

    Every run of an exercise cell gets its own topic (and so its own consumer groups, named
    after it), so running it again — after the template, or after a mistake — starts clean on
    any Kafka cluster.
    """
    topic = f"{name}-{uuid.uuid4().hex[:4]}"
    create_topics(settings.model_copy(update={"partitions": partitions}), [topic])
    send_records(settings, topic, records, key)
    return topic


def send_records(settings: Settings, topic: str, count: int, key: str = "record") -> None:
    """Produce ``count`` records keyed ``key-0`` … to ``topic``, one request each.

    One request per record, so that end offsets count records on every broker (the lab's
    broker numbers *batches* in its end offsets).
    """
    producer = make_producer(settings, client_id="labkit-exercise-setup")
    for i in range(count):
        producer.produce(topic, key=f"{key}-{i}".encode(), value=b"1")
        producer.flush(10)
