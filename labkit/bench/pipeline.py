"""The bench's pipeline: one broker and one web app for the whole run.

Processors are swapped in and out per measurement. Each measurement starts the processors it
needs (task, backend, batch limit, how many), loads the pipeline with uploads that name that
task alone, and stops them before the next starts, so exactly the processors being measured are
in the task's group while it runs and no other task is waited for. A task's processors share its
consumer group: a stopped processor commits what it finished and leaves, and the next set
carries on from there, as a restarted processor would. Keeping the broker and web app between
measurements saves their start-up, not any work that is measured.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

from tqdm.auto import tqdm

from .._net import free_port
from ..config import Settings
from ..errors import LabkitError
from ..kafka.engines import private_broker
from ..ops.stack import Stack
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

    def __init__(self, stack: Stack, url: str, task: str = "clip"):
        self.stack, self.url, self.task = stack, url, task

    def load(self, images: list[bytes], uploads: int, concurrency: int, label: str) -> LoadResult:
        """``uploads`` uploads for this task alone from ``concurrency`` clients; each must come back done."""
        with tqdm(total=uploads, desc=label, unit="img", leave=False) as bar:
            result = run_load(self.url, images, uploads, concurrency, progress=bar, tasks=(self.task,))
        if result.lost or result.failed:  # a fast run that dropped work must not look like a fast run
            raise LabkitError(
                f"{label}: {len(result.lost)} upload(s) got no result and {len(result.failed)} failed; "
                "the pipeline is broken, so its timings mean nothing. Look at the stack's log above."
            )
        return result

    def rss_mb(self, field: str) -> float:
        """The largest ``VmHWM`` (peak) or ``VmRSS`` (now) of these processors, in MB."""
        return max(rss_mb(c.process.pid, field) for c in self.stack.children)


class BenchPipeline:
    """A broker of its own (of --engine's engine), topics and the web app; :meth:`processors` adds processors."""

    def __init__(self, settings: Settings):
        self._cleanup = ExitStack()  # the broker's throw-away data folder, removed on exit
        broker = self._cleanup.enter_context(private_broker(settings))  # --engine's engine, on ports of its own
        own = {**broker, "web_port": free_port(), "web_host": "127.0.0.1"}
        tasks = ",".join(dict.fromkeys(("clip", *settings.enabled_tasks)))  # what uploads here may name
        self.settings = settings.model_copy(update={**own, "tasks": tasks})
        self.base = Stack(self.settings, web=True, processors=0, echo=False)

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
            yield Processors(stack, f"http://127.0.0.1:{self.settings.web_port}", task)
        finally:
            stack.stop()
