"""The history over HTTP: newest first, search, "find similar", duplicates, thumbnails.

Search is by text (CLIP's text tower) and by the words OCR read.

Routes (all ``GET``; JSON unless said)
    ``/api/history?limit=&before=``         stored requests, newest first; ``before`` = the previous page's ``next``
    ``/api/search?q=&limit=&min_score=``    text → CLIP text embedding → the nearest images (``images``, with
                                            cosine scores over ``min_score``) and the OCR matches (``text``)
    ``/api/images/{request_id}/similar``    the images nearest to a stored one, itself left out
    ``/api/images/{request_id}/duplicates`` ``exact`` (same bytes) and ``near`` (the same picture re-encoded)
    ``/api/images/{request_id}/thumbnail``  the stored 160 px JPEG

The rows come from the sink (``labkit sink``), so an upload appears here once the sink has
written it, a moment after its results. Each hit names the ``model`` its vector came from; a
search compares only the vectors of the model this web app embeds queries with. The text
tower is loaded on the first text search, once, on a thread of its own.

Every hit carries each task's stored result in ``tasks``, as the task sums it up and shows it
(:func:`labkit.web.views.in_brief`), whatever the task; ``label`` and ``text`` are the history's
search columns (CLIP's top label, OCR's text). What each route takes and answers, errors
included, is declared in :mod:`labkit.web.contract`, which ``/openapi.json`` is made from.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from fastapi import APIRouter, HTTPException, Query, Response
from pydantic import ValidationError

from ..config import Settings
from ..errors import LabkitError
from ..records.serde import validation_problem
from ..records.wire import ScoreResult
from ..tasks import TASKS
from .contract import (
    REQUEST_ID_PATTERN,
    Copies,
    Cursor,
    FoundImage,
    HistoryPage,
    KeptResult,
    RequestId,
    SearchFound,
    SearchText,
    Similar,
    StoredImage,
    problems,
)
from .views import in_brief

log = logging.getLogger(__name__)

#: The relevance cut-off of a text search when the caller names none: CLIP ViT-B/32 scores a
#: caption that fits a photo about 0.25–0.35 (cosine), one that does not about 0.1–0.2.
DEFAULT_MIN_SCORE = 0.2


class HistoryService:
    """The database and the text tower, opened on first use (the web app starts without either)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._database: Any = None
        self._scorer: Any = None

    def database(self):
        with self._lock:
            if self._database is None:
                from ..history import open_database

                try:
                    self._database = open_database(self.settings)
                except LabkitError as exc:
                    raise HTTPException(
                        503, f"The history is not available: {exc}", headers={"Retry-After": "5"}
                    ) from None
            return self._database

    def close(self) -> None:
        """Close this process's pool of connections to the history (when the app shuts down)."""
        with self._lock:
            if self._database is not None:
                self._database.close()
                self._database = None

    def embed_text(self, text: str):
        """The query's unit CLIP text embedding (prompt templates averaged, as labels are) and its model id."""
        with self._lock:
            if self._scorer is None:
                from ..clip import build_scorer

                self._scorer = build_scorer(self.settings)
        return self._scorer.label_embeddings([text])[0], self._scorer.model_id


def _kept(task: str, entry: dict) -> KeptResult:
    """One task's stored result as the history lists it (:func:`labkit.web.views.in_brief`)."""
    try:
        return KeptResult.model_validate(in_brief(ScoreResult.model_validate(entry)))
    except ValidationError as exc:  # kept by a sink of another labkit version: listed, and why it is not shown
        problem = f"kept in a form this web app cannot read ({validation_problem(exc)}): upgrade the web app"
        return KeptResult(status="error", title=task, summary=None, shown=None, error=problem)


def _tasks(results: dict[str, dict]) -> dict[str, KeptResult]:
    """Each task's result kept for a request, in registry order (then any task unknown here, by name)."""
    order = {name: n for n, name in enumerate(TASKS)}
    return {task: _kept(task, results[task]) for task in sorted(results, key=lambda t: (order.get(t, len(order)), t))}


def _stored(hit) -> StoredImage:
    """A hit as the history lists it (no score)."""
    return StoredImage(
        request_id=hit.request_id,
        id=hit.request_id,  # deprecated: its name before 1.3, as in results; gone in 2.0
        sent_at=hit.sent_at.isoformat() if hit.sent_at else None,
        filename=hit.filename,
        tasks=_tasks(hit.results or {}),  # every task's result, as the task sums it up and shows it
        # The history's search columns (CLIP's top label and OCR's text: indexes), as before there were tasks.
        label=hit.top_label,
        label_score=hit.top_score,
        text=hit.ocr_text,
        model=hit.model,
        thumbnail=f"/api/images/{hit.request_id}/thumbnail" if hit.thumbnail else None,
    )


def _hit(hit) -> FoundImage:
    """A hit as a search finds it: with its score."""
    return FoundImage(**dict(_stored(hit)), score=None if hit.score is None else round(hit.score, 4))


def _cursor(hit) -> str:
    return base64.urlsafe_b64encode(f"{hit.sent_at.isoformat()}|{hit.request_id}".encode()).decode()


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        sent_at, request_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|", 1)
        if not re.fullmatch(REQUEST_ID_PATTERN, request_id):
            raise ValueError(request_id)
        return datetime.fromisoformat(sent_at), request_id
    except (ValueError, UnicodeDecodeError):
        raise HTTPException(
            422, "`before` is not a cursor this API gave out: pass the `next` of the previous page."
        ) from None


