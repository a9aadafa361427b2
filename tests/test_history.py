"""The history: the sink group's rows and commits, and search — on the embedded PostgreSQL and the machine's own.

The sink writes one row per request whatever the order and commits only after the database;
search finds by vector (one model at a time), by OCR words and by content.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np
import psycopg
import pytest
from confluent_kafka import TopicPartition
from psycopg.rows import dict_row

from labkit.errors import WireFormatError
from labkit.history import (
    ReplayIncomplete,
    Sink,
    duplicates,
    history,
    nearest,
    open_database,
    rebuild,
    reembed,
    similar,
    text_search,
)
from labkit.history.database import Database, release_embedded
from labkit.history.schema import MIGRATIONS, schema_version
from labkit.history.sink import HistoryWriter
from labkit.history.store import request_row, thumbnail_size
from labkit.kafka.admin import create_topics, describe_topics
from labkit.kafka.client_config import make_producer
from labkit.records.embeddings import ImageEmbedding, decode_embedding, encode_embedding
from labkit.records.serde import RESULTS
from labkit.records.wire import ImageRequest, LabelScore, ScoreResult, TextLine, now_ms


def _unit(vector) -> np.ndarray:
    vector = np.asarray(vector, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def _named(connection, query: str, params: tuple = ()) -> list[dict]:
    """The rows of ``query``, each a dict by column name (psycopg's ``dict_row``, as ``labkit.history`` reads rows)."""
    return connection.cursor(row_factory=dict_row).execute(query, params).fetchall()


def _rows(database: Database) -> list[dict]:
    """Every row of the active index version, by column name, as comparable values (the embedding as text)."""
    with database.connect() as connection:
        return _named(
            connection,
            "SELECT request_id, sent_at, filename, size_bytes, width, height, content_sha256, thumbnail, results, "
            "top_label, ocr_text, embedding::text AS embedding, embedding_model FROM images ORDER BY request_id",
        )


def _without_vector(row: dict) -> dict:
    """A row's request and results, without its embedding and the model that made it."""
    return {column: value for column, value in row.items() if column not in ("embedding", "embedding_model")}


def _states(connection) -> dict[int, str]:
    """Each index version's state, by version."""
    return {row["version"]: row["state"] for row in _named(connection, "SELECT version, state FROM labkit_index")}


def _request(photo, request_id: str, sent_at_ms: int) -> ImageRequest:
    return ImageRequest(request_id, photo.read_bytes(), "image/jpeg", sent_at_ms=sent_at_ms, filename=photo.name)


def _clip(request_id: str, label: str, processor: str = "p-1", status: str = "ok") -> ScoreResult:
    labels = [LabelScore(label=label, score=0.9)] if status == "ok" else []
    return ScoreResult(request_id=request_id, status=status, task="clip", labels=labels, model="m", processor=processor)


def _ocr(request_id: str, text: str, status: str = "ok") -> ScoreResult:
    lines = [TextLine(text=line, score=0.95) for line in text.splitlines()] if status == "ok" else []
    error = None if status == "ok" else "the ocr task failed: staged"
    return ScoreResult(
        request_id=request_id,
        status=status,
        task="ocr",
        text=text if status == "ok" else None,
        lines=lines,
        error=error,
    )


def _produce(settings, records) -> None:
    """Produce (topic, key, value, headers) records, in this order, and wait for the broker."""
    producer = make_producer(settings)
    for topic, key, value, headers in records:
        producer.produce(topic, key=key.encode(), value=value, headers=headers)
    assert producer.flush(15) == 0


def _as_record(settings, item):
    if isinstance(item, ImageRequest):
        return settings.requests_topic, item.request_id, item.image, item.headers()
    if isinstance(item, ScoreResult):
        return (settings.results_topic, item.request_id, *RESULTS.serialize(item, settings.results_topic))
    request_id, vector, model = item
    return (settings.embeddings_topic, request_id, *encode_embedding(vector, model))


def test_an_embedding_record_round_trips_as_float16_and_bad_ones_say_what_is_wrong():
    vector = _unit(np.arange(1, 513))
    value, headers = encode_embedding(vector, "ViT-B-32/openai")
    assert len(value) == 1024  # 512 × float16
    decoded = decode_embedding(b"abc", value, headers)
    assert decoded.model == "ViT-B-32/openai" and float(decoded.vector @ vector) > 0.9999
    with pytest.raises(WireFormatError, match="no key"):
        decode_embedding(None, value, headers)
    with pytest.raises(WireFormatError, match="labkit-model"):
        decode_embedding(b"abc", value, [h for h in headers if h[0] != "labkit-model"])
    with pytest.raises(WireFormatError, match="says 511"):
        decode_embedding(b"abc", value, [*headers[:2], ("labkit-dim", b"511"), headers[3]])
    with pytest.raises(WireFormatError, match="unit vector"):
        decode_embedding(b"abc", (np.ones(4, "<f2") * 3).tobytes(), headers[:2])
    with pytest.raises(WireFormatError, match="schema 2.0"):
        decode_embedding(b"abc", value, [("labkit-schema", b"2.0"), *headers[1:]])


def test_the_schema_is_migrated_once_and_an_index_version_is_active(history_settings, caplog):
    with caplog.at_level(logging.WARNING, logger="labkit.history"):
        first = open_database(history_settings)
        again = open_database(history_settings)  # a second process starting: nothing to do
    with again.connect() as connection:
        assert schema_version(connection) == len(MIGRATIONS) == 3
        assert _named(connection, "SELECT count(*) AS applied FROM labkit_schema") == [{"applied": 3}]
        assert _named(connection, "SELECT version, state, embedding_model FROM labkit_index") == [
            {"version": 1, "state": "active", "embedding_model": None}  # the first embedding written decides it
        ]
        assert _named(connection, "SELECT count(*) AS stored FROM images") == [{"stored": 0}]
    # A database made before migration 2 (the index's embedding model) gets it when next opened, its index kept.
    with again.transaction() as connection:
        connection.execute("ALTER TABLE labkit_index DROP COLUMN embedding_model")
        connection.execute("DELETE FROM labkit_schema WHERE version = 2")
    with caplog.at_level(logging.WARNING, logger="labkit.history"):
        upgraded = open_database(history_settings)
    with upgraded.connect() as connection:
        assert schema_version(connection) == 3
        assert _named(connection, "SELECT version, state, embedding_model FROM labkit_index") == [
            {"version": 1, "state": "active", "embedding_model": None}
        ]
    assert first.has_vector == ("?host=" in history_settings.database_url.get_secret_value())  # embedded: a socket
    warned = [r.getMessage() for r in caplog.records if "no pgvector" in r.getMessage()]
    assert len(warned) == (0 if first.has_vector else 3), warned  # one line each time it is opened


def test_an_embedded_postgresql_this_process_lets_go_of_stops_and_its_folder_can_go(settings, tmp_path):
    # labkit bench deletes its throw-away history folder; a server still running there would outlive the process.
    own = settings.model_copy(update={"database_url": None, "history_dir": tmp_path})
    with open_database(own).connect() as connection:
        assert _named(connection, "SELECT 1 AS answered") == [{"answered": 1}]
    pid = int((tmp_path / "postgres" / "postmaster.pid").read_text().split()[0])
    release_embedded(tmp_path)
    assert not (tmp_path / "postgres" / "postmaster.pid").exists()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid), "the embedded PostgreSQL kept running after its only user let go"
    release_embedded(tmp_path)  # twice: nothing left to do


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")  # an exited child not yet reaped is a zombie: gone all the same
    return not (status.exists() and "zombie" in status.read_text())


