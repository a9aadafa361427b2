"""Writing the history: one upsert per kind of record, each idempotent and independent of the order the streams arrive in.

Each stream owns its own columns of the one row per request id, and only fills them:

* a **request** (``image-requests``) sets the thumbnail, content hash, size and filename — the
  same record gives the same values, so a redelivery changes nothing;
* a **result** (``image-results``) adds its task's entry to ``results`` unless that task
  already has a successful one (results are delivered at least once: the first ``ok`` wins, and
  an ``ok`` replaces an earlier error); CLIP's top label and OCR's text are copied out for
  search;
* an **embedding** (``image-embeddings``) sets the vector and the model that made it.

Whichever arrives first inserts the row (``INSERT … ON CONFLICT (request_id) DO UPDATE``), so a
result may land before its request, and nothing is lost or doubled.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from datetime import datetime, timezone

import numpy as np
from PIL import Image

from ..images import load_rgb
from ..records.embeddings import ImageEmbedding
from ..records.wire import ImageRequest, ScoreResult
from .schema import table

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
    """A request's row fields: a small JPEG thumbnail (None if the image does not decode), its hash and size."""
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
        request_id=request.id,
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
    """Upsert a request's columns."""
    connection.execute(
        f"""INSERT INTO {table(version)} AS t (request_id, sent_at, filename, content_type, size_bytes, width, height,
                                            content_sha256, thumbnail)
            VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)
            ON CONFLICT (request_id) DO UPDATE SET sent_at = EXCLUDED.sent_at, filename = EXCLUDED.filename,
                content_type = EXCLUDED.content_type, size_bytes = EXCLUDED.size_bytes, width = EXCLUDED.width,
                height = EXCLUDED.height, content_sha256 = EXCLUDED.content_sha256, thumbnail = EXCLUDED.thumbnail""",
        (
            row.request_id,
            row.sent_at,
            row.filename,
            row.content_type,
            row.size_bytes,
            row.width,
            row.height,
            row.content_sha256,
            row.thumbnail,
        ),
    )


def put_result(connection, version: int, result: ScoreResult) -> None:
    """Add one task's result to its row, unless that task already has a successful one."""
    entry = result.to_dict()
    top = result.top() if result.status == "ok" and result.task == "clip" else None
    text = result.text if result.status == "ok" and result.task == "ocr" else None
    keep_old = "t.results -> %(task)s::text ->> 'status' = 'ok'"  # the first ok result of a task stands
    connection.execute(
        f"""INSERT INTO {table(version)} AS t (request_id, results, top_label, top_score, ocr_text)
            VALUES (%(id)s, jsonb_build_object(%(task)s::text, %(entry)s::jsonb), %(label)s::text, %(score)s::real, %(text)s::text)
            ON CONFLICT (request_id) DO UPDATE SET
                results = CASE WHEN {keep_old} THEN t.results ELSE t.results || EXCLUDED.results END,
                top_label = CASE WHEN {keep_old} OR %(task)s::text <> 'clip' THEN t.top_label ELSE EXCLUDED.top_label END,
                top_score = CASE WHEN {keep_old} OR %(task)s::text <> 'clip' THEN t.top_score ELSE EXCLUDED.top_score END,
                ocr_text = CASE WHEN {keep_old} OR %(task)s::text <> 'ocr' THEN t.ocr_text ELSE EXCLUDED.ocr_text END""",
        {
            "id": result.id,
            "task": result.task,
            "entry": json.dumps(entry),
            "label": top.label if top else None,
            "score": top.score if top else None,
            "text": text,
        },
    )


def put_embedding(connection, version: int, embedding: ImageEmbedding, has_vector: bool) -> None:
    """Set a row's image embedding and the model that made it (as pgvector's halfvec, or float16 bytes without it).

    With pgvector, the model's HNSW index must exist first (``schema.ensure_vector_index``; the sink sees to it).
    """
    if has_vector:
        from pgvector import HalfVector

        stored: object = HalfVector(embedding.vector)
    else:
        stored = np.asarray(embedding.vector, dtype="<f2").tobytes()
    connection.execute(
        f"""INSERT INTO {table(version)} AS t (request_id, embedding, embedding_model) VALUES (%s, %s, %s)
            ON CONFLICT (request_id) DO UPDATE SET embedding = EXCLUDED.embedding,
                embedding_model = EXCLUDED.embedding_model""",
        (embedding.request_id, stored, embedding.model),
    )


def thumbnail_size(data: bytes) -> tuple[int, int]:
    """A stored thumbnail's pixel size (for tests and the page)."""
    return Image.open(io.BytesIO(data)).size
