"""Which ANN index a model's vectors have: HNSW while few, IVFFlat once many, fitted to their count.

Every model's vectors in an index version have one pgvector index of their own: a *partial*
index on ``embedding_model = <model>`` over ``embedding::halfvec(<dim>)`` (cosine distance).

* **HNSW** first: it needs no training, so it suits an empty or growing history, and at 100k
  vectors it finds 0.995 of the true top 10 in about a millisecond (``labkit bench`` section j).
  The sink creates it with the model's first vector (:func:`ensure_vector_index`).
* **IVFFlat** once the model has ``ivfflat_min_rows`` vectors: at 1M, HNSW (m 16,
  ef_construction 64) stays under recall 0.95 even at ef_search 200, while IVFFlat reaches 0.997
  in about 7 ms and builds ten times faster. IVFFlat learns its lists (k-means centres) from the
  rows present when it is built, so it is built once the rows are there, with pgvector's starting
  number of lists (:func:`ivfflat_lists`), and **rebuilt** once they have grown
  :data:`REFIT_GROWTH` times over; each build ends by dropping the index it replaces, so the
  planner has one choice. Search sets ``ivfflat.probes`` from the lists (:func:`ivfflat_probes`).

``labkit_vector_index`` records which index each (version, model, dimension) has. A sink member
checks it off its consume loop (:class:`IndexFitter`, a thread with a connection of its own);
``labkit sink --fit-index`` runs one check now. Builds use ``CREATE INDEX CONCURRENTLY``, so the
sink keeps writing meanwhile, and an advisory lock lets one process at a time build.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
import time
from dataclasses import dataclass

from psycopg import sql
from psycopg.rows import dict_row

from .database import Database
from .schema import LOCK_KEY, Conn, table, table_id

log = logging.getLogger(__name__)

#: Key of the advisory lock held by the one process that builds or replaces vector indexes.
BUILD_LOCK_KEY = LOCK_KEY + 1

#: An IVFFlat index is rebuilt (with more lists) once its model's rows are this many times those it was built on.
REFIT_GROWTH = 4

#: Seconds between two checks of the sink's :class:`IndexFitter`.
CHECK_EVERY_S = 60.0

#: PostgreSQL's ``maintenance_work_mem`` for a build: IVFFlat sorts every vector by its list (1M 512-d: ~1 GB).
BUILD_MEMORY = "1GB"


def ivfflat_lists(rows: int) -> int:
    """pgvector's starting point for ``lists``: rows / 1000 up to 1M rows, sqrt(rows) above (at least 1)."""
    return max(1, rows // 1000 if rows <= 1_000_000 else math.isqrt(rows))


def ivfflat_probes(lists: int) -> int:
    """``ivfflat.probes`` for ``lists`` lists: 10, or 1 % of the lists if more (at most all of them).

    ``labkit bench`` section j measured recall@10 0.997–0.998 at 10 of 1000 lists over 1M vectors, p50 6–7 ms
    (pgvector's own starting point, sqrt(lists), would be 32 there: about 3× the time for 0.999).
    """
    return min(lists, max(10, lists // 100))


def _model_tag(model: str) -> str:
    return hashlib.sha1(model.encode()).hexdigest()[:10]


def hnsw_index_name(version: int, model: str, dim: int) -> str:
    """The HNSW index of a model's vectors in an index version: a name PostgreSQL takes for any model id."""
    return f"{table(version)}_hnsw_{_model_tag(model)}_{int(dim)}"


def ivfflat_index_name(version: int, model: str, dim: int, lists: int) -> str:
    """The IVFFlat index of a model's vectors with ``lists`` lists (a rebuild's new index has a new name)."""
    return f"{table(version)}_ivf{int(lists)}_{_model_tag(model)}_{int(dim)}"


@dataclass(frozen=True)
class VectorIndex:
    """One row of ``labkit_vector_index``: the index a model's vectors have in one index version."""

    version: int
    model: str
    dim: int
    kind: str  # 'hnsw' or 'ivfflat'
    lists: int | None = None
    rows_at_build: int | None = None

    @property
    def name(self) -> str:
        if self.kind == "ivfflat" and self.lists is not None:
            return ivfflat_index_name(self.version, self.model, self.dim, self.lists)
        return hnsw_index_name(self.version, self.model, self.dim)


def _on_model(kind: str, version: int, model: str, dim: int, name: str, with_: sql.Composable) -> sql.Composed:
    """CREATE INDEX over one model's vectors: the expression search orders by, limited to that model."""
    # DDL takes no parameters: the model's name goes in as an SQL literal, quoted by psycopg.
    return sql.SQL(
        "{create} {index} ON {table} USING {kind} ((embedding::halfvec({dim})) halfvec_cosine_ops) {with_} "
        "WHERE embedding_model = {model}"
    ).format(
        create=sql.SQL("CREATE INDEX CONCURRENTLY" if kind == "ivfflat" else "CREATE INDEX IF NOT EXISTS"),
        index=sql.Identifier(name),
        table=table_id(version),
        kind=sql.SQL(kind),
        dim=sql.Literal(int(dim)),
        with_=with_,
        model=sql.Literal(model),
    )


def ensure_vector_index(connection: Conn, version: int, model: str, dim: int) -> None:
    """Give a model's vectors an index: HNSW for a model seen for the first time (in the sink's write).

    Vectors of two models are never compared: the index, like every search, is limited to one
    ``embedding_model``, and its expression fixes the dimension. A model already recorded keeps
    the index it has (an IVFFlat the fitter built is not joined by a new HNSW).
    """
    new = connection.execute(
        "INSERT INTO labkit_vector_index (version, model, dim, kind) VALUES (%s, %s, %s, 'hnsw') "
        "ON CONFLICT DO NOTHING RETURNING kind",
        (version, model, int(dim)),
    ).fetchone()
    if new is not None:
        name = hnsw_index_name(version, model, dim)
        connection.execute(_on_model("hnsw", version, model, dim, name, sql.SQL("")))


def ivfflat_lists_of(connection: Conn, model: str, dim: int) -> int | None:
    """The lists of the active index version's IVFFlat index on ``model``'s vectors; None if it has HNSW."""
    row = connection.execute(
        "SELECT v.lists FROM labkit_vector_index v JOIN labkit_index i ON i.version = v.version "
        "WHERE i.state = 'active' AND v.model = %s AND v.dim = %s AND v.kind = 'ivfflat'",
        (model, int(dim)),
    ).fetchone()
    return row[0] if row else None


def build_ivfflat(connection: Conn, version: int, model: str, dim: int, rows: int) -> tuple[str, int]:
    """Build an IVFFlat index on a model's vectors concurrently, lists fitted to ``rows``; (name, lists).

    ``connection`` must be in autocommit (a concurrent build cannot run in a transaction). A build
    cut short leaves an invalid index of the same name: it is dropped first.
    """
    lists = ivfflat_lists(rows)
    name = ivfflat_index_name(version, model, dim, lists)
    connection.execute("SELECT set_config('maintenance_work_mem', %s, false)", (BUILD_MEMORY,))
    try:
        connection.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(name)))
        with_ = sql.SQL("WITH (lists = {})").format(sql.Literal(lists))
        connection.execute(_on_model("ivfflat", version, model, dim, name, with_))
    finally:
        connection.execute("RESET maintenance_work_mem")
    return name, lists


@dataclass
class Fitting:
    """What one check found, and did, for one model's vectors in one index version."""

    index: VectorIndex  # as it is after the check
    rows: int  # the model's vectors (an estimate from pg_class where ``estimated``)
    estimated: bool
    action: str  # 'kept', 'built' (HNSW → IVFFlat) or 'rebuilt' (more lists)
    seconds: float = 0.0
    replaced: str | None = None  # the index dropped

    def __str__(self) -> str:
        index = self.index
        about = "about " if self.estimated else ""
        head = f"index version {index.version}, model {index.model} ({index.dim}-d): {about}{self.rows:,} vectors"
        if self.action == "kept":
            if index.kind == "hnsw":
                return f"{head}: HNSW kept"
            return f"{head}: IVFFlat ({index.lists} lists, built on {index.rows_at_build:,}) kept"
        return (
            f"{head}: IVFFlat with {index.lists} lists {self.action} in {self.seconds:.1f} s "
            f"(probes {ivfflat_probes(index.lists or 1)}); {self.replaced} dropped"
        )


def registered(connection: Conn) -> list[VectorIndex]:
    """The indexes of every index version that takes writes (the active one, any being rebuilt)."""
    rows = connection.cursor(row_factory=dict_row).execute(
        "SELECT v.version, v.model, v.dim, v.kind, v.lists, v.rows_at_build FROM labkit_vector_index v "
        "JOIN labkit_index i ON i.version = v.version WHERE i.state <> 'retired' ORDER BY v.version, v.model, v.dim"
    )
    return [VectorIndex(**row) for row in rows]


def _count(connection: Conn, index: VectorIndex, needed: int, exact: bool) -> tuple[int, bool]:
    """The model's vectors, and whether that is an estimate.

    The table's row estimate (pg_class's, which autovacuum refreshes after every 20 % of new rows)
    bounds the model's count: while it is well under ``needed`` there is nothing to do and nothing
    is scanned. Only near it, or where the table has no estimate yet, are the model's rows counted.
    """
    if not exact:
        estimate = connection.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE oid = to_regclass(%s)", (table(index.version),)
        ).fetchone()
        if estimate is not None and 0 <= estimate[0] < 0.8 * needed:
            return int(estimate[0]), True
    counted = connection.execute(
        sql.SQL("SELECT count(*) FROM {} WHERE embedding_model = %s").format(table_id(index.version)),
        (index.model,),
    ).fetchone()
    return int(counted[0]) if counted else 0, False