def test_the_sink_writes_one_row_per_request_whatever_order_the_streams_arrive_in_and_a_replay_changes_nothing(
    history_settings, photos
):
    settings = history_settings
    create_topics(settings)
    database = open_database(settings)
    sent = now_ms()
    cat, dog = _request(photos[0], "a" * 32, sent - 2000), _request(photos[1], "b" * 32, sent - 1000)
    vector = _unit(np.linspace(-1, 1, 64))
    records = [
        _clip(cat.request_id, "cat"),  # results before their requests
        _ocr(cat.request_id, "", status="error"),  # an OCR failure first …
        (dog.request_id, vector, "test-model"),  # … an embedding before anything else of its request
        dog,
        _clip(cat.request_id, "lion", processor="p-2"),  # a duplicate result (at least once): the first ok stands
        _ocr(cat.request_id, "INVOICE 42\nPaid"),  # … then the OCR retry that worked replaces the error
        cat,
        _clip(dog.request_id, "dog"),
        (cat.request_id, -vector, "test-model"),
    ]
    _produce(settings, [_as_record(settings, item) for item in records])
    sink = Sink(settings, database)
    try:
        sink.drain()
    finally:
        sink.close()
    assert sink.stats.written == len(records) and sink.stats.unreadable == 0

    rows = {row["request_id"]: row for row in _rows(database)}
    assert set(rows) == {cat.request_id, dog.request_id}
    kept_cat = rows[cat.request_id]
    assert kept_cat["filename"] == photos[0].name and kept_cat["size_bytes"] == len(cat.image)  # from the request
    assert max(thumbnail_size(kept_cat["thumbnail"])) == 160
    assert kept_cat["content_sha256"] == request_row(cat).content_sha256
    results = kept_cat["results"]
    assert results["clip"]["labels"][0]["label"] == "cat" and results["clip"]["processor"] == "p-1"
    assert results["ocr"]["status"] == "ok" and kept_cat["top_label"] == "cat"
    assert kept_cat["ocr_text"] == "INVOICE 42\nPaid"
    assert kept_cat["embedding_model"] == rows[dog.request_id]["embedding_model"] == "test-model"

    # Committed past everything: the group's offsets are at the end of each topic it reads.
    for topic in (settings.requests_topic, settings.results_topic, settings.embeddings_topic):
        for row in describe_topics(settings, [topic], sink.group_id):
            assert row.high == 0 or row.lag == 0, (topic, row)  # an empty partition has nothing to commit

    # A replay (a new group from the start, into the same table) writes every record again: nothing changes.
    before = _rows(database)
    replay = Sink(settings, database, group_id=f"{sink.group_id}-replay")
    try:
        replay.drain()
    finally:
        replay.close()
    assert replay.stats.written == len(records) and _rows(database) == before


