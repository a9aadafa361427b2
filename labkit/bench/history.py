"""The history's benchmarks: the sink's throughput, and vector search's latency and recall.

The sink is measured beside the pipeline's throughput; search exact (a scan) against HNSW and IVFFlat.

i. **Sink**: requests (real photo bytes), CLIP results and 512-d embeddings are produced to
   topics of the run's own, then one sink member writes them all from the start; records/s and
   requests/s, and the ratio to the pipeline's saturated throughput measured in the same run
   (the sink must never be the bottleneck: ratio > 1).
j. **Search**: ``n`` synthetic unit vectors (512-d, clustered like photo embeddings: a few
   hundred subjects, each varying along a few directions; :class:`Photos`) in a fresh database
   of the embedded PostgreSQL; for each size,
   exact search (a sequential scan), pgvector's HNSW index (``m=16, ef_construction=64``,
   ``ef_search`` 40, 100 and 200) and the IVFFlat index labkit switches a model to once it has
   ``ivfflat_min_rows`` vectors, built and probed as labkit does (:mod:`labkit.history.vector_index`:
   lists by pgvector's rule, probes from the lists): p50/p99 latency of single queries and
   recall@10 against NumPy's exact answer, and each index's build time and size.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from psycopg import sql
from psycopg.rows import dict_row

from ..config import Settings
from ..history import Sink, open_database
from ..history.database import release_embedded
from ..history.schema import table, table_id
from ..history.vector_index import build_ivfflat, ivfflat_probes
from ..kafka.admin import create_topics
from ..kafka.client_config import make_producer
from ..records.embeddings import encode_embedding
from ..records.serde import RESULTS
from ..records.wire import ImageRequest, LabelScore, ScoreResult
from .load import percentile

DIM = 512
#: The model name the search benchmark's vectors are stored under (its HNSW index covers this model only).
MODEL = "bench"


def sink_throughput(settings: Settings, photos: list[bytes], requests: int) -> dict:
    """Write ``requests`` uploads' three records each through one sink member, from the start; its speed."""
    tag = f"bench-sink-{uuid.uuid4().hex[:6]}"
    own = settings.model_copy(
        update={
            "requests_topic": f"{tag}-requests",
            "results_topic": f"{tag}-results",
            "embeddings_topic": f"{tag}-embeddings",
            "dead_letter_topic": f"{tag}-dlq",
            "group_prefix": tag,
        }
    )
    create_topics(own)
    vectors = Photos().draw(requests, seed=1)
    producer = make_producer(own, client_id="labkit-bench")
    for n in range(requests):
        request = ImageRequest(f"{n:024x}{uuid.uuid4().hex[:8]}", photos[n % len(photos)], "image/jpeg")
        producer.produce(own.requests_topic, key=request.key(), value=request.image, headers=request.headers())
        result = ScoreResult(
            request_id=request.request_id, status="ok", labels=[LabelScore(label="bench", score=1.0)], model="bench"
        )
        value, headers = RESULTS.serialize(result, own.results_topic)
        producer.produce(own.results_topic, key=request.key(), value=value, headers=headers)
        vector, vector_headers = encode_embedding(vectors[n], "bench")
        producer.produce(own.embeddings_topic, key=request.key(), value=vector, headers=vector_headers)
        producer.poll(0)
    producer.flush(60)
    with tempfile.TemporaryDirectory(prefix="labkit-bench-history-") as folder:
        database = open_database(own.model_copy(update={"database_url": None, "history_dir": Path(folder)}))
        sink = Sink(own, database)
        try:
            while not sink.assigned.is_set():
                sink.step(timeout=0.2)
            started = time.perf_counter()
            sink.drain(idle_s=1.0, timeout_s=600)
            seconds = time.perf_counter() - started - 1.0  # less the idle second that ends the drain
        finally:
            sink.close()
            release_embedded(Path(folder))  # stop its PostgreSQL before the folder goes
    return {
        "requests": requests,
        "records": sink.stats.written,
        "records_per_s": round(sink.stats.written / seconds, 1),
        "requests_per_s": round(requests / seconds, 1),
    }


