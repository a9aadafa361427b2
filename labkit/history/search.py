"""Reading the history: newest first, by text or by image ("find similar"), by OCR's words, duplicates.

Every vector search names one model and compares only that model's vectors: embeddings of two
models live in different spaces, and a cosine between them means nothing. With pgvector it
orders by ``<=>`` (cosine distance) over the model's index (HNSW, or IVFFlat once it holds many
vectors: :mod:`labkit.history.vector_index`; approximate, fast); without
pgvector it loads that model's vectors and ranks them exactly in NumPy (``exact=True`` forces
exact search on pgvector too, for recall checks).

Scores are cosine similarities (1 = the same direction). A text→image match of CLIP ViT-B/32
scores only about 0.25–0.35, an image→image match of the same subject 0.8 and more; the
``min_score`` cut-off drops what is below it, and every hit carries its score so a person can
judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import numpy as np
from psycopg import sql
from psycopg.rows import class_row, dict_row

from .database import Database
from .schema import index_model
from .vector_index import ivfflat_lists_of, ivfflat_probes

#: Cosine distance under which two images count as near-duplicates (the same photo re-encoded,
#: resized or lightly cropped), as opposed to merely similar (the same subject).
NEAR_DUPLICATE_DISTANCE = 0.05

#: pgvector's ``hnsw.ef_search`` for searches (its default is 40): ``labkit bench`` section j measured recall@10
#: 0.88–0.93 at 40 and 0.995–0.997 at 100 over 100k vectors (two builds of the index), p50 under 4 ms at 100.
EF_SEARCH = 100

#: The columns a :class:`Hit` is made of, named as its fields (``class_row(Hit)`` builds one from each row).
_HIT = sql.SQL(
    "request_id, sent_at, filename, top_label, top_score, ocr_text, thumbnail, results, embedding_model AS model"
)


@dataclass
class Hit:
    """One stored request, as search and history return it."""

    request_id: str
    sent_at: datetime | None
    filename: str | None
    top_label: str | None
    top_score: float | None
    ocr_text: str | None
    thumbnail: bytes | None
    results: dict[str, Any] = field(default_factory=dict)
    model: str | None = None  # the model its vector came from
    score: float | None = None  # cosine similarity for vector searches, text rank for OCR search


def _hits(connection, query: sql.Composable, params: Any) -> list[Hit]:
    """The rows of ``query`` as hits, each column given to the :class:`Hit` field of its name."""
    return connection.cursor(row_factory=class_row(Hit)).execute(query, params).fetchall()


def history(database: Database, limit: int = 20, before: tuple[datetime, str] | None = None) -> list[Hit]:
    """The newest ``limit`` requests, newest first.

    ``before``: the (sent_at, request_id) of the previous page's last hit.
    """
    after = sql.SQL("AND (sent_at, request_id) < (%(sent_at)s, %(request_id)s)" if before else "")
    sent_at, request_id = before or (None, None)
    with database.connect() as connection:
        return _hits(  # only requests that have arrived (a result may come before its request)
            connection,
            sql.SQL(
                "SELECT {hit} FROM images WHERE sent_at IS NOT NULL {after} "
                "ORDER BY sent_at DESC, request_id DESC LIMIT %(limit)s"
            ).format(hit=_HIT, after=after),
            {"sent_at": sent_at, "request_id": request_id, "limit": limit},
        )


def indexed_model(database: Database) -> str | None:
    """The embedding model whose vectors the active index version holds (None before its first embedding)."""
    with database.connect() as connection:
        return index_model(connection)


def get(database: Database, request_id: str) -> Hit | None:
    """One stored request, or None."""
    with database.connect() as connection:
        found = _hits(connection, sql.SQL("SELECT {} FROM images WHERE request_id = %s").format(_HIT), (request_id,))
    return found[0] if found else None


def nearest(
    database: Database,
    vector: np.ndarray,
    model: str,
    limit: int = 10,
    min_score: float = -1.0,
    exclude: str | None = None,
    exact: bool = False,
) -> list[Hit]:
    """The stored images of ``model`` nearest to ``vector`` (a unit vector of that model), best first."""
    vector = np.asarray(vector, dtype=np.float32).ravel()
    if database.has_vector and not exact:
        return _nearest_pgvector(database, vector, model, limit, min_score, exclude)
    return _nearest_exact(database, vector, model, limit, min_score, exclude)


def _nearest_pgvector(database, vector, model, limit, min_score, exclude) -> list[Hit]:
    from pgvector import HalfVector

    params = {"q": HalfVector(vector), "model": model, "dim": int(vector.size), "exclude": exclude, "limit": limit}
    with database.connect() as connection:
        tune_index_search(connection, model, int(vector.size), limit)
        hits = _hits(connection, nearest_query(int(vector.size)), params)
    return [hit for hit in hits if hit.score is not None and hit.score >= min_score]


def nearest_query(dim: int) -> sql.Composed:
    """A vector search's query (parameters: q, model, dim, exclude, limit), ordered by the model's index."""
    # The expression the model's index is built on, to the letter: a cast's dimension is part of the
    # type, not a value, so it is written into the query (as a literal) while the vector itself is a parameter.
    distance = sql.SQL("embedding::halfvec({dim}) <=> %(q)s::halfvec({dim})").format(dim=sql.Literal(int(dim)))
    return sql.SQL(
        """SELECT {hit}, 1 - ({distance}) AS score FROM images
           WHERE embedding_model = %(model)s AND vector_dims(embedding) = %(dim)s
             AND request_id IS DISTINCT FROM %(exclude)s
           ORDER BY {distance} LIMIT %(limit)s"""
    ).format(hit=_HIT, distance=distance)


def tune_index_search(connection, model: str, dim: int, limit: int) -> None:
    """Set the model's index search width for this transaction: ``ivfflat.probes``, or ``hnsw.ef_search``."""
    # SET LOCAL takes no parameters; set_config(…, true) is the same setting, for this transaction only.
    lists = ivfflat_lists_of(connection, model, dim)
    if lists is None:
        connection.execute("SELECT set_config('hnsw.ef_search', %s, true)", (str(max(EF_SEARCH, 2 * limit)),))
    else:
        connection.execute("SELECT set_config('ivfflat.probes', %s, true)", (str(ivfflat_probes(lists)),))