def test_offsets_are_committed_only_after_the_database_has_the_rows(history_settings, photos):
    settings = history_settings
    create_topics(settings)
    database = open_database(settings)
    request = _request(photos[2], "c" * 32, now_ms())
    _produce(settings, [_as_record(settings, request)])
    sink = Sink(settings, database, retry_s=0.1)
    working = sink.writer
    sink.writer = HistoryWriter(Database("postgresql://nobody@127.0.0.1:1/none"))  # the database is away
    try:
        deadline = time.monotonic() + 30
        while sink.stats.retries < 2:  # polled, failed to write, rewound — twice
            assert time.monotonic() < deadline, "the sink never tried to write"
            assert sink.step(timeout=0.5) == 0
        committed = sink._consumer.committed([TopicPartition(settings.requests_topic, p) for p in range(3)], 10)
        assert all(tp.offset < 0 for tp in committed), committed  # nothing committed while the write failed
        assert _rows(database) == []
        sink.writer = working  # the database is back: the same batch, from the same offsets
        sink.drain()
    finally:
        sink.close()
    assert [row["request_id"] for row in _rows(database)] == [request.request_id]
    assert sum(row.lag or 0 for row in describe_topics(settings, [settings.requests_topic], sink.group_id)) == 0


def _store(database: Database, rows) -> None:
    """Write rows straight through the sink's writer (search tests need no Kafka)."""
    HistoryWriter(database).write(rows)


