"""What the HTTP API and the WebSocket show of an upload: each task's result, and its state.

One upload is answered by every task it asked for (``clip``, ``ocr``…), each with a result
record of its own. ``GET /api/images/{request_id}`` shows all of them in ``tasks`` and keeps the
fields it had before there were several tasks (``labels``, ``timings_ms``…) describing the
first registered task's result (CLIP's); a WebSocket gets each task's result as one message the
moment it arrives. Each result comes with ``shown``: what the task says to show of its answer
(:meth:`labkit.tasks.Task.show`), so the page draws any task without knowing it; the history
lists each stored result :func:`in_brief` (the task's own one-line summary, and ``shown``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from ..errors import WireFormatError
from ..records.wire import ScoreResult
from ..tasks import TASKS, Answer, Task, answer_of


@dataclass(frozen=True)
class Accepted:
    """An upload Kafka has acknowledged: what the 202 answers and the log line records."""

    request_id: str
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
            "request_id": self.request_id,
            "id": self.request_id,  # deprecated: the request id's name before 1.3 (results carry both until 2.0)
            "status": "processing",
            "tasks": list(self.tasks),
            "width": self.width,
            "height": self.height,
            "bytes_sent": self.bytes_sent,
            "result_url": f"/api/images/{self.request_id}",
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


def _read(result: ScoreResult) -> tuple[type[Task], Answer] | None:
    """A result's task and answer in the task's model; None for an error, a task unknown here or bad JSON."""
    task = TASKS.get(result.task)
    try:
        answer = answer_of(result) if task is not None else None
    except WireFormatError:  # the results listener skips such results; one made here by hand shows without rows
        return None
    return (task, answer) if task is not None and answer is not None else None


def shown(result: ScoreResult) -> dict | None:
    """What the page shows of an answer, as its task says: a title, a layout, the rows, the words for none.

    None for an error result, or for a task this web app does not know (its JSON is still there, under ``answer``).
    """
    read = _read(result)
    return _shown(*read) if read is not None else None


def _shown(task: type[Task], answer: Answer) -> dict:
    """An answer as its task shows it (:func:`shown`)."""
    rows = [row.model_dump() for row in task.show(answer)]
    return {"title": task.title, "layout": task.layout, "empty": task.empty, "rows": rows}


def in_brief(result: ScoreResult) -> dict:
    """A result as the history lists it: ``done`` or ``error``, its task's title, summary and ``shown``.

    ``summary`` is the task's own (:meth:`labkit.tasks.Task.summarize`); it is None for an error
    result (``error`` says why) and for a task this web app does not know (titled by its name).
    """
    read = _read(result)
    task = TASKS.get(result.task)
    return {
        "status": "done" if result.status == "ok" else "error",
        "title": task.title if task is not None else result.task,
        "summary": read[0].summarize(read[1]) if read is not None else None,
        "shown": _shown(*read) if read is not None else None,
        "error": result.error,
    }


def public_view(result: ScoreResult) -> dict:
    """A result as the HTTP API and WebSocket show it: ``done`` or ``error``, the task, and ``shown``."""
    return {**result.to_dict(), "status": "done" if result.status == "ok" else "error", "shown": shown(result)}


def answered(expected: Sequence[str], results: Mapping[str, ScoreResult]) -> bool:
    """Whether every expected task has answered (an error result is an answer)."""
    return all(task in results for task in expected)


def upload_view(
    request_id: str, expected: Sequence[str], results: Mapping[str, ScoreResult], filename: str | None = None
) -> dict:
    """``GET /api/images/{request_id}``: the first task's result at the top level, every one in ``tasks``.

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
    first = results.get(next(iter(TASKS)))  # before there were tasks, CLIP's result was the whole answer
    body = public_view(first) if first is not None else {"request_id": request_id, "id": request_id, "labels": []}
    errors = [result.error for result in mine if result.error]
    if first is None and errors:
        body["error"] = errors[0]
    if filename is not None:
        body["filename"] = filename
    return {**body, "status": status, "tasks": tasks}
