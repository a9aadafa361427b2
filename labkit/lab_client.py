"""LabClient: from Python, send images through the running pipeline and wait for each task's result.

This is what the notebooks use. It speaks to Kafka exactly like the web app (same
RequestSender and ResultsListener), so what you learn in a notebook is what the service does.

    with LabClient() as lab:
        result = lab.classify("photo.jpg")      # → ScoreResult (CLIP's labels in .answer)
        request_id = lab.submit("sign.png")     # every enabled task scores it (LABKIT_TASKS: clip, ocr)
        lab.wait(request_id, "ocr").answer      # → OCR's answer: {"text": …, "lines": […]}
        lab.wait_all(request_id)                # → {"clip": ScoreResult, "ocr": ScoreResult}
        lab.results_frame()                     # → pandas DataFrame of everything so far
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .config import Settings, load_settings
from .records.wire import ScoreResult
from .request_sender import RequestSender
from .results_listener import ResultsListener, ResultStore
from .tasks import TASKS, answer_of


class LabClient:
    """A producer of image requests plus a listener for their results, with blocking helpers."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self.results = ResultStore(self.settings.results_cache_size)
        self.sent: dict[str, str | None] = {}  # request id → filename, in sending order
        self.tasks: dict[str, tuple[str, ...]] = {}  # request id → the tasks it named (absent: every enabled task)
        self.arrived_s: dict[tuple[str, str], float] = {}  # (request id, task) → seconds after this client started
        self._started = time.monotonic()
        self._arrived = threading.Condition()
        self.listener = ResultsListener(self.settings, self._on_result, client_id="labkit-client-results").start()
        self.sender = RequestSender(self.settings, client_id="labkit-client")

    def _on_result(self, result: ScoreResult) -> None:
        if result.request_id in self.sent and self.results.add(result):
            self.arrived_s[(result.request_id, result.task)] = time.monotonic() - self._started
            with self._arrived:
                self._arrived.notify_all()

    def expected(self, request_id: str) -> tuple[str, ...]:
        """The tasks that answer ``request_id``: those its upload named, else all enabled (``LABKIT_TASKS``)."""
        return self.tasks.get(request_id, self.settings.enabled_tasks)

    def submit(
        self,
        image: bytes | str | Path,
        filename: str | None = None,
        labels: list[str] | None = None,
        timeout: float = 15,
        tasks: list[str] | None = None,
    ) -> str:
        """Send one image (bytes or a file path); returns its request id once Kafka has it.

        Optionally with your own candidate labels, and the tasks that should score it (default: every
        enabled task).
        """
        return self.submit_many([(image, filename)], labels, timeout, tasks)[0]

    def submit_many(
        self, images: list, labels: list[str] | None = None, timeout: float = 30, tasks: list[str] | None = None
    ) -> list[str]:
        """Send many images at once, and return their request ids once Kafka has acknowledged all of them.

        Each image is a path, bytes, or a (bytes or path, filename) pair.

        Faster than one ``submit`` after another: the producer batches records that are sent
        together, and we wait for all acknowledgements once, not once per image. ``tasks`` names
        the tasks that score them (``["clip"]``, ``["ocr"]``…; default: every enabled task).
        """
        pending = []  # the sender checks labels and tasks: a task nobody runs is refused by the first send, unsent
        for item in images:
            image, filename = item if isinstance(item, tuple) else (item, None)
            if not isinstance(image, bytes):
                filename = filename or Path(image).name
                image = Path(image).read_bytes()
            request, _, acked = self.sender.send(image, filename, labels, tasks)
            self.sent[request.request_id] = filename
            if request.tasks is not None:
                self.tasks[request.request_id] = request.tasks
            pending.append((request.request_id, acked))
        for _, acked in pending:
            acked.result(timeout)
        return [request_id for request_id, _ in pending]

    def wait(self, request_id: str, task: str = "clip", timeout: float = 60) -> ScoreResult:
        """Block until ``request_id``'s result from ``task`` arrives; TimeoutError says what to check."""
        if task not in self.expected(request_id):
            raise ValueError(
                f"{request_id} was sent for {', '.join(self.expected(request_id))}, so no {task!r} result will come: "
                f"wait for one of those, or submit it again with tasks=[{task!r}]"
            )
        return self._wait_for(request_id, (task,), timeout)[task]

    def wait_all(self, request_id: str, timeout: float = 60) -> dict[str, ScoreResult]:
        """Block until every task expected to score ``request_id`` has answered; returns {task: result}.

        An error result is an answer: one task failing never hides the others' results.
        """
        return self._wait_for(request_id, self.expected(request_id), timeout)

    def _wait_for(self, request_id: str, tasks: tuple[str, ...], timeout: float) -> dict[str, ScoreResult]:
        seen: dict[str, ScoreResult] = {}  # the results as the waiting condition saw them (the cache may evict them)

        def arrived() -> bool:
            seen.update(self.results.of(request_id))
            return all(task in seen for task in tasks)

        with self._arrived:
            if not self._arrived.wait_for(arrived, timeout):
                missing = [task for task in tasks if task not in seen]
                raise TimeoutError(
                    f"No {'/'.join(missing)} result for {request_id} within {timeout:.0f} s. Is a processor running "
                    f"for {'each of ' if len(missing) > 1 else ''}{', '.join(missing)} (`labkit processor --task "
                    f"{missing[0]}`, or `labkit topics describe` to see its group's lag)?"
                )
        return {task: seen[task] for task in tasks}

    def classify(self, image: bytes | str | Path, labels: list[str] | None = None, timeout: float = 60) -> ScoreResult:
        """Send one image to CLIP alone (other tasks skip it) and wait for its labels."""
        return self.wait(self.submit(image, labels=labels, tasks=["clip"]), "clip", timeout)

    def results_frame(self):
        """This client's results so far as a pandas DataFrame, one row per image.

        The first registered task's columns (CLIP's: ``top label``, ``probability``, ``labels``,
        ``total ms``…; empty until its result comes), its answer read as the task shows it
        (``Task.show``, ``Task.summarize``), then two per other task that answered: its answer as
        the task sums it up (OCR: the text it read) and its ``<task> ms``.
        """
        import pandas as pd

        first = next(iter(TASKS))  # CLIP: before there were tasks, its result was the whole row
        rows = []
        for request_id in self.sent:
            results = self.results.of(request_id)
            if not results:
                continue
            main = results.get(first)
            answer = answer_of(main) if main else None
            shown = TASKS[first].show(answer) if answer is not None else []
            top = shown[0] if shown else None
            row = {
                "request_id": request_id,
                "file": self.sent.get(request_id),
                "status": main.status if main else None,
                "top label": top.text if top else None,
                "probability": top.score if top else None,
                "labels": TASKS[first].summarize(answer) if answer is not None else None,
                "total ms": main.timings_ms.total if main else None,
                "inference ms": main.timings_ms.inference if main else None,
                "processor": main.processor if main else None,
                "batch": main.batch_size if main else None,
                "model": main.model if main else None,
                "arrived s": round(self.arrived_s.get((request_id, first), float("nan")), 3),
                "error": main.error if main else None,
            }
            for task, result in results.items():
                if task != first:
                    row[task] = _outcome(result)
                    row[f"{task} ms"] = result.timings_ms.total
            rows.append(row)
        return pd.DataFrame(rows)

    def close(self) -> None:
        self.sender.close()
        self.listener.stop()

    def __enter__(self) -> "LabClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _outcome(result: ScoreResult) -> str:
    """A task's result in a table cell, as the task sums up its answer (``Task.summarize``), or its error."""
    if result.status != "ok":
        return f"error: {result.error}"
    task, answer = TASKS.get(result.task), answer_of(result)
    return task.summarize(answer) if task is not None and answer is not None else str(result.answer)