def test_search_compares_one_models_vectors_only_cuts_off_by_score_and_tells_duplicates_from_similar(
    history_settings, photos
):
    database = open_database(history_settings)
    rng = np.random.default_rng(7)
    base = [_unit(v) for v in rng.normal(size=(40, 32))]
    photo = photos[5].read_bytes()
    now = now_ms()
    rows = []
    for n, vector in enumerate(base):
        data = photo if n in (0, 1) else photos[10 + n].read_bytes()
        request = ImageRequest(f"{n:032x}", data, "image/jpeg", sent_at_ms=now - 1000 * (40 - n))
        rows += [request_row(request), ImageEmbedding(request.request_id, "model-a", vector)]
    near_copy = _unit(base[0] + 0.02 * rng.normal(size=32))  # the same picture, re-encoded
    rows += [ImageEmbedding(f"{2:032x}", "model-a", near_copy)]
    rows += [ImageEmbedding(f"{99:032x}", "model-b", base[0])]  # another model's vector: never compared
    _store(database, rows)

    query = base[3]
    for exact in (False, True):
        hits = nearest(database, query, "model-a", limit=5, exact=exact)
        assert hits[0].request_id == f"{3:032x}" and hits[0].score == pytest.approx(1, abs=2e-3)
        assert all(hit.model == "model-a" for hit in hits) and len(hits) == 5
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    cut = nearest(database, query, "model-a", limit=10, min_score=0.5)
    assert [hit.request_id for hit in cut] == [f"{3:032x}"]  # random 32-d vectors: only itself scores ≥ 0.5
    assert nearest(database, query, "model-c") == []

    found = similar(database, f"{0:032x}", limit=3)
    assert found[0].request_id == f"{2:032x}" and f"{0:032x}" not in [h.request_id for h in found]
    assert f"{99:032x}" not in [h.request_id for h in similar(database, f"{0:032x}", limit=50)]
    copies = duplicates(database, f"{0:032x}")
    assert copies.exact == [f"{1:032x}"]  # same bytes
    assert [hit.request_id for hit in copies.near] == [f"{2:032x}"]  # same picture, other bytes

    page = history(database, limit=15)
    assert [h.request_id for h in page][:2] == [f"{39:032x}", f"{38:032x}"]  # newest first; 99 has no request: unlisted
    rest = history(database, limit=100, before=(page[-1].sent_at, page[-1].request_id))
    assert len(page) + len(rest) == 40 and not {h.request_id for h in page} & {h.request_id for h in rest}
    assert page[0].thumbnail and max(thumbnail_size(page[0].thumbnail)) <= 160


def test_ocr_words_find_the_screenshot_that_says_them(history_settings):
    database = open_database(history_settings)
    _store(
        database,
        [
            _ocr("d" * 32, "INVOICE 2026-0042\nTotal due: 120 EUR"),
            _ocr("e" * 32, "Kafka streams\nconsumer lag"),
            _ocr("f" * 32, ""),
        ],
    )
    assert [hit.request_id for hit in text_search(database, "invoice")] == ["d" * 32]
    assert [hit.request_id for hit in text_search(database, '"consumer lag"')] == ["e" * 32]
    assert text_search(database, "invoices total")[0].ocr_text.startswith("INVOICE")  # stemmed: english
    assert text_search(database, "kafka -lag") == []


def test_the_clip_processor_publishes_each_images_embedding_and_the_sink_keeps_it(
    history_settings, start_processor, photos
):
    from labkit.request_sender import RequestSender

    settings = history_settings
    processor = start_processor()
    sender = RequestSender(settings)
    try:
        sent = [sender.send(photo.read_bytes(), photo.name) for photo in (photos[20], photos[21], photos[20])]
        for _, _, acked in sent:
            acked.result(15)
    finally:
        sender.close()
    ids = [request.request_id for request, _, _ in sent]
    database = open_database(settings)
    sink = Sink(settings, database)
    try:
        deadline = time.monotonic() + 60
        while len([row for row in _rows(database) if row["embedding_model"] and row["results"].get("clip")]) < 3:
            assert time.monotonic() < deadline, "the sink did not get all three embeddings and results"
            sink.step()
    finally:
        sink.close()
    rows = {row["request_id"]: row for row in _rows(database)}
    model = processor.task.model_id
    assert all(rows[i]["embedding_model"] == model for i in ids)
    assert rows[ids[0]]["top_label"] == rows[ids[0]]["results"]["clip"]["labels"][0]["label"]
    copies = duplicates(database, ids[0])
    assert copies.exact == [ids[2]]  # the same photo sent twice
    assert similar(database, ids[0], limit=1)[0].request_id == ids[2]  # and its vector is the nearest


def _sink_records(settings, photos, count: int, first: int = 0) -> list:
    """``count`` requests (numbered from ``first``), each with a CLIP result and an embedding, in mixed order."""
    now = now_ms()
    items: list = []
    for n in range(first, first + count):
        request = _request(photos[30 + n], f"{n:030x}ff", now - 1000 * n)
        items += [
            _clip(request.request_id, f"label {n}"),
            request,
            (request.request_id, _unit(np.arange(n, n + 16)), "m"),
        ]
    return [_as_record(settings, item) for item in items]


