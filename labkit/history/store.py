"""Writing the history: one upsert per kind of record, idempotent, independent of the streams' order.

Each stream owns its own columns of the one row per request id, and only fills them:

* a **request** (``image-requests``) sets the thumbnail, content hash, size and filename — the
  same record gives the same values, so a redelivery changes nothing;
* a **result** (``image-results``) adds its task's entry to ``results`` unless that task
  already has a successful one (results are delivered at least once: the first ``ok`` wins, and
  an ``ok`` replaces an earlier error); the task's search columns (CLIP's top label, OCR's
  text) are filled as the task says (``labkit.tasks``);
* an **embedding** (``image-embeddings``) sets the vector and the model that made it.

Whichever arrives first inserts the row (``INSERT … ON CONFLICT (request_id) DO UPDATE``), so a
result may land before its request, and nothing is lost or doubled.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
from dataclasses import asdict, dataclass
from datetime import datetime, timezone

import numpy as np
from PIL import Image
from psycopg import sql

from ..errors import WireFormatError
from ..images import load_rgb
from ..records.embeddings import ImageEmbedding
from ..records.wire import ImageRequest, ScoreResult
from ..tasks import TASKS, answer_of
from .schema import table_id

log = logging.getLogger(__name__)

#: The longest side of the thumbnail kept for each request (the history page shows them small).
THUMBNAIL_SIDE = 160


@dataclass(frozen=True)
class RequestRow:
    """What a request record contributes to its row."""

    request_id: str
    sent_at: datetime
    filename: str | None
    content_type: str
    size_bytes: int
    width: int | None
    height: int | None
    content_sha256: bytes
    thumbnail: bytes | None


def request_row(request: ImageRequest, side: int = THUMBNAIL_SIDE) -> RequestRow:
    """A request's row fields: a small JPEG thumbnail (None if it does not decode), its hash and size."""
    width: int | None
    height: int | None
    try:
        image = load_rgb(request.image, draft_side=side)
        width, height = image.size
        image.thumbnail((side, side))
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=80)
        thumbnail: bytes | None = buffer.getvalue()
    except Exception:  # a record no task can read still has a place in the history, without a picture
        width = height = None
        thumbnail = None
    return RequestRow(
        request_id=request.request_id,
        sent_at=datetime.fromtimestamp(request.sent_at_ms / 1000, tz=timezone.utc),
        filename=request.filename,
        content_type=request.content_type,
        size_bytes=len(request.image),
        width=width,
        height=height,
        content_sha256=hashlib.sha256(request.image).digest(),
        thumbnail=thumbnail,
    )


def put_request(connection, version: int, row: RequestRow) -> None:
    """Upsert a request's columns (each value a parameter named after its field)."""
    connection.execute(
        sql.SQL(
            """INSERT INTO {table} AS t (request_id, sent_at, filename, content_type, size_bytes, width, height,
                                         content_sha256, thumbnail)
               VALUES (%(request_id)s, %(sent_at)s, %(filename)s, %(content_type)s, %(size_bytes)s, %(width)s,
                       %(height)s, %(content_sha256)s, %(thumbnail)s)
               ON CONFLICT (request_id) DO UPDATE SET sent_at = EXCLUDED.sent_at, filename = EXCLUDED.filename,
                   content_type = EXCLUDED.content_type, size_bytes = EXCLUDED.size_bytes, width = EXCLUDED.width,
                   height = EXCLUDED.height, content_sha256 = EXCLUDED.content_sha256, thumbnail = EXCLUDED.thumbnail"""
        ).format(table=table_id(version)),
        asdict(row),
    )


def put_result(connection, version: int, result: ScoreResult) -> None:
    """Add a task's result to its row (unless that task already succeeded); fill the task's search columns.

    The whole result goes into ``results`` (JSONB, by task); the columns search reads (CLIP's top
    label, OCR's text…) are the ones the task declares (``Task.history_columns``) with the values
    it gives (``Task.history_values``). A task this sink does not know is kept in ``results`` only.
    """
    task = TASKS.get(result.task)
    try:
        answer = answer_of(result) if task is not None else None
    except WireFormatError as exc:  # kept as it came, in ``results``; its search columns stay empty
        log.warning("%s; its search columns stay empty", exc)
        answer = None
    values = task.history_values(answer) if task is not None and answer is not None else {}
    columns = list(task.history_columns) if task is not None else []
    keep_old = sql.SQL("t.results -> {task}::text ->> 'status' = 'ok'").format(task=sql.Placeholder("task"))
    updates = [
        sql.SQL("{col} = CASE WHEN {keep_old} THEN t.{col} ELSE EXCLUDED.{col} END").format(
            col=sql.Identifier(column), keep_old=keep_old
        )
        for column in columns
    ]
    query = sql.SQL(
        """INSERT INTO {table} AS t (request_id, results{columns})
           VALUES (%(request_id)s, jsonb_build_object(%(task)s::text, %(entry)s::jsonb){values})
           ON CONFLICT (request_id) DO UPDATE SET
               results = CASE WHEN {keep_old} THEN t.results ELSE t.results || EXCLUDED.results END{updates}"""
    ).format(
        table=table_id(version),
        columns=sql.SQL("").join(sql.SQL(", ") + sql.Identifier(column) for column in columns),
        values=sql.SQL("").join(sql.SQL(", ") + sql.Placeholder(f"column_{column}") for column in columns),
        keep_old=keep_old,
        updates=sql.SQL("").join(sql.SQL(",\n               ") + update for update in updates),
    )
    connection.execute(
        query,
        {
            "request_id": result.request_id,
            "task": result.task,
            "entry": json.dumps(result.to_dict()),
            **{f"column_{column}": values.get(column) for column in columns},
        },
    )


def put_embedding(connection, version: int, embedding: ImageEmbedding, has_vector: bool) -> None:
    """Set a row's image embedding and its model: pgvector's halfvec, or float16 bytes without pgvector.

    With pgvector, the model's vector index must exist first (``vector_index.ensure_vector_index``: the sink's job).
    """
    if has_vector:
        from pgvector import HalfVector

        stored: object = HalfVector(embedding.vector)
    else:
        stored = np.asarray(embedding.vector, dtype="<f2").tobytes()
    connection.execute(
        sql.SQL(
            """INSERT INTO {table} AS t (request_id, embedding, embedding_model) VALUES (%s, %s, %s)
               ON CONFLICT (request_id) DO UPDATE SET embedding = EXCLUDED.embedding,
                   embedding_model = EXCLUDED.embedding_model"""
        ).format(table=table_id(version)),
        (embedding.request_id, stored, embedding.model),
    )


def thumbnail_size(data: bytes) -> tuple[int, int]:
    """A stored thumbnail's pixel size (for tests and the page)."""
    return Image.open(io.BytesIO(data)).size
