"""What a processor runs on each image: a registry of tasks (``clip``, ``ocr``), each a whole module.

    base   Task: a model loaded once, prepare and run, its Answer model, how it is shown and kept
    clip   ClipTask: zero-shot labels from CLIP
    ocr    OcrTask: the text in the image, from PP-OCRv4 (rapidocr-onnxruntime, imported on first use)

Adding a task: a module with a :class:`Task` subclass (its model, its :class:`Answer`, how it is
shown), and one line in :data:`TASKS`; nothing else changes. Each task's processors share the
consumer group ``<group_prefix>-<name>`` on the requests topic, so every task sees every upload
(publish/subscribe), while the members of one task share its partitions (a queue).
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import LabkitError
from ..records.wire import ScoreResult
from .base import Answer, Output, Shown, Task
from .clip import ClipAnswer, ClipTask
from .ocr import OcrAnswer, OcrTask, TextReader

#: Every task a processor can run, by name (``LABKIT_TASK`` / ``--task``, ``LABKIT_TASKS``). The first one's answer
#: is the one ``GET /api/images/{request_id}`` also shows at its top level (there was one task, CLIP, before there
#: were more).
TASKS: dict[str, type[Task]] = {
    ClipTask.name: ClipTask,
    OcrTask.name: OcrTask,
}

__all__ = [
    "TASKS",
    "Answer",
    "ClipAnswer",
    "ClipTask",
    "OcrAnswer",
    "OcrTask",
    "Output",
    "Shown",
    "Task",
    "TextReader",
    "answer_of",
    "build_task",
    "check_tasks",
    "describe_result",
    "task_named",
]


def task_named(name: str) -> type[Task]:
    """The registered task called ``name``; :class:`LabkitError` listing the ones there are."""
    try:
        return TASKS[name]
    except KeyError:
        raise LabkitError(
            f"There is no task {name!r}: set LABKIT_TASK (or --task, or LABKIT_TASKS for `labkit up`) "
            f"to one of {', '.join(TASKS)}."
        ) from None


def check_tasks(settings: Settings) -> tuple[str, ...]:
    """Check ``LABKIT_TASKS`` against the registry at start-up; :class:`LabkitError` names an unknown task."""
    for name in settings.enabled_tasks:
        task_named(name)
    return settings.enabled_tasks


def build_task(settings: Settings, model: Any = None) -> Task:
    """The task ``settings.task`` names; its model loads on first use unless a loaded ``model`` is given."""
    return task_named(settings.task)(settings, model)


def answer_of(result: ScoreResult) -> Answer | None:
    """A result's answer as its task's model (None for an error, or a task this labkit does not know)."""
    task = TASKS.get(result.task)
    return task.read(result) if task is not None else None


def describe_result(result: ScoreResult) -> str:
    """A result in one human line, like ``3f2a9c0e…: clip: photo of a cat 90%, dog 4%``."""
    head = f"{result.request_id}: {result.task}"
    if result.status != "ok":
        return f"{head} error: {result.error}"
    task = TASKS.get(result.task)
    answer = answer_of(result)
    return f"{head}: {task.summarize(answer) if task and answer is not None else result.answer}"