def test_a_rebuild_replays_kafka_into_a_new_index_version_and_switches_to_it(embedded_history, photos):
    settings = embedded_history
    create_topics(settings)
    database = open_database(settings)
    _produce(settings, _sink_records(settings, photos, 4))
    sink = Sink(settings, database)
    try:
        sink.drain()
        before = _rows(database)
        with database.transaction() as connection:
            connection.execute("DELETE FROM images_v1")  # lose the table (a bad migration, a new model …)
        assert _rows(database) == []

        assert rebuild(settings, database, idle_s=1.0) == 2
        assert _rows(database) == before  # the same rows, replayed from Kafka
        with database.connect() as connection:
            assert _states(connection) == {1: "retired", 2: "active"}

        _produce(settings, _sink_records(settings, photos, 1, first=10))  # the live sink now writes to version 2
        sink.drain(ends=sink.end_offsets())  # up to the new record: it may be rejoining after the rebuild's pause
        assert len(_rows(database)) == len(before) + 1

        # A row whose records the topics no longer hold (a broker restarted empty, retention.ms): a rebuild
        # would drop it, so it refuses, says how many and what to do, and leaves the active version as it was.
        with database.transaction() as connection:
            connection.execute("INSERT INTO images (request_id, filename) VALUES ('gone', 'gone.jpg')")
        kept = _rows(database)
        with pytest.raises(ReplayIncomplete, match=r"met 5 of the 6 rows .* version 2: .* --allow-missing"):
            rebuild(settings, database, idle_s=1.0)
        assert _rows(database) == kept
        _produce(settings, _sink_records(settings, photos, 1, first=11))  # the refused version 3 takes no writes
        sink.drain()
        with database.connect() as connection:
            assert _states(connection) == {1: "retired", 2: "active", 3: "retired"}
            assert _named(connection, "SELECT count(*) AS stored FROM images_v3") == [{"stored": 5}]
        assert rebuild(settings, database, idle_s=1.0, allow_missing=True) == 4
        assert sorted(row["request_id"] for row in _rows(database)) == sorted(
            row["request_id"] for row in kept if row["request_id"] != "gone"
        ) + [f"{11:030x}ff"]
    finally:
        sink.close()


def test_after_a_model_change_reembedding_fills_a_new_index_version_with_the_new_models_vectors_only(
    embedded_history, photos, scorer
):
    from labkit.history.search import indexed_model
    from labkit.images import load_rgb

    settings = embedded_history
    create_topics(settings)
    database = open_database(settings)
    records = _sink_records(settings, photos, 4)  # the old model "m": labels and vectors
    ocr_only = ImageRequest("0" * 30 + "ee", photos[40].read_bytes(), "image/jpeg", tasks=("ocr",))
    _produce(settings, [*records, _as_record(settings, ocr_only)])
    sink = Sink(settings, database)
    try:
        sink.drain()
        before = {row["request_id"]: row for row in _rows(database)}
        assert indexed_model(database) == "m" and all(
            row["embedding_model"] == "m" for row in before.values() if row["request_id"] != ocr_only.request_id
        )

        assert rebuild(settings, database, reembed=True, scorer=scorer, idle_s=1.0, timeout_s=120) == 2
        assert indexed_model(database) == scorer.model_id
        after = {row["request_id"]: row for row in _rows(database)}
        assert after.keys() == before.keys()
        for request_id, row in after.items():
            # Requests and labels as they were: only the vectors changed.
            assert _without_vector(row) == _without_vector(before[request_id])
            if request_id == ocr_only.request_id:
                assert row["embedding_model"] is None  # meant for OCR only: CLIP never saw it, nor re-embedding
                continue
            photo = next(p for p in photos if p.name == row["filename"])
            expected = scorer.image_embeddings([scorer.preprocess(load_rgb(photo.read_bytes(), draft_side=224))])[0]
            stored = np.array(row["embedding"].strip("[]").split(","), dtype=np.float32)
            assert row["embedding_model"] == scorer.model_id and float(stored @ expected) > 0.999
        _, first_id, _, _ = records[0]  # a Kafka record (topic, key, value, headers): its key is the request id
        query = np.array(after[first_id]["embedding"].strip("[]").split(","), dtype=np.float32)
        assert nearest(database, query, scorer.model_id, limit=1)[0].request_id == first_id
        assert nearest(database, query, "m") == []  # the old model's vectors are not in the active version

        # A processor still on the old model: its vectors are not mixed in (the sink says why, once).
        _produce(settings, [_as_record(settings, ("1" * 30 + "ff", _unit(np.arange(16)), "m"))])
        sink.drain(ends=sink.end_offsets())
        assert sink.writer.other_model >= 1 and "1" * 30 + "ff" not in {row["request_id"] for row in _rows(database)}

        # The re-embedding group committed its offsets: run again in the same group, it has nothing left to do.
        again = reembed(settings, f"{sink.group_id}-reembed-v2", scorer, idle_s=0.5, timeout_s=60)
        assert again.embedded == 0 and again.model == scorer.model_id
    finally:
        sink.close()


