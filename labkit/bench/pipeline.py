"""The bench's pipeline: one broker, web app and history sink for the whole run.

Processors are swapped in and out per measurement. Each measurement starts the processors it
needs (task, backend, batch limit, how many), loads the pipeline with uploads that name that
task alone, and stops them before the next starts, so exactly the processors being measured are
in the task's group while it runs and no other task is waited for. A task's processors share its
consumer group: a stopped processor commits what it finished and leaves, and the next set
carries on from there, as a restarted processor would. Keeping the broker, web app and sink between
measurements saves their start-up, not any work that is measured.

The sink writes to an embedded PostgreSQL in a throw-away folder, as ``labkit up`` runs it: its CPU,
and its database's, is part of what each image costs (:mod:`.cpu_budget`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from tqdm.auto import tqdm

from .._net import free_port
from ..config import Settings
from ..errors import LabkitError
from ..kafka.engines import private_broker
from ..ops.stack import Stack
from . import cpu_budget
from .load import LoadResult, rss_mb, run_load


def processor_threads(settings: Settings, processors: int) -> int:
    """The inference threads each of ``processors`` processors runs with.

    Computed as :class:`~labkit.ops.stack.Stack` sets them.
    """
    from ..clip.prepare import default_threads

    if settings.inference_threads:
        return settings.inference_threads
    return max(1, (os.cpu_count() or 1) // processors) if processors > 1 else default_threads()


class Processors:
    """A set of running processors of the bench's pipeline, and the load that measures them."""

    def __init__(self, stack: Stack, base: Stack, url: str, task: str = "clip"):
        self.stack, self.base, self.url, self.task = stack, base, url, task

    def load(self, images: list[bytes], uploads: int, concurrency: int, label: str) -> LoadResult:
        """``uploads`` uploads for this task alone from ``concurrency`` clients; each must come back done.

        The result's ``cpu_ms`` says what each image cost every part of the pipeline (:mod:`.cpu_budget`),
        counted until the processors have committed and the sink has written the run.
        """
        scored, written = cpu_budget.scored(self.stack), cpu_budget.written(self.base)
        before = cpu_budget.read_cpu(self.base, self.stack)
        with tqdm(total=uploads, desc=label, unit="img", leave=False) as bar:
            result = run_load(self.url, images, uploads, concurrency, progress=bar, tasks=(self.task,))
        if result.lost or result.failed:  # a fast run that dropped work must not look like a fast run
            raise LabkitError(
                f"{label}: {len(result.lost)} upload(s) got no result and {len(result.failed)} failed; "
                "the pipeline is broken, so its timings mean nothing. Look at the stack's log above."
            )
        cpu_budget.wait_until_settled(self.base, self.stack, uploads, scored, written)
        result.cpu_ms = cpu_budget.per_image_ms(before, cpu_budget.read_cpu(self.base, self.stack), uploads)
        return result

    def rss_mb(self, field: str) -> float:
        """The largest ``VmHWM`` (peak) or ``VmRSS`` (now) of these processors, in MB."""
        return max(rss_mb(c.process.pid, field) for c in self.stack.children)


class BenchPipeline:
    """A private broker (of --engine's engine), topics, web app and sink; :meth:`processors` adds some."""

    def __init__(self, settings: Settings):
        self._cleanup = ExitStack()  # the broker's and the history's throw-away folders, removed on exit
        broker = self._cleanup.enter_context(private_broker(settings))  # --engine's engine, on ports of its own
        history = Path(tempfile.mkdtemp(prefix="labkit-bench-history-"))
        self._cleanup.callback(shutil.rmtree, history, ignore_errors=True)
        # Never the user's history (LABKIT_DATABASE_URL): an embedded server of the run's own, stopped before it goes.
        self._cleanup.callback(_stop_embedded, history)
        own = {**broker, "web_port": free_port(), "web_host": "127.0.0.1", "history_dir": history, "database_url": None}
        tasks = ",".join(dict.fromkeys(("clip", *settings.enabled_tasks)))  # what uploads here may name
        self.settings = settings.model_copy(update={**own, "tasks": tasks})
        self.base = Stack(self.settings, web=True, processors=0, echo=False, sink=True)

    def __enter__(self) -> "BenchPipeline":
        self.base.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.base.stop()
        self._cleanup.close()

    @contextmanager
    def processors(
        self, backend: str, max_batch: int, count: int = 1, task: str = "clip", exactly_once: bool = False
    ) -> Iterator[Processors]:
        """``count`` processors of ``task`` with ``backend`` and ``max_batch``, ready in its group.

        ``exactly_once``: each batch in a Kafka transaction (``LABKIT_EXACTLY_ONCE``). They are
        stopped (and committed) on exit.
        """
        update = {"backend": backend, "max_batch_size": max_batch, "exactly_once": exactly_once}
        settings = self.settings.model_copy(update=update)
        stack = Stack(settings, web=False, processors={task: count}, echo=False).start()  # uses our broker
        try:
            yield Processors(stack, self.base, f"http://127.0.0.1:{self.settings.web_port}", task)
        finally:
            stack.stop()


def _stop_embedded(history: Path) -> None:
    """Stop the run's embedded PostgreSQL before its folder goes (its keeper would, once the sink exits)."""
    from ..history.embedded import stop_postgres

    stop_postgres(history / "postgres")