def history_router(settings: Settings) -> tuple[APIRouter, HistoryService]:
    """The history routes and their service; the app's shutdown closes the service's pool of connections.

    Each request borrows a connection from the pool (``labkit.history.database``) for as long as its query runs.
    """
    service = HistoryService(settings)

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:  # FastAPI runs an included router's lifespan with the app's
        yield
        await asyncio.to_thread(service.close)

    router = APIRouter(lifespan=lifespan)

    @router.get("/api/history", operation_id="list_history", tags=["history"], responses=problems(422, 503))
    async def recent(
        limit: int = Query(20, ge=1, le=200, description="a whole number of images per page, 1 to 200"),
        before: Cursor = None,
    ) -> HistoryPage:
        """Stored images, newest first: pass a page's `next` as `before` for the page after it."""
        from ..history import history

        page = await asyncio.to_thread(
            history, await asyncio.to_thread(service.database), limit, _parse_cursor(before) if before else None
        )
        return HistoryPage(images=[_stored(h) for h in page], next=_cursor(page[-1]) if len(page) == limit else None)

    @router.get("/api/search", operation_id="search", tags=["history"], responses=problems(422, 503))
    async def search(
        q: SearchText,
        limit: int = Query(12, ge=1, le=100, description="a whole number of images, 1 to 100"),
        min_score: float = Query(
            DEFAULT_MIN_SCORE, ge=-1, le=1, description="a cosine similarity from -1 to 1 (the images' cut-off)"
        ),
    ) -> SearchFound:
        """The images nearest the text (CLIP's text tower) and those whose OCR text matches it."""
        from ..history.search import indexed_model, nearest, text_search

        database = await asyncio.to_thread(service.database)
        try:
            vector, model = await asyncio.to_thread(service.embed_text, q)
        except LabkitError as exc:
            raise HTTPException(
                503, f"Text search needs the CLIP model, which did not load: {exc}", headers={"Retry-After": "5"}
            ) from None
        images = await asyncio.to_thread(nearest, database, vector, model, limit, min_score)
        words = await asyncio.to_thread(text_search, database, q, limit)
        notes = []
        indexed = await asyncio.to_thread(indexed_model, database)
        if indexed is not None and indexed != model:
            notes.append(
                f"the history holds {indexed} vectors, and queries are embedded with {model}: no image can match "
                f"until the history is re-indexed with `labkit sink --reembed` (LABKIT_MODEL as this web app's)"
            )
        if settings.uses_test_model:
            notes.append(
                "the test-tiny model is random: its scores mean nothing (start with real CLIP weights to find dogs)"
            )
        return SearchFound(
            query=q,
            model=model,
            min_score=min_score,
            exact=not database.has_vector,
            images=[_hit(h) for h in images],
            text=[_hit(h) for h in words],
            note="; ".join(notes) or None,
        )

    @router.get(
        "/api/images/{request_id}/similar",
        operation_id="find_similar",
        tags=["history"],
        responses=problems(404, 422, 503),
    )
    async def similar_to(
        request_id: RequestId,
        limit: int = Query(12, ge=1, le=100, description="a whole number of images, 1 to 100"),
        min_score: float = Query(-1, ge=-1, le=1, description="a cosine similarity from -1 to 1"),
    ) -> Similar:
        """The stored images nearest to this one (itself left out)."""
        from ..history import similar
        from ..history.search import get

        database = await asyncio.to_thread(service.database)
        if await asyncio.to_thread(get, database, request_id) is None:
            raise HTTPException(404, f"No image {request_id!r} in the history (yet): is `labkit sink` running?")
        hits = await asyncio.to_thread(similar, database, request_id, limit, min_score)
        return Similar(request_id=request_id, images=[_hit(h) for h in hits])

    @router.get(
        "/api/images/{request_id}/duplicates",
        operation_id="find_duplicates",
        tags=["history"],
        responses=problems(422, 503),
    )
    async def copies_of(request_id: RequestId) -> Copies:
        """Stored copies of this image: the same bytes (`exact`), the same picture re-encoded (`near`)."""
        from ..history import duplicates

        found = await asyncio.to_thread(duplicates, await asyncio.to_thread(service.database), request_id)
        return Copies(request_id=request_id, exact=found.exact, near=[_hit(h) for h in found.near])

    @router.get(
        "/api/images/{request_id}/thumbnail",
        operation_id="get_thumbnail",
        tags=["history"],
        response_class=Response,
        responses={
            200: {
                "description": "The stored 160 px JPEG.",
                "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
            },
            **problems(404, 422, 503),
        },
    )
    async def thumbnail(request_id: RequestId) -> Response:
        """The stored 160 px JPEG of this image."""
        from ..history.search import get

        hit = await asyncio.to_thread(get, await asyncio.to_thread(service.database), request_id)
        if hit is None or not hit.thumbnail:
            raise HTTPException(404, f"No thumbnail of {request_id!r} in the history (yet).")
        return Response(bytes(hit.thumbnail), media_type="image/jpeg", headers={"Cache-Control": "max-age=86400"})

    return router, service
