"""What the HTTP API and the WebSocket show of an upload: each task's result, and the upload's state across its tasks.

One upload is answered by every task it asked for (``clip``, ``ocr``…), each with a result
record of its own. ``GET /api/images/{id}`` shows all of them in ``tasks`` and keeps the
fields it had before there were several tasks (``labels``, ``timings_ms``…) describing CLIP's
result; a WebSocket gets each task's result as one message the moment it arrives.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..records.wire import ScoreResult


@dataclass(frozen=True)
class Accepted:
    """An upload Kafka has acknowledged: what the 202 answers and the log line records."""

    id: str
    filename: str | None
    width: int
    height: int
    original_bytes: int
    bytes_sent: int
    reencoded: bool
    partition: int
    offset: int
    tasks: tuple[str, ...]  # the tasks that will answer it

    def body(self) -> dict:
        return {
            "id": self.id,
            "status": "processing",
            "tasks": list(self.tasks),
            "width": self.width,
            "height": self.height,
            "bytes_sent": self.bytes_sent,
            "result_url": f"/api/images/{self.id}",
        }


@dataclass(frozen=True)
class Health:
    """What ``GET /healthz`` answers: healthy while the results listener runs."""

    ok: bool
    kafka: str
    pending: int
    results: int

    def body(self) -> dict:
        return {
            "status": "ok" if self.ok else "unhealthy",
            "kafka": self.kafka,
            "pending": self.pending,
            "results": self.results,
        }


#: A task's state while its result has not come: Kafka has the upload and the task's processors will score it.
WAITING = "processing"


def public_view(result: ScoreResult) -> dict:
    """A result as the HTTP API and the WebSocket show it: status ``done`` or ``error``, and the ``task`` that made it."""
    return {**result.to_dict(), "status": "done" if result.status == "ok" else "error"}


def answered(expected: Sequence[str], results: Mapping[str, ScoreResult]) -> bool:
    """Whether every expected task has answered (an error result is an answer)."""
    return all(task in results for task in expected)


def upload_view(
    request_id: str, expected: Sequence[str], results: Mapping[str, ScoreResult], filename: str | None = None
) -> dict:
    """``GET /api/images/{id}``'s answer: CLIP's result at the top level (as before tasks), every task in ``tasks``.

    ``status`` is ``processing`` until every expected task has answered, then ``error`` if all
    of them failed, else ``done`` (a task that failed says so in its own ``tasks`` entry). A
    task that answered without being expected (a third consumer group on the requests topic)
    is shown too.
    """
    tasks = {task: public_view(results[task]) if task in results else {"status": WAITING} for task in expected}
    tasks.update({task: public_view(result) for task, result in results.items() if task not in tasks})
    mine = [results[task] for task in expected if task in results]
    if not answered(expected, results):
        status = WAITING
    else:
        status = "error" if mine and all(result.status == "error" for result in mine) else "done"
    clip = results.get("clip")
    body = public_view(clip) if clip is not None else {"id": request_id, "labels": []}
    errors = [result.error for result in mine if result.error]
    if clip is None and errors:
        body["error"] = errors[0]
    if filename is not None:
        body["filename"] = filename
    return {**body, "status": status, "tasks": tasks}
