"""A model's vector index: HNSW while few, IVFFlat once many (rebuilt as they grow), and search uses it."""

from __future__ import annotations

import time

import numpy as np
from psycopg import sql
from psycopg.rows import dict_row

from conftest import sink_on_a_thread
from labkit.bench.history import Photos
from labkit.cli import main
from labkit.history import Sink, nearest, open_database
from labkit.history.schema import new_index_version
from labkit.history.search import nearest_query, tune_index_search
from labkit.history.sink import HistoryWriter
from labkit.history.vector_index import describe, fit_vector_indexes, hnsw_index_name, ivfflat_lists, ivfflat_probes
from labkit.kafka.admin import create_topics
from labkit.records.embeddings import ImageEmbedding

#: A threshold small enough for a test (labkit's default is measured at 1M: labkit bench section j).
MIN_ROWS = 3000


def test_lists_and_probes_follow_pgvectors_rule():
    assert [ivfflat_lists(n) for n in (500, 3000, 300_000, 1_000_000, 4_000_000)] == [1, 3, 300, 1000, 2000]
    assert [ivfflat_probes(n) for n in (3, 12, 300, 1000, 2000, 5000)] == [3, 10, 10, 10, 20, 50]


def _store(database, model: str, vectors: np.ndarray, first: int) -> None:
    HistoryWriter(database).write([ImageEmbedding(f"{model}-{first + n:06d}", model, v) for n, v in enumerate(vectors)])


def _indexes(database) -> dict[tuple[int, str], dict]:
    with database.connect() as connection:
        rows = connection.cursor(row_factory=dict_row).execute("SELECT * FROM labkit_vector_index").fetchall()
    return {(row["version"], row["model"]): row for row in rows}


def _index_names(database) -> set[str]:
    with database.connect() as connection:
        rows = connection.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'images_v%%'").fetchall()
    return {row[0] for row in rows}


def _plan(database, model: str, vector: np.ndarray) -> str:
    """EXPLAIN of the search query, run as search runs it (its index's search width set in the same transaction).

    Sequential scans are off: at a test's size the probes cover most lists, so a scan may rightly
    cost less; what is checked is that the query matches the model's index (its expression and
    predicate) and which index that is. At 1M the probes read 1 % of the lists (labkit bench j).
    """
    from pgvector import HalfVector

    params = {"q": HalfVector(vector), "model": model, "dim": vector.size, "exclude": None, "limit": 10}
    with database.connect() as connection:
        tune_index_search(connection, model, vector.size, 10)
        connection.execute("SET LOCAL enable_seqscan = off")
        rows = connection.execute(sql.SQL("EXPLAIN ") + nearest_query(vector.size), params).fetchall()
    return "\n".join(row[0] for row in rows)


def _recall(database, model: str, stored: np.ndarray, queries: np.ndarray) -> float:
    """Recall@10 of search against NumPy's exact answer over the ``stored`` vectors (as float16, as kept)."""
    scores = queries @ stored.astype(np.float16).astype(np.float32).T
    found = []
    for query, row in zip(queries, scores):
        exact = {f"{model}-{n:06d}" for n in np.argsort(-row)[:10]}
        found.append(len({hit.request_id for hit in nearest(database, query, model)} & exact) / 10)
    return float(np.mean(found))