def _fit_one(connection: Conn, index: VectorIndex, min_rows: int, exact: bool) -> Fitting:
    if index.kind == "ivfflat" and index.rows_at_build:
        needed = REFIT_GROWTH * index.rows_at_build
    else:
        needed = min_rows
    rows, estimated = _count(connection, index, needed, exact)
    if rows < needed:
        return Fitting(index, rows, estimated, "kept")
    started = time.perf_counter()
    name, lists = build_ivfflat(connection, index.version, index.model, index.dim, rows)
    fitted = VectorIndex(index.version, index.model, index.dim, "ivfflat", lists, rows)
    connection.execute(
        "UPDATE labkit_vector_index SET kind = 'ivfflat', lists = %s, rows_at_build = %s, built_at = now() "
        "WHERE version = %s AND model = %s AND dim = %s",
        (lists, rows, index.version, index.model, index.dim),
    )
    if index.name != name:
        connection.execute(sql.SQL("DROP INDEX CONCURRENTLY IF EXISTS {}").format(sql.Identifier(index.name)))
    action = "built" if index.kind == "hnsw" else "rebuilt"
    fitting = Fitting(fitted, rows, False, action, time.perf_counter() - started, index.name)
    log.info("history: %s", fitting)
    return fitting


def fit_vector_indexes(database: Database, min_rows: int, exact: bool = False) -> list[Fitting] | None:
    """One check of every model's index, building or rebuilding IVFFlat where due; what it found and did.

    None if another process holds the build lock (it is fitting them now). ``exact``: count every
    model's rows rather than trust the table's estimate. Without pgvector: nothing to fit, [].
    """
    if not database.has_vector:
        return []
    with database.own_connection() as connection:
        locked = connection.execute("SELECT pg_try_advisory_lock(%s)", (BUILD_LOCK_KEY,)).fetchone()
        if not locked or not locked[0]:
            return None
        try:
            return [_fit_one(connection, index, min_rows, exact) for index in registered(connection)]
        finally:
            connection.execute("SELECT pg_advisory_unlock(%s)", (BUILD_LOCK_KEY,))


