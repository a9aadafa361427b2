"""Reading the history: newest first, by text (CLIP), by image ("find similar"), by the words OCR read, and duplicates.

Every vector search names one model and compares only that model's vectors: embeddings of two
models live in different spaces, and a cosine between them means nothing. With pgvector it
orders by ``<=>`` (cosine distance) over the model's HNSW index (approximate, fast); without
pgvector it loads that model's vectors and ranks them exactly in NumPy (``exact=True`` forces
exact search on pgvector too, for recall checks).

Scores are cosine similarities (1 = the same direction). A text→image match of CLIP ViT-B/32
scores only about 0.25–0.35, an image→image match of the same subject 0.8 and more; the
``min_score`` cut-off drops what is below it, and every hit carries its score so a person can
judge.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from .database import Database

#: Cosine distance under which two images count as near-duplicates (the same photo re-encoded,
#: resized or lightly cropped), as opposed to merely similar (the same subject).
NEAR_DUPLICATE_DISTANCE = 0.05

#: pgvector's ``hnsw.ef_search`` for searches (its default is 40): ``labkit bench`` section j measured recall@10
#: 0.88–0.93 at 40 and 0.995–0.997 at 100 over 100k vectors (two builds of the index), p50 under 4 ms at 100.
EF_SEARCH = 100

_ROW = "request_id, sent_at, filename, top_label, top_score, ocr_text, thumbnail, results, embedding_model"


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

    @classmethod
    def from_row(cls, row: tuple, score: float | None = None) -> "Hit":
        request_id, sent_at, filename, top_label, top_score, ocr_text, thumbnail, results, model = row[:9]
        return cls(
            request_id, sent_at, filename, top_label, top_score, ocr_text, thumbnail, results or {}, model, score
        )


def history(database: Database, limit: int = 20, before: tuple[datetime, str] | None = None) -> list[Hit]:
    """The newest ``limit`` requests, newest first; ``before``: the (sent_at, request_id) of the previous page's last hit."""
    where, params = ("AND (sent_at, request_id) < (%s, %s)", [*before]) if before else ("", [])
    with database.connect() as connection:
        rows = connection.execute(  # only requests that have arrived (a result may come before its request)
            f"SELECT {_ROW} FROM images WHERE sent_at IS NOT NULL {where} "
            "ORDER BY sent_at DESC, request_id DESC LIMIT %s",
            [*params, limit],
        ).fetchall()
    return [Hit.from_row(row) for row in rows]


def indexed_model(database: Database) -> str | None:
    """The embedding model whose vectors the active index version holds (None before its first embedding)."""
    from .schema import index_model

    with database.connect() as connection:
        return index_model(connection)


def get(database: Database, request_id: str) -> Hit | None:
    """One stored request, or None."""
    with database.connect() as connection:
        row = connection.execute(f"SELECT {_ROW} FROM images WHERE request_id = %s", (request_id,)).fetchone()
    return Hit.from_row(row) if row else None


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

    dim = int(vector.size)
    distance = f"embedding::halfvec({dim}) <=> %(q)s::halfvec({dim})"  # the expression the model's HNSW index is on
    with database.connect() as connection:
        connection.execute("SET LOCAL hnsw.ef_search = %s" % max(EF_SEARCH, 2 * limit))
        rows = connection.execute(
            f"""SELECT {_ROW}, 1 - ({distance}) AS score FROM images
                WHERE embedding_model = %(model)s AND vector_dims(embedding) = %(dim)s
                  AND request_id IS DISTINCT FROM %(exclude)s
                ORDER BY {distance} LIMIT %(limit)s""",
            {"q": HalfVector(vector), "model": model, "dim": dim, "exclude": exclude, "limit": limit},
        ).fetchall()
    return [Hit.from_row(row, float(row[9])) for row in rows if row[9] >= min_score]


def _nearest_exact(database, vector, model, limit, min_score, exclude) -> list[Hit]:
    with database.connect() as connection:
        cast = "::text" if database.has_vector else ""  # pgvector's halfvec reads back as text '[…]'
        stored = connection.execute(
            f"SELECT request_id, embedding{cast} FROM images WHERE embedding_model = %s AND embedding IS NOT NULL "
            "AND request_id IS DISTINCT FROM %s",
            (model, exclude),
        ).fetchall()
        if not stored:
            return []
        matrix = np.stack([_vector(value, database.has_vector) for _, value in stored])
        usable = matrix.shape[1] == vector.size
        scores = matrix @ vector if usable else np.full(len(stored), -np.inf)
        order = [i for i in np.argsort(-scores)[:limit] if scores[i] >= min_score]
        ids = [stored[i][0] for i in order]
        rows = {
            row[0]: row for row in connection.execute(f"SELECT {_ROW} FROM images WHERE request_id = ANY(%s)", (ids,))
        }
    return [Hit.from_row(rows[stored[i][0]], float(scores[i])) for i in order]


def _vector(value: Any, from_text: bool) -> np.ndarray:
    if from_text:
        return np.array(value.strip("[]").split(","), dtype=np.float32)
    return np.frombuffer(value, dtype="<f2").astype(np.float32)


def embedding_of(database: Database, request_id: str) -> tuple[np.ndarray, str] | None:
    """A stored request's embedding and its model, or None if it has none (yet)."""
    with database.connect() as connection:
        cast = "::text" if database.has_vector else ""
        row = connection.execute(
            f"SELECT embedding{cast}, embedding_model FROM images WHERE request_id = %s AND embedding IS NOT NULL",
            (request_id,),
        ).fetchone()
    return (_vector(row[0], database.has_vector), row[1]) if row else None


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
        rows = connection.execute(
            f"""SELECT {_ROW}, ts_rank(ocr_tsv, q) AS rank FROM images, websearch_to_tsquery('english', %s) AS q
                WHERE ocr_tsv @@ q ORDER BY rank DESC, sent_at DESC LIMIT %s""",
            (query, limit),
        ).fetchall()
    return [Hit.from_row(row, float(row[9])) for row in rows]


@dataclass
class Duplicates:
    """Copies of one stored image: the same bytes, and the same picture re-encoded (near)."""

    exact: list[str]
    near: list[Hit]


def duplicates(database: Database, request_id: str, max_distance: float = NEAR_DUPLICATE_DISTANCE) -> Duplicates:
    """Exact duplicates (same content hash) and near-duplicates (embedding within ``max_distance``) of a stored image."""
    with database.connect() as connection:
        exact = [
            row[0]
            for row in connection.execute(
                "SELECT b.request_id FROM images a JOIN images b ON b.content_sha256 = a.content_sha256 "
                "AND b.request_id <> a.request_id WHERE a.request_id = %s ORDER BY b.sent_at",
                (request_id,),
            )
        ]
    near = [hit for hit in similar(database, request_id, limit=50, min_score=1 - max_distance)]
    return Duplicates(exact, [hit for hit in near if hit.request_id not in exact])
