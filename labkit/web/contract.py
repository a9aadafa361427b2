"""The HTTP API's contract: its one error model, the ids and texts routes accept, each answer's model.

FastAPI builds ``/openapi.json`` from what is declared here, and answers through the same models, so
the document and the answers cannot drift apart (``tests/test_api_contract.py`` fuzzes every route
against the document). The field names are the API's as it has always answered: renaming one is a
breaking change.

* :class:`Problem` is every error's body, ``{"detail": "<what to do next>"}``; :func:`problems`
  documents the statuses a route answers with it, and their headers (``Retry-After``…).
* :data:`RequestId`, :data:`SearchText`, :data:`Cursor` are what a path or query may carry: a
  request id exactly as labkit makes them (:func:`labkit.records.wire.new_request_id`), and text
  without NUL or other control characters (PostgreSQL's ``text`` refuses NUL) or lone surrogates.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from ..ops.monitor import PartitionLag
from ..records.wire import LabelScore, TextLine, Timings
from ..tasks.base import Shown

# --- errors --------------------------------------------------------------------------------------------------------


class Problem(BaseModel):
    """Every error's body: one sentence that says what went wrong and what to send or do instead."""

    detail: str = Field(description="what went wrong, and what to send or do instead", examples=["Send …"])


#: Why each status is answered, as the document says it.
WHY = {
    400: "The body is not a multipart form this API can read.",
    401: "The API token is missing or wrong (`Authorization: Bearer <token>`; LABKIT_API_TOKEN on the server).",
    403: "A page on another web site sent it.",
    404: "No such image here (yet).",
    413: "The upload is over the size limit.",
    415: "The file is not a JPEG, PNG, WebP or GIF image.",
    422: "A parameter, or a field of the form, is not acceptable: `detail` says which, and what to send.",
    429: "Too many uploads are waiting for results here: try again after `Retry-After` seconds.",
    503: "Kafka or the history did not answer: try again after `Retry-After` seconds.",
}
RETRY_AFTER = {"description": "Seconds to wait before trying again.", "schema": {"type": "integer", "minimum": 1}}
#: The headers each error status is sent with.
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"description": "`Bearer`: send the API token.", "schema": {"type": "string"}}},
    429: {"Retry-After": RETRY_AFTER},
    503: {"Retry-After": RETRY_AFTER},
}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """``responses=`` for a route that answers ``statuses`` with a :class:`Problem` (and its headers)."""
    return {
        status: {"model": Problem, "description": WHY[status]}
        | (
            {"headers": {name: {**spec, "required": True} for name, spec in HEADERS[status].items()}}
            if status in HEADERS
            else {}
        )
        for status in statuses
    }


# --- what a path or query may carry ---------------------------------------------------------------------------------

#: A request id as labkit makes them: ``uuid.uuid4().hex`` (:func:`labkit.records.wire.new_request_id`).
REQUEST_ID_PATTERN = r"^[0-9a-f]{32}$"
#: Text without control characters (NUL, newlines, tabs, DEL); lone surrogates are refused by :func:`plain_text`.
TEXT_PATTERN = r"^[^\x00-\x1f\x7f]*$"


def odd_characters(text: str, allowed: str = "") -> bool:
    """Whether ``text`` holds a control character (NUL, DEL…) not in ``allowed``, or a lone surrogate."""
    return any(unicodedata.category(c) in ("Cc", "Cs") and c not in allowed for c in text)


def plain_text(text: str) -> str:
    """``text`` if it holds no control character and no lone surrogate; ValueError saying so otherwise."""
    if odd_characters(text):
        raise ValueError("it holds a control character (NUL, a newline…) or a lone surrogate")
    return text


RequestId = Annotated[
    str,
    Path(
        pattern=REQUEST_ID_PATTERN,
        description="the 32 lowercase hex characters an upload's `202` answered as `request_id`",
        examples=["0f8fad5bd9cb469fa16570867728950e"],
    ),
]
SearchText = Annotated[
    str,
    Query(
        min_length=1,
        max_length=200,
        pattern=TEXT_PATTERN,
        description="1 to 200 characters of text on one line (no control characters), e.g. `a photo of a dog`",
    ),
    AfterValidator(plain_text),
]
Cursor = Annotated[
    str | None,
    Query(
        max_length=200,
        pattern=r"^[A-Za-z0-9_-]+=*$",
        description="the `next` of the previous page, as it came (none for the first page)",
    ),
]

# --- answers ---------------------------------------------------------------------------------------------------------


class Answer(BaseModel):
    """The base of the answers' models: a field the code sets but the model lacks fails, not vanishes."""

    model_config = ConfigDict(extra="forbid")


class UploadAccepted(Answer):
    """``202``: Kafka has the image; each task's result follows on the WebSocket and at ``result_url``."""

    request_id: str = Field(description="the upload's id: subscribe to it on /ws, or poll `result_url`")
    id: str = Field(description="deprecated since 1.3: `request_id` under its old name; gone in 2.0")
    status: Literal["processing"]
    tasks: list[str] = Field(description="the tasks that will answer it")
    width: int
    height: int
    bytes_sent: int = Field(description="the image as sent to Kafka (a large photo is re-encoded smaller)")
    result_url: str
    partition: int = Field(description="where Kafka put it: the requests topic's partition…")
    offset: int = Field(description="…and offset (each result names the same)")