@pytest.mark.parametrize("failpoint", ["after-consume:1", "before-commit:1"])
def test_the_sink_killed_mid_batch_loses_no_row_and_doubles_none(embedded_history, photos, tmp_path, failpoint):
    import os
    import signal
    import subprocess
    import sys

    settings = embedded_history
    create_topics(settings)
    database = open_database(settings)
    records = _sink_records(settings, photos, 5)
    _produce(settings, records)
    # labkit's session.timeout.ms (6 s, Apache Kafka's least) hands the dead member's partitions on soon after.
    env = {**os.environ, **settings.to_env(), "LABKIT_FAILPOINT": failpoint}
    log = tmp_path / "sink.log"
    with log.open("w") as output:
        doomed = subprocess.Popen([sys.executable, "-m", "labkit", "sink"], env=env, stdout=output, stderr=output)
        try:
            assert doomed.wait(90) == -signal.SIGKILL, log.read_text()[-2000:]
        finally:
            if doomed.poll() is None:
                doomed.kill()
    written = _rows(database)
    assert len(written) == (0 if failpoint.startswith("after") else 5)  # its transaction committed, or never began
    sink_lag = describe_topics(settings, [settings.results_topic], f"{settings.group_prefix}-sink")
    assert sum(row.lag or 0 for row in sink_lag) > 0 or all(
        row.committed is None for row in sink_lag
    )  # killed before its commit: the group has not moved

    rescuer = Sink(settings, database)  # the same group: it reads again from the last commit (none)
    try:
        rescuer.drain()
    finally:
        rescuer.close()
    assert rescuer.stats.written == len(records)  # the whole batch again
    rows = _rows(database)
    assert len(rows) == 5 and len({row["request_id"] for row in rows}) == 5
    assert all(
        row["results"]["clip"]["labels"][0]["label"] == row["top_label"] and row["embedding_model"] == "m"
        for row in rows
    )
    assert all(row["thumbnail"] for row in rows)
    if written:
        assert rows == written  # the redelivered batch changed nothing


