"""What a processor can run on each image: a registry of tasks (``clip``, ``ocr``) over one shared consumer loop.

    base   Task: a name, a model loaded once, prepare (decode thread) and run (a batch), an Output per image
    clip   ClipTask: zero-shot labels from CLIP
    ocr    OcrTask: the text in the image, from PP-OCRv4 (rapidocr-onnxruntime, imported on first use)

Adding a task: a module with a :class:`Task` subclass, and one line in :data:`TASKS`. Each task's
processors share the consumer group ``<group_prefix>-<name>`` on the requests topic, so every
task sees every upload (publish/subscribe), while the members of one task share its partitions
(a queue).
"""

from __future__ import annotations

from typing import Any

from ..config import Settings
from ..errors import LabkitError
from .base import Output, Task
from .clip import ClipTask
from .ocr import OcrTask, TextReader

#: Every task a processor can run, by name (``LABKIT_TASK`` / ``--task``).
TASKS: dict[str, type[Task]] = {
    ClipTask.name: ClipTask,
    OcrTask.name: OcrTask,
}

__all__ = ["TASKS", "ClipTask", "OcrTask", "Output", "Task", "TextReader", "build_task"]


def build_task(settings: Settings, model: Any = None) -> Task:
    """The task ``settings.task`` names (its model loads on first use, unless an already loaded ``model`` is given)."""
    try:
        task = TASKS[settings.task]
    except KeyError:
        raise LabkitError(
            f"There is no task {settings.task!r}: set LABKIT_TASK (or --task, or LABKIT_TASKS for `labkit up`) "
            f"to one of {', '.join(sorted(TASKS))}."
        ) from None
    return task(settings, model)
