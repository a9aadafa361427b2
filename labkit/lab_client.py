"""LabClient: send images through the running pipeline from Python and wait for their results.

This is what the notebooks use. It speaks to Kafka exactly like the web app (same
RequestSender and ResultsListener), so what you learn in a notebook is what the service does.

    with LabClient() as lab:
        result = lab.classify("photo.jpg")      # → ScoreResult
        lab.results_frame()                     # → pandas DataFrame of everything so far
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from .config import Settings, load_settings
from .request_sender import RequestSender
from .results_listener import ResultsListener, ResultStore
from .wire import ScoreResult


class LabClient:
    """A producer of image requests plus a listener for their results, with blocking helpers."""

    def __init__(self, settings: Settings | None = None):
        self.settings = settings or load_settings()
        self.results = ResultStore(self.settings.results_cache_size)
        self.sent: dict[str, str | None] = {}  # request id → filename, in sending order
        self.arrived_s: dict[str, float] = {}  # request id → seconds after this client started, when its result came
        self._started = time.monotonic()
        self._arrived = threading.Condition()
        self.listener = ResultsListener(self.settings, self._on_result, client_id="labkit-client-results").start()
        self.sender = RequestSender(self.settings, client_id="labkit-client")

    def _on_result(self, result: ScoreResult) -> None:
        if result.id in self.sent and self.results.add(result):
            self.arrived_s[result.id] = time.monotonic() - self._started
            with self._arrived:
                self._arrived.notify_all()

    def submit(
        self,
        image: bytes | str | Path,
        filename: str | None = None,
        labels: list[str] | None = None,
        timeout: float = 15,
    ) -> str:
        """Send one image (bytes or a file path), optionally with your own candidate labels;
        returns its request id once Kafka has it."""
        return self.submit_many([(image, filename)], labels, timeout)[0]

    def submit_many(self, images: list, labels: list[str] | None = None, timeout: float = 30) -> list[str]:
        """Send many images at once — each a path, bytes, or a (bytes or path, filename) pair — and
        return their request ids once Kafka has acknowledged all of them.

        Faster than one ``submit`` after another: the producer batches records that are sent
        together, and we wait for all acknowledgements once, not once per image.
        """
        pending = []
        for item in images:
            image, filename = item if isinstance(item, tuple) else (item, None)
            if not isinstance(image, bytes):
                filename = filename or Path(image).name
                image = Path(image).read_bytes()
            request, _, acked = self.sender.send(image, filename, labels)
            self.sent[request.id] = filename
            pending.append((request.id, acked))
        for _, acked in pending:
            acked.result(timeout)
        return [request_id for request_id, _ in pending]

    def wait(self, request_id: str, timeout: float = 60) -> ScoreResult:
        """Block until ``request_id``'s result arrives; TimeoutError says what to check."""
        seen: list[ScoreResult] = []  # the result as the waiting condition saw it (the cache may evict it later)

        def arrived() -> bool:
            result = self.results.get(request_id)
            if result is not None:
                seen.append(result)
            return result is not None

        with self._arrived:
            if not self._arrived.wait_for(arrived, timeout):
                raise TimeoutError(
                    f"No result for {request_id} within {timeout:.0f} s. Is a processor running "
                    "(`labkit processor`, or `labkit topics describe` to see its lag)?"
                )
        return seen[-1]

    def classify(self, image: bytes | str | Path, labels: list[str] | None = None, timeout: float = 60) -> ScoreResult:
        """Send one image and wait for its result."""
        return self.wait(self.submit(image, labels=labels), timeout)

    def results_frame(self):
        """All results of this client so far as a pandas DataFrame, one row per image."""
        import pandas as pd

        rows = []
        for result in self.results.all():
            top = result.top()
            rows.append(
                {
                    "id": result.id,
                    "file": self.sent.get(result.id),
                    "status": result.status,
                    "top label": top.label if top else None,
                    "probability": top.score if top else None,
                    "labels": ", ".join(f"{s.label} {s.score:.0%}" for s in result.labels[:3]),
                    "total ms": result.timings_ms.total,
                    "inference ms": result.timings_ms.inference,
                    "processor": result.processor,
                    "batch": result.batch_size,
                    "model": result.model,
                    "arrived s": round(self.arrived_s.get(result.id, float("nan")), 3),
                    "error": result.error,
                }
            )
        return pd.DataFrame(rows)

    def close(self) -> None:
        self.sender.close()
        self.listener.stop()

    def __enter__(self) -> "LabClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