def test_the_web_app_serves_the_history_search_similar_duplicates_and_thumbnails(
    embedded_history, start_processor, photos
):
    import httpx

    from conftest import WebServer, sink_on_a_thread

    settings = embedded_history  # (the queries behind the routes run on both databases in the tests above)
    start_processor()
    with sink_on_a_thread(settings) as sink, WebServer(settings) as web:
        sent = [photos[40], photos[41], photos[40]]
        ids = [httpx.post(f"{web.url}/api/images", files={"file": p.open("rb")}).json()["request_id"] for p in sent]
        deadline = time.monotonic() + 60
        while True:  # the sink writes each row a moment after its result
            listed = httpx.get(f"{web.url}/api/history").json()["images"]
            if len(listed) == 3 and all(hit["label"] and hit["model"] for hit in listed):
                break
            assert time.monotonic() < deadline, listed
            time.sleep(0.2)
        assert [hit["request_id"] for hit in listed] == ids[::-1]  # newest first
        page = httpx.get(f"{web.url}/api/history", params={"limit": 2}).json()  # asked once all three are in
        assert [hit["request_id"] for hit in page["images"]] == ids[:0:-1] and page["next"]
        rest = httpx.get(f"{web.url}/api/history", params={"limit": 2, "before": page["next"]}).json()
        assert [hit["request_id"] for hit in rest["images"]] == [ids[0]] and rest["next"] is None
        assert httpx.get(f"{web.url}/api/history", params={"before": "nonsense"}).status_code == 422

        thumb = httpx.get(f"{web.url}{listed[0]['thumbnail']}")
        assert thumb.status_code == 200 and thumb.headers["content-type"] == "image/jpeg"
        assert max(thumbnail_size(thumb.content)) <= 160

        similar_to = httpx.get(f"{web.url}/api/images/{ids[0]}/similar").json()["images"]
        assert similar_to[0]["request_id"] == ids[2] and similar_to[0]["score"] == pytest.approx(1, abs=2e-3)
        copies = httpx.get(f"{web.url}/api/images/{ids[0]}/duplicates").json()
        assert copies["exact"] == [ids[2]]  # the same bytes; `near` never repeats an exact copy
        # (the random test model maps different photos close together, so `near` may hold the other photo)
        assert all(hit["request_id"] == ids[1] and hit["score"] >= 0.95 for hit in copies["near"]), copies["near"]
        assert httpx.get(f"{web.url}/api/images/{'0' * 32}/similar").status_code == 404

        # The first text search loads the text tower (here the test model, exported on first use): slow once.
        query = {"q": "a photo of a dog", "min_score": -1}
        found = httpx.get(f"{web.url}/api/search", params=query, timeout=180).json()
        assert found["model"] == listed[0]["model"] and "random" in found["note"]
        assert {hit["request_id"] for hit in found["images"]} == set(ids) and found["text"] == []
        scores = [hit["score"] for hit in found["images"]]
        assert scores == sorted(scores, reverse=True)
        assert httpx.get(f"{web.url}/api/search", params={"q": ""}).status_code == 422
        assert "re-indexed" not in found["note"]  # the history holds this model's vectors

        # The history re-indexed for another model (as after `labkit sink --reembed` with it): the search says so.
        with sink.writer.database.transaction() as connection:
            connection.execute("UPDATE labkit_index SET embedding_model = 'another-model' WHERE state = 'active'")
        other = httpx.get(f"{web.url}/api/search", params=query, timeout=60).json()
        assert "holds another-model vectors" in other["note"] and "labkit sink --reembed" in other["note"]


def test_one_pool_of_connections_per_database_is_shared_by_everything_in_the_process(embedded_history):
    from labkit.history.database import _pool
    from labkit.web.history_api import HistoryService

    sink_side, web = open_database(embedded_history), HistoryService(embedded_history)
    web_side = web.database()
    assert _pool(sink_side) is _pool(web_side)
    with sink_side.connect() as connection:
        lent = connection.info.backend_pid
    with web_side.connect(autocommit=True) as connection:
        assert connection.info.backend_pid == lent and connection.autocommit  # the same connection, lent again
    # The server ends that connection (a restart, an idle timeout): the pool notices and lends a new one.
    with psycopg.connect(sink_side.url, autocommit=True) as other:
        other.execute("SELECT pg_terminate_backend(%s)", (lent,))
    with sink_side.connect() as connection:
        assert connection.info.backend_pid != lent and not connection.autocommit
    pool = _pool(sink_side)
    web.close()  # the web app's shutdown closes the process's pool; whoever connects next gets a new one
    assert pool.closed and _pool(sink_side) is not pool
    with sink_side.connect() as connection:
        assert _named(connection, "SELECT 1 AS answered") == [{"answered": 1}]


#: The modules that talk SQL to the history: every value they send goes as a parameter (or an sql.Literal in DDL).
SQL_MODULES = [
    *sorted(Path("labkit/history").glob("*.py")),
    Path("labkit/web/history_api.py"),
    Path("labkit/exercises/history.py"),
    Path("labkit/bench/history.py"),
]


@pytest.mark.parametrize("path", SQL_MODULES, ids=str)
def test_no_sql_statement_is_built_by_pasting_text_into_it(path):
    """No f-string or ``%`` in an SQL string: values (or names) pasted into a statement are quoting bugs and injection.

    Statements are constant text, composed with psycopg.sql (Identifier, Literal) if need be.
    """
    import ast

    root = Path(__file__).resolve().parents[1]
    pasted = []
    for node in ast.walk(ast.parse((root / path).read_text())):
        if isinstance(node, ast.Call) and node.args:
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            first = node.args[0]
            built = isinstance(first, ast.JoinedStr) or (
                isinstance(first, ast.BinOp) and isinstance(first.op, (ast.Mod, ast.Add))
            )
            if called in ("execute", "copy", "SQL") and built:
                pasted.append(f"line {node.lineno}: {ast.unparse(node)[:100]}")
    assert not pasted, "SQL built from text (use parameters, or psycopg.sql to compose names):\n" + "\n".join(pasted)