def _nearest_exact(database, vector, model, limit, min_score, exclude) -> list[Hit]:
    cast = sql.SQL("::text" if database.has_vector else "")  # pgvector's halfvec reads back as text '[…]'
    with database.connect() as connection:
        stored = (
            connection.cursor(row_factory=dict_row)
            .execute(
                sql.SQL(
                    "SELECT request_id, embedding{cast} AS embedding FROM images WHERE embedding_model = %s "
                    "AND embedding IS NOT NULL AND request_id IS DISTINCT FROM %s"
                ).format(cast=cast),
                (model, exclude),
            )
            .fetchall()
        )
        if not stored:
            return []
        matrix = np.stack([_vector(row["embedding"], database.has_vector) for row in stored])
        usable = matrix.shape[1] == vector.size
        scores = matrix @ vector if usable else np.full(len(stored), -np.inf)
        order = [i for i in np.argsort(-scores)[:limit] if scores[i] >= min_score]
        ids = [stored[i]["request_id"] for i in order]
        found = {
            hit.request_id: hit
            for hit in _hits(
                connection, sql.SQL("SELECT {} FROM images WHERE request_id = ANY(%s)").format(_HIT), (ids,)
            )
        }
    return [replace(found[stored[i]["request_id"]], score=float(scores[i])) for i in order]


def _vector(value: Any, from_text: bool) -> np.ndarray:
    if from_text:
        return np.array(value.strip("[]").split(","), dtype=np.float32)
    return np.frombuffer(value, dtype="<f2").astype(np.float32)


def embedding_of(database: Database, request_id: str) -> tuple[np.ndarray, str] | None:
    """A stored request's embedding and its model, or None if it has none (yet)."""
    cast = sql.SQL("::text" if database.has_vector else "")
    with database.connect() as connection:
        row = (
            connection.cursor(row_factory=dict_row)
            .execute(
                sql.SQL(
                    "SELECT embedding{cast} AS embedding, embedding_model FROM images "
                    "WHERE request_id = %s AND embedding IS NOT NULL"
                ).format(cast=cast),
                (request_id,),
            )
            .fetchone()
        )
    return (_vector(row["embedding"], database.has_vector), row["embedding_model"]) if row else None


def similar(database: Database, request_id: str, limit: int = 10, min_score: float = -1.0) -> list[Hit]:
    """The images most like a stored one ("find similar"), itself left out; [] if it has no embedding yet."""
    found = embedding_of(database, request_id)
    if found is None:
        return []
    vector, model = found
    return nearest(database, vector, model, limit, min_score, exclude=request_id)


def text_search(database: Database, query: str, limit: int = 20) -> list[Hit]:
    """Requests whose OCR text matches ``query`` (web-search syntax: words, "a phrase", -not), best first."""
    with database.connect() as connection:
        return _hits(
            connection,
            sql.SQL(
                """SELECT {hit}, ts_rank(ocr_tsv, q) AS score FROM images, websearch_to_tsquery('english', %s) AS q
                   WHERE ocr_tsv @@ q ORDER BY score DESC, sent_at DESC LIMIT %s"""
            ).format(hit=_HIT),
            (query, limit),
        )


@dataclass
class Duplicates:
    """Copies of one stored image: the same bytes, and the same picture re-encoded (near)."""

    exact: list[str]
    near: list[Hit]


def duplicates(database: Database, request_id: str, max_distance: float = NEAR_DUPLICATE_DISTANCE) -> Duplicates:
    """A stored image's duplicates: exact (same content hash) and near (embedding within ``max_distance``)."""
    with database.connect() as connection:
        exact = [
            row["request_id"]
            for row in connection.cursor(row_factory=dict_row).execute(
                "SELECT b.request_id FROM images a JOIN images b ON b.content_sha256 = a.content_sha256 "
                "AND b.request_id <> a.request_id WHERE a.request_id = %s ORDER BY b.sent_at",
                (request_id,),
            )
        ]
    near = similar(database, request_id, limit=50, min_score=1 - max_distance)
    return Duplicates(exact, [hit for hit in near if hit.request_id not in exact])
