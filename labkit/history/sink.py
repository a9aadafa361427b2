"""The sink: a consumer group that keeps the history in PostgreSQL.

It keeps the requests, every task's results and the embeddings.

A sink is just another consumer group (``<group_prefix>-sink``): like each task, it reads every
record of the topics it subscribes to, at its own pace, with its own committed offsets. Its loop:

1. **poll** a batch from ``image-requests``, ``image-results`` and ``image-embeddings``;
2. **write** it to every index version that takes writes (the active one, and one being
   rebuilt) in **one database transaction**, with the idempotent upserts of
   :mod:`labkit.history.store`;
3. only after that transaction has **committed**, commit the batch's Kafka offsets.

Killed between 2 and 3, the sink reads the batch again and writes the same rows again: the
upserts make that harmless. Killed before 2 ends, the transaction never happened. So no row is
lost and none doubled. A database error rewinds the batch and tries again after a pause. A
record the sink cannot read is logged and committed past (the processors dead-letter bad
requests; a bad result or embedding must not stop the history).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaException, Message
from psycopg.rows import dict_row

from .._process import crash_at_failpoint, parse_failpoint, write_json_atomically
from ..config import Settings
from ..errors import LabkitError
from ..kafka.client_config import make_consumer
from ..kafka.group_errors import raise_if_refused
from ..kafka.offsets import Offsets, end_offsets, next_offsets, read_to_end, seek_back
from ..records.embeddings import ImageEmbedding, decode_embedding
from ..records.serde import RESULTS
from ..records.wire import ImageRequest, ScoreResult, record_headers
from .database import Database
from .schema import adopt_model
from .store import RequestRow, put_embedding, put_request, put_result, request_row
from .vector_index import CHECK_EVERY_S, IndexFitter, ensure_vector_index

log = logging.getLogger(__name__)

#: Most records the sink writes in one transaction.
SINK_BATCH = 200

#: How the sink fetches (librdkafka consumer settings). The sink writes in batches, each gathered for up to 0.5 s
#: (:meth:`Sink.step`), so it needs no record the moment it lands: it lets the broker
#: hold each fetch until 64 KB have come or 100 ms have passed (librdkafka's defaults: 1 byte, 500 ms). The
#: processors and the web app ask every 10 ms on Tansu (see :func:`~labkit.kafka.client_config.consumer_config`),
#: and on Tansu, which holds every fetch for its whole wait, the sink's share of those fetches cost the broker
#: 0.8 ms per 224 px image (3.8 → 3.0 ms, bench m). Held under the step's 0.5 s, so a step still gathers several.
SINK_FETCH = {"fetch.wait.max.ms": 100, "fetch.min.bytes": 64 * 1024}


def sink_group(settings: Settings) -> str:
    """The sink's consumer group: ``<group_prefix>-sink``."""
    return f"{settings.group_prefix}-sink"


def sink_topics(settings: Settings) -> list[str]:
    """What the sink reads: the requests (thumbnails, hashes), every task's results, and the embeddings."""
    return [settings.requests_topic, settings.results_topic, settings.embeddings_topic]


@dataclass
class SinkStats:
    """Counters a test or notebook can read while the sink runs."""

    batches: int = 0
    written: int = 0  # records written and committed
    unreadable: int = 0  # records logged and committed past
    retries: int = 0  # batches rewound after a database error
    commit_failures: int = 0  # batches written whose offsets Kafka did not take (they may come again)


Row = RequestRow | ScoreResult | ImageEmbedding


def to_row(settings: Settings, message: Message) -> Row | None:
    """What one record contributes to the history; None (logged) for a record the sink cannot read."""
    topic, key, value, headers = message.topic(), message.key(), message.value(), record_headers(message)
    try:
        if topic == settings.requests_topic:
            return request_row(ImageRequest.from_record(key, value, headers))
        if topic == settings.results_topic:
            return RESULTS.deserialize(value, headers, topic)
        if topic == settings.embeddings_topic:
            return decode_embedding(key, value, headers)
    except LabkitError as exc:
        log.warning("sink: skipped %s[%d]@%d: %s", topic, message.partition(), message.offset(), exc)
        return None
    log.warning("sink: skipped a record of %s, a topic it does not read", topic)
    return None


def writable_versions(connection) -> list[tuple[int, str | None]]:
    """Index versions that take writes (the active one, any being rebuilt), each with its embedding model."""
    rows = connection.cursor(row_factory=dict_row).execute(
        "SELECT version, embedding_model FROM labkit_index WHERE state <> 'retired'"
    )
    return [(row["version"], row["embedding_model"]) for row in rows]


Versions = Callable[[Any], list[tuple[int, str | None]]]


class HistoryWriter:
    """Writes rows to the index versions in one transaction (the part of the sink that knows the database).

    Requests and results go to every writable version; an embedding only to the versions that hold
    its model's vectors (a version without a model yet takes the first one it is given).
    """

    def __init__(self, database: Database, versions: Versions = writable_versions):
        self.database = database
        self._versions = versions
        self._indexed: set[tuple[int, str, int]] = set()  # (version, model, dim) whose HNSW index exists
        self._warned: set[tuple[int, str]] = set()
        self.other_model = 0  # embeddings no writable version takes (another model's: see labkit sink --reembed)

    def write(self, rows: list[Row]) -> None:
        with self.database.transaction() as connection:
            versions = self._versions(connection)
            for row in rows:
                if isinstance(row, ImageEmbedding):
                    versions = self._put_embedding(connection, versions, row)
                elif isinstance(row, RequestRow):
                    for version, _ in versions:
                        put_request(connection, version, row)
                else:
                    for version, _ in versions:
                        put_result(connection, version, row)

    def _put_embedding(self, connection, versions: list[tuple[int, str | None]], row: ImageEmbedding):
        """Write ``row`` to the versions of its model; the versions, with any model a version has just taken."""
        taken = []
        for version, model in versions:
            if model is None:
                model = adopt_model(connection, version, row.model)
            taken.append((version, model))
            if model != row.model:
                self._other_model(version, model, row.model)
                continue
            index = (version, row.model, row.vector.size)
            if self.database.has_vector and index not in self._indexed:
                ensure_vector_index(connection, *index)
                self._indexed.add(index)
            put_embedding(connection, version, row, self.database.has_vector)
        return taken

    def _other_model(self, version: int, model: str, other: str) -> None:
        self.other_model += 1
        if (version, other) not in self._warned:
            self._warned.add((version, other))
            log.warning(
                "sink: index version %d holds %s vectors, so embeddings of %s are not stored in it (search compares "
                "one model's vectors only). After a model change, re-index with the new "
                "LABKIT_MODEL: labkit sink --reembed",
                version,
                model,
                other,
            )


