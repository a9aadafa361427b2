"""Lesson 21's check: an idempotent upsert keeping each key's first answer, through a topic read twice."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from confluent_kafka import OFFSET_BEGINNING, TopicPartition
from psycopg import sql
from psycopg.rows import dict_row

from ..config import Settings
from ..kafka.client_config import make_consumer, make_producer
from ._feedback import require, solved
from ._setup import fresh_topic

#: What the check's topic holds, in order: a duplicate of r-0 with another label comes later (a redelivered,
#: re-scored request), so "the first one stands" keeps cat.
RECORDS = [("r-0", "cat"), ("r-1", "dog"), ("r-0", "lion"), ("r-2", "teapot")]
EXPECTED = {"r-0": "cat", "r-1": "dog", "r-2": "teapot"}


def _read_all(settings: Settings, topic: str) -> list[tuple[str, str]]:
    """Every record of ``topic`` (one partition) from the start: (key, value) pairs in order."""
    consumer = make_consumer(settings, client_id="labkit-exercise-check")
    consumer.assign([TopicPartition(topic, 0, OFFSET_BEGINNING)])  # no group to join: a read, as a replay does
    records: list[tuple[str, str]] = []
    try:
        for _ in range(60):
            for message in consumer.consume(10, 0.5):
                if not message.error():
                    records.append(((message.key() or b"").decode(), (message.value() or b"").decode()))
            if len(records) >= len(RECORDS):
                break
    finally:
        consumer.close()
    return records


def check_idempotent_upsert(settings: Settings, upsert: Callable[[Any, str, str, str], object]) -> None:
    """Feed ``upsert(connection, table, request_id, label)`` a topic's records, then all again (a replay)."""
    from ..history import open_database

    require(callable(upsert), "`upsert_label` should be a function: def upsert_label(connection, table, key, label).")
    database = open_database(settings)
    table = f"exercise_labels_{uuid.uuid4().hex[:6]}"
    topic = fresh_topic(settings, "exercise-upserts", partitions=1)
    producer = make_producer(settings, client_id="labkit-exercise-setup")
    for key, label in RECORDS:
        producer.produce(topic, key=key.encode(), value=label.encode())
        producer.flush(10)
    records = _read_all(settings, topic)
    require(len(records) == len(RECORDS), f"The check read {len(records)} of {len(RECORDS)} records; run it again.")
    with database.connect(autocommit=True) as connection:
        connection.execute(
            sql.SQL("CREATE TABLE {} (request_id text PRIMARY KEY, label text NOT NULL)").format(sql.Identifier(table))
        )
    try:
        for attempt in ("first delivery", "replay"):  # a sink reads a batch again after a crash, or replays all
            with database.transaction() as connection:
                for key, label in records:
                    try:
                        upsert(connection, table, key, label)
                    except Exception as exc:  # noqa: BLE001 — the learner's SQL: say what it did
                        require(
                            False,
                            f"upsert_label({key!r}, {label!r}) raised {type(exc).__name__}: "
                            f"{str(exc).strip().splitlines()[0]} (during the {attempt}). A key seen before must not "
                            "fail: INSERT … ON CONFLICT (request_id) DO …",
                        )
        with database.connect() as connection:
            rows = connection.cursor(row_factory=dict_row).execute(
                sql.SQL("SELECT request_id, label FROM {}").format(sql.Identifier(table))
            )
            stored = {row["request_id"]: row["label"] for row in rows}
    finally:
        with database.connect(autocommit=True) as connection:
            connection.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    require(stored, "The table is empty: upsert_label must INSERT the row (and leave the transaction to the caller).")
    require(
        set(stored) == set(EXPECTED),
        f"The table holds {sorted(stored)}; one row per request id was expected: {sorted(EXPECTED)}.",
    )
    require(
        stored["r-0"] != "lion",
        "r-0 says 'lion', the later duplicate: the last delivery won. A result redelivered or made twice must not "
        "replace the first one: ON CONFLICT (request_id) DO NOTHING keeps what is there.",
    )
    require(stored == EXPECTED, f"The table holds {stored}; expected {EXPECTED}.")
    solved(
        f"{len(records)} records, delivered twice, gave {len(stored)} rows — the first label of each request id: "
        "idempotent (a replay changes nothing) and order-safe for duplicates."
    )