def _wait(what: str, condition, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, f"not within {timeout_s} s: {what}"
        time.sleep(0.1)


def test_the_sink_switches_a_large_model_to_ivfflat_and_refits_it_as_it_grows(embedded_history, monkeypatch, capsys):
    settings = embedded_history.model_copy(update={"ivfflat_min_rows": MIN_ROWS})
    create_topics(settings)
    database = open_database(settings)
    photos = Photos()
    vectors = photos.draw(4 * MIN_ROWS, seed=11)
    _store(database, "model-a", vectors[:MIN_ROWS], 0)
    with database.transaction() as connection:  # a re-embedding under way: a second model, in its own version
        small = new_index_version(connection, True, "model-b")
    _store(database, "model-b", photos.draw(50, seed=12), 0)
    kinds = {key: row["kind"] for key, row in _indexes(database).items()}
    assert kinds == {(1, "model-a"): "hnsw", (small, "model-b"): "hnsw"}

    with sink_on_a_thread(settings, fit_every_s=0.2):
        _wait("model-a's vectors indexed with IVFFlat", lambda: _indexes(database)[(1, "model-a")]["kind"] == "ivfflat")
        fitted = _indexes(database)[(1, "model-a")]
        assert (fitted["lists"], fitted["rows_at_build"]) == (ivfflat_lists(MIN_ROWS), MIN_ROWS)
        names = _index_names(database)
        assert hnsw_index_name(1, "model-a", 512) not in names  # dropped: the planner has one choice
        assert f"images_v1_ivf{fitted['lists']}" in " ".join(names)
        assert _indexes(database)[(small, "model-b")]["kind"] == "hnsw"  # below the threshold
        assert hnsw_index_name(small, "model-b", 512) in names

        queries = photos.draw(20, seed=13)
        plan = _plan(database, "model-a", queries[0])
        assert "Index Scan using images_v1_ivf" in plan, plan
        assert _recall(database, "model-a", vectors[:MIN_ROWS], queries) >= 0.95

        # 4× the rows it was built on: rebuilt with more lists once the table's estimate knows (autovacuum's ANALYZE)
        _store(database, "model-a", vectors[MIN_ROWS:], MIN_ROWS)
        with database.connect() as connection:
            connection.execute("ANALYZE images_v1")
        _wait("model-a's IVFFlat rebuilt", lambda: _indexes(database)[(1, "model-a")]["rows_at_build"] == 4 * MIN_ROWS)
        refitted = _indexes(database)[(1, "model-a")]
        assert refitted["lists"] == ivfflat_lists(4 * MIN_ROWS) > fitted["lists"]
        old = f"images_v1_ivf{fitted['lists']}_"
        _wait("the old IVFFlat dropped", lambda: old not in " ".join(_index_names(database)))
        assert f"images_v1_ivf{refitted['lists']}_" in _plan(database, "model-a", queries[0])
        assert _recall(database, "model-a", vectors, queries) >= 0.95

    # `labkit sink --fit-index` counts exactly and says what it found: nothing more is due.
    monkeypatch.setenv("LABKIT_DATABASE_URL", settings.database_url.get_secret_value())
    monkeypatch.setenv("LABKIT_IVFFLAT_MIN_ROWS", str(MIN_ROWS))
    assert main(["sink", "--fit-index"]) == 0
    out = capsys.readouterr().out
    assert f"model model-a (512-d): {4 * MIN_ROWS:,} vectors: IVFFlat ({refitted['lists']} lists" in out, out
    assert "model model-b (512-d): 50 vectors: HNSW kept" in out, out


def test_without_pgvector_there_is_nothing_to_fit_and_below_the_threshold_hnsw_stays(history_settings):
    database = open_database(history_settings)
    vectors = Photos().draw(40, seed=3)
    _store(database, "model-a", vectors, 0)
    fittings = fit_vector_indexes(database, min_rows=1000, exact=True)
    hits = nearest(database, vectors[0], "model-a", limit=3)
    assert hits[0].request_id == "model-a-000000"
    if not database.has_vector:  # the machine's PostgreSQL: search is exact, no index to keep
        assert fittings == [] and "nothing to fit" in describe(fittings)[0]
        sink = Sink(history_settings, database)
        sink.close()
        assert sink.fitter is None
        return
    assert [(f.index.kind, f.action, f.rows) for f in fittings or []] == [("hnsw", "kept", 40)]
    assert "Index Scan using " + hnsw_index_name(1, "model-a", 512) in _plan(database, "model-a", vectors[0])