class Photos:
    """Synthetic photo embeddings: ``themes`` subjects, each varying in its own few directions, plus noise.

    Real CLIP embeddings are not uniform on the sphere: photos of one subject cluster, and vary in a
    few ways (pose, light, crop). Queries are drawn from the same subjects, as a search for "a dog"
    is near the dogs. (Uniform random vectors would make every neighbour almost equally far: no
    index, and no person, could tell the top 10 apart.)
    """

    def __init__(self, seed: int = 2, themes: int = 300, ways: int = 16):
        rng = np.random.default_rng(seed)
        self.centres = rng.normal(size=(themes, DIM)).astype(np.float32) / np.sqrt(DIM)
        self.directions = (rng.normal(size=(themes, ways, DIM)) / np.sqrt(DIM)).astype(np.float32)
        self.ways = ways

    def draw(self, count: int, seed: int) -> np.ndarray:
        """``count`` unit vectors (in chunks: 1M × 512 at once would need several GB of temporaries)."""
        rng = np.random.default_rng(seed)
        out = np.empty((count, DIM), dtype=np.float32)
        for start in range(0, count, 50_000):
            size = min(50_000, count - start)
            theme = rng.integers(0, len(self.centres), size)
            spread = rng.normal(scale=0.5, size=(size, self.ways)).astype(np.float32)
            chunk = self.centres[theme] + np.einsum("nw,nwd->nd", spread, self.directions[theme])
            chunk += rng.normal(scale=0.02, size=(size, DIM)).astype(np.float32)
            out[start : start + size] = chunk / np.linalg.norm(chunk, axis=1, keepdims=True)
        return out


def _exact_top10(vectors: np.ndarray, queries: np.ndarray) -> list[set[int]]:
    found = []
    for query in queries:
        scores = vectors @ query
        found.append(set(np.argpartition(-scores, 10)[:10].tolist()))
    return found


#: The ``hnsw.ef_search`` values measured: pgvector's default (40), and wider searches that trade latency for recall.
EF_SEARCH = (40, 100, 200)


def search_benchmark(sizes: list[int], queries: int = 100) -> list[dict]:
    """Per size: load vectors, time exact search, build HNSW, time it at each EF_SEARCH; recall@10 of each."""
    with tempfile.TemporaryDirectory(prefix="labkit-bench-search-") as folder:
        try:
            return _search_rows(open_database(Settings(history_dir=Path(folder), database_url=None)), sizes, queries)
        finally:
            release_embedded(Path(folder))  # stop its PostgreSQL before the folder goes