class IndexFitter:
    """A daemon thread that runs :func:`fit_vector_indexes` every ``every_s`` seconds until stopped.

    It never holds up the sink's writes: it has a connection of its own, counts rows only when the
    table's estimate says a model may be due, and builds concurrently. A failed check is logged
    and tried again at the next one.
    """

    def __init__(self, database: Database, min_rows: int, every_s: float = CHECK_EVERY_S):
        self.database = database
        self.min_rows = min_rows
        self.every_s = every_s
        self.checks = 0
        self.last: list[Fitting] | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vector-index-fitter", daemon=True)

    def start(self) -> IndexFitter:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to stop: it ends after the check under way (a build cut off by exit is redone)."""
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.last = fit_vector_indexes(self.database, self.min_rows)
            except Exception as exc:  # the database is away, or a build failed: the next check tries again
                log.warning("history: checking the vector indexes failed (%s); next check in %.0f s", exc, self.every_s)
            self.checks += 1
            self._stop.wait(self.every_s)


def describe(fittings: list[Fitting] | None) -> list[str]:
    """Lines for a person: what a check found and did."""
    if fittings is None:
        return ["another labkit process is fitting the vector indexes now: nothing done; try again when it is done"]
    if not fittings:
        return ["no model's vectors are indexed here (no pgvector, or no embedding stored yet): nothing to fit"]
    return [str(fitting) for fitting in fittings]