class Sink:
    """One member of the sink group: poll → write in one transaction → commit the offsets."""

    def __init__(
        self,
        settings: Settings,
        database: Database,
        group_id: str | None = None,
        retry_s: float = 1.0,
        versions: Versions = writable_versions,
        stats_file: Path | None = None,
        fit_every_s: float | None = CHECK_EVERY_S,
    ):
        """``versions``: the index versions a batch is written to (a rebuild's replay writes only its new one).

        ``stats_file``: rewritten with :attr:`stats` after every batch (``labkit bench`` reads it).
        ``fit_every_s``: how often :meth:`run` checks that each model's vector index fits its count
        (:mod:`labkit.history.vector_index`: IVFFlat from ``ivfflat_min_rows`` vectors); None: never.
        """
        self.settings = settings
        self.stats_file = stats_file
        self.group_id = group_id or sink_group(settings)
        self.writer = HistoryWriter(database, versions)
        self._failpoint = parse_failpoint(settings.failpoint)
        self.stats = SinkStats()
        self.retry_s = retry_s
        self._consumer = make_consumer(settings, self.group_id, client_id="labkit-sink", **SINK_FETCH)
        self._consumer.subscribe(sink_topics(settings), on_assign=self._on_assign)
        self._stop = threading.Event()
        self.fitter: IndexFitter | None = None
        if database.has_vector and fit_every_s is not None:
            self.fitter = IndexFitter(database, settings.ivfflat_min_rows, fit_every_s)
        self.assigned = threading.Event()  # set once the group has given this member its partitions

    def _on_assign(self, consumer, partitions) -> None:
        log.info("sink: assigned %d partition(s)", len(partitions))
        self.assigned.set()

    def step(self, timeout: float = 0.5) -> int:
        """Poll and write one batch; returns how many records it committed (0: none came, or it was rewound)."""
        batch = raise_if_refused(
            self._consumer.consume(SINK_BATCH, timeout), self.group_id, self.settings.session_timeout_ms
        )
        if not batch:
            return 0
        crash_at_failpoint(self._failpoint, "after-consume", self.stats.batches + 1, "sink")
        rows = [to_row(self.settings, message) for message in batch]
        try:
            self.writer.write([row for row in rows if row is not None])
        except Exception as exc:  # the database refused or went away: nothing was committed, so redo the batch
            log.warning("sink: writing %d records failed (%s); retrying in %.0f s", len(batch), exc, self.retry_s)
            self.stats.retries += 1
            seek_back(self._consumer, batch)
            self._stop.wait(self.retry_s)
            return 0
        crash_at_failpoint(self._failpoint, "before-commit", self.stats.batches + 1, "sink")  # rows in, offsets not
        try:
            self._consumer.commit(offsets=next_offsets(batch), asynchronous=False)
        except KafkaException as exc:
            # The group's coordinator moved (its broker died) or the group is rebalancing. The rows are in, and
            # the upserts are idempotent: if these records come again, writing them again changes nothing. The
            # next commit covers these offsets too.
            log.warning("sink: committing %d records failed (%s); they may be read again", len(batch), exc)
            self.stats.commit_failures += 1
        self.stats.batches += 1
        self.stats.written += sum(row is not None for row in rows)
        self.stats.unreadable += sum(row is None for row in rows)
        if self.stats_file is not None:
            write_json_atomically(self.stats_file, asdict(self.stats))
        return len(batch)

    def run(self) -> None:
        """Run until :meth:`stop`, then leave the group."""
        log.info("sink: group %s writing %s to the history", self.group_id, ", ".join(sink_topics(self.settings)))
        if self.fitter is not None:
            self.fitter.start()  # off the consume loop: a thread with a connection of its own
        try:
            while not self._stop.is_set():
                self.step()
        finally:
            if self.fitter is not None:
                self.fitter.stop()
            self._consumer.close()

    def end_offsets(self) -> Offsets:
        """The end offset of every partition of the sink's topics that holds records, as of now."""
        return end_offsets(self._consumer, sink_topics(self.settings))

    def drain(self, idle_s: float = 1.0, timeout_s: float = 60.0, ends: Offsets | None = None) -> None:
        """Step until this member has read to the end; the consumer stays open.

        The end: the group has assigned partitions, this member has read up to ``ends`` (if given)
        and nothing new has come for ``idle_s``.
        """

        def busy() -> bool:
            retries = self.stats.retries
            # A failed write is not quiet: the batch was rewound and is tried again.
            return self.step(timeout=0.2) > 0 or self.stats.retries > retries

        who = f"the sink (group {self.group_id})"
        read_to_end(self._consumer, busy, ends, self.assigned.is_set, idle_s, timeout_s, who)

    def stop(self) -> None:
        self._stop.set()

    def close(self) -> None:
        self._consumer.close()