def _search_rows(database, sizes: list[int], queries: int) -> list[dict]:
    """search_benchmark's measurements in ``database``, one row per size."""
    from pgvector import HalfVector

    rows = []
    if not database.has_vector:
        return [{"size": n, "note": "no pgvector: search benchmark skipped"} for n in sizes]
    name = table_id(1)
    index_name = table(1) + "_bench_hnsw"
    index = sql.Identifier(index_name)
    for size in sizes:
        photos = Photos()
        vectors, asked = photos.draw(size, seed=size), photos.draw(queries, seed=size + 1)
        truth = _exact_top10(vectors.astype(np.float16).astype(np.float32), asked)
        with database.connect(autocommit=True) as connection:
            connection.execute(sql.SQL("TRUNCATE {}").format(name))
            connection.execute(sql.SQL("DROP INDEX IF EXISTS {}").format(index))
            started = time.perf_counter()
            with connection.cursor() as cursor:
                with cursor.copy(
                    sql.SQL("COPY {} (request_id, embedding, embedding_model) FROM STDIN WITH (FORMAT BINARY)").format(
                        name
                    )
                ) as copy:
                    copy.set_types(["text", "halfvec", "text"])
                    for n, vector in enumerate(vectors):
                        copy.write_row([str(n), HalfVector(vector), MODEL])
            load_s = time.perf_counter() - started
            connection.execute(sql.SQL("ANALYZE {}").format(name))
            exact = _time_queries(connection, name, asked, truth, index=False)
            connection.execute("SET maintenance_work_mem = '4GB'")
            started = time.perf_counter()
            connection.execute(  # DDL takes no parameters: the model's name goes in as a literal, quoted by psycopg
                sql.SQL(
                    "CREATE INDEX {index} ON {table} USING hnsw ((embedding::halfvec({dim})) halfvec_cosine_ops) "
                    "WITH (m = 16, ef_construction = 64) WHERE embedding_model = {model}"
                ).format(index=index, table=name, dim=sql.Literal(DIM), model=sql.Literal(MODEL))
            )
            build_s = time.perf_counter() - started
            index_mb = _index_mb(connection, index_name)
            hnsw = {
                ef: _time_queries(connection, name, asked, truth, index=True, setting=("hnsw.ef_search", ef))
                for ef in EF_SEARCH
            }
            connection.execute(sql.SQL("DROP INDEX {}").format(index))  # one index at a time: the planner's only one
            started = time.perf_counter()
            ivfflat_name, lists = build_ivfflat(connection, 1, MODEL, DIM, size)  # as the sink's fitter builds it
            ivfflat_build_s = time.perf_counter() - started
            probes = ivfflat_probes(lists)
            ivfflat = _time_queries(connection, name, asked, truth, index=True, setting=("ivfflat.probes", probes))
            ivfflat_mb = _index_mb(connection, ivfflat_name)
            connection.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(ivfflat_name)))
        rows.append(
            {
                "size": size,
                "load_s": round(load_s, 1),
                "exact_p50_ms": exact["p50_ms"],
                "exact_p99_ms": exact["p99_ms"],
                "exact_recall": exact["recall"],
                "hnsw_build_s": round(build_s, 1),
                "hnsw_index_mb": round(index_mb, 1),
                **{f"hnsw{ef}_{k}": v for ef, row in hnsw.items() for k, v in row.items()},
                "ivfflat_lists": lists,
                "ivfflat_probes": probes,
                "ivfflat_build_s": round(ivfflat_build_s, 2),  # a small one takes milliseconds
                "ivfflat_index_mb": round(ivfflat_mb, 1),
                **{f"ivfflat_{k}": v for k, v in ivfflat.items()},
            }
        )
        del vectors
    return rows


def _index_mb(connection, index_name: str) -> float:
    row = connection.cursor(row_factory=dict_row).execute(
        "SELECT pg_relation_size(%s::regclass) AS bytes", (index_name,)
    )
    return row.fetchone()["bytes"] / 2**20


def _time_queries(
    connection,
    name: sql.Identifier,
    queries: np.ndarray,
    truth: list[set[int]],
    index: bool,
    setting: tuple[str, int] | None = None,
) -> dict:
    """p50/p99 of single top-10 queries and their recall@10 (the index on or off; ``setting``: its knob)."""
    from pgvector import HalfVector

    # SET takes no parameters; set_config(name, value, false) is the same, for the rest of the session.
    connection.execute("SELECT set_config('enable_indexscan', %s, false)", ("on" if index else "off",))
    if setting is not None:
        connection.execute("SELECT set_config(%s, %s, false)", (setting[0], str(int(setting[1]))))
    nearest = sql.SQL(
        "SELECT request_id FROM {table} WHERE embedding_model = %s "
        "ORDER BY embedding::halfvec({dim}) <=> %s::halfvec({dim}) LIMIT 10"
    ).format(table=name, dim=sql.Literal(DIM))
    times, recalls = [], []
    for query, expected in zip(queries, truth):
        started = time.perf_counter()
        got = connection.cursor(row_factory=dict_row).execute(nearest, (MODEL, HalfVector(query))).fetchall()
        times.append((time.perf_counter() - started) * 1000)
        recalls.append(len({int(row["request_id"]) for row in got} & expected) / 10)
    connection.execute("RESET enable_indexscan")
    return {
        "p50_ms": round(percentile(times, 50), 2),
        "p99_ms": round(percentile(times, 99), 2),
        "recall": round(float(np.mean(recalls)), 3),
    }