class TaskShown(Answer):
    """What the page shows of a task's answer: a title, a layout, rows, the words for none."""

    title: str
    layout: str
    empty: str
    rows: list[Shown]


class TaskResult(Answer):
    """One task's result as the API shows it (the result record's fields), or ``{"status": "processing"}``."""

    schema_version: int | None = Field(None, alias="schema", description="the result's wire-format major version")
    request_id: str | None = None
    status: Literal["processing", "done", "error"]
    task: str | None = None
    answer: dict[str, Any] | None = Field(None, description="the task's answer, in the task's own model")
    model: str | None = None
    error: str | None = None
    timings_ms: Timings | None = None
    batch_size: int | None = None
    processor: str | None = None
    partition: int | None = None
    offset: int | None = None
    produced_at_ms: int | None = None
    labels: list[LabelScore] | None = Field(None, description="deprecated since 1.3 (CLIP's answer.labels)")
    text: str | None = Field(None, description="deprecated since 1.3 (OCR's answer.text)")
    lines: list[TextLine] | None = Field(None, description="deprecated since 1.3 (OCR's answer.lines)")
    id: str | None = Field(None, description="deprecated since 1.3: `request_id` under its old name")
    shown: TaskShown | None = None

    model_config = ConfigDict(populate_by_name=True)


class ImageStatus(TaskResult):
    """``GET /api/images/{request_id}``: the first task's result at the top level, every one in ``tasks``."""

    filename: str | None = None
    tasks: dict[str, TaskResult] = Field(description='each task\'s result, or `{"status": "processing"}`')


class HealthState(Answer):
    """``GET /healthz``: ``ok`` (200) while the app listens for results, else ``unhealthy`` (503)."""

    status: Literal["ok", "unhealthy"]
    kafka: str
    pending: int = Field(description="uploads sent from here still awaiting a result")
    results: int = Field(description="results held for `GET /api/images/{request_id}`")


class TaskLook(Answer):
    title: str
    layout: str


class Tasks(Answer):
    """``GET /api/tasks``: the tasks this pipeline runs, in order, and how the page titles and draws each."""

    tasks: list[str]
    shown: dict[str, TaskLook]


class TopicState(Answer):
    exists: bool
    partitions: int
    end_offsets: list[int]


class Lag(Answer):
    topic: str
    records: int | None = Field(description="requests the group has not committed yet (null: not known)")
    seconds: float | None = Field(description="how long the oldest has waited (null: not read in time)")
    partitions: list[PartitionLag]


class Group(Answer):
    id: str
    members: dict[str, list[str]] | None = Field(description="client id → its partitions; null: not known")


class TaskGroup(Group):
    task: str
    lag: Lag


class Pipeline(Answer):
    """``GET /api/pipeline``: the topics, the processors' groups and their lag, from Kafka (≤ 1 s old)."""

    at: float = Field(description="when Kafka was asked (s since the epoch)")
    bootstrap: str
    topics: dict[str, TopicState]
    group: Group
    lag: Lag
    groups: list[TaskGroup]
    age_s: float


class KeptResult(Answer):
    """One task's result as the history keeps it: its state, title, summary and ``shown``."""

    status: Literal["done", "error"]
    title: str
    summary: str | None
    shown: TaskShown | None
    error: str | None


class StoredImage(Answer):
    """One image in the history, with each task's kept result and the history's search columns."""

    request_id: str
    id: str = Field(description="deprecated since 1.3: `request_id` under its old name; gone in 2.0")
    sent_at: str | None = Field(description="ISO 8601")
    filename: str | None
    tasks: dict[str, KeptResult]
    label: str | None = Field(description="CLIP's top label")
    label_score: float | None
    text: str | None = Field(description="the text OCR read")
    model: str | None = Field(description="the model its vector came from")
    thumbnail: str | None = Field(description="the URL of its 160 px JPEG")


class FoundImage(StoredImage):
    score: float | None = Field(description="cosine similarity (images) or text rank (text)")


class HistoryPage(Answer):
    """``GET /api/history``: stored images, newest first; ``next`` is the cursor of the page after."""

    images: list[StoredImage]
    next: str | None


class SearchFound(Answer):
    """``GET /api/search``: images nearest the text (``images``), those whose OCR text matches (``text``)."""

    query: str
    model: str = Field(description="the model the query was embedded with")
    min_score: float
    exact: bool = Field(description="true: an exact scan (no pgvector index)")
    images: list[FoundImage]
    text: list[FoundImage]
    note: str | None


class Similar(Answer):
    request_id: str
    images: list[FoundImage]


class Copies(Answer):
    request_id: str
    exact: list[str] = Field(description="request ids of the same bytes")
    near: list[FoundImage] = Field(description="the same picture re-encoded")
