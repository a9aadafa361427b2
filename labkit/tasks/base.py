"""What every task a processor can run provides: a name, a model loaded once, per-image preparation and a batch run.

A task is the only part of a processor that knows its model. The rest — polling, micro-batches,
dead letters, commit-after-acknowledgement, failpoints — is shared (``labkit.batch``,
``labkit.kafka.checkpoint``, ``labkit.processor``), so a new task is one module here plus one line in
the registry (``labkit/tasks/__init__.py``). For each micro-batch the processor

1. decodes each record into an upright RGB image (``labkit.images.load_rgb``) and calls
   :meth:`Task.prepare` on it — on the decode thread, while the previous batch runs;
2. calls :meth:`Task.run` once per group of images that can run together (:meth:`Task.group`);
3. writes each :class:`Output`'s ``fields`` into that request's ``ScoreResult``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from ..config import Settings
from ..errors import LabkitError
from ..records.wire import ImageRequest


@dataclass(frozen=True)
class Output:
    """What a task found in one image: the ``ScoreResult`` fields it fills, and a few words for the log line."""

    fields: dict[str, Any]  # e.g. {"labels": [...]} or {"text": "...", "lines": [...]}
    summary: str  # e.g. "cat 89.5%" or "'KAFKA STREAMS 2026'"
    #: The image's unit embedding, when the task makes one (CLIP): produced to the embeddings topic.
    embedding: Any = None


class Task(ABC):
    """One kind of work on an image, with its model; a processor runs exactly one."""

    #: The task's name: ``LABKIT_TASK``, the ``labkit-tasks`` request header, a result's ``task``,
    #: and the consumer group ``<group_prefix>-<name>``.
    name: ClassVar[str]
    #: The method the task calls on its model (a model given to share must have it).
    model_method: ClassVar[str]

    def __init__(self, settings: Settings, model: Any = None):
        """``model``: an already loaded model to share (processors in one process load it once); None loads it on first use."""
        if model is not None and not callable(getattr(model, self.model_method, None)):
            raise LabkitError(
                f"The {self.name} task was given a {type(model).__name__} as its model, which has no "
                f"{self.model_method}(): pass this task's own model, or none to load it (is LABKIT_TASK right?)."
            )
        self.settings = settings
        self._model = model

    @property
    def model(self) -> Any:
        """The loaded model (loaded now, once, if it was not given)."""
        if self._model is None:
            self._model = self.load_model()
        return self._model

    def load(self) -> None:
        """Load the model now, before the processor joins its group (so the first batch does not pay for it)."""
        _ = self.model

    @abstractmethod
    def load_model(self) -> Any:
        """Load this task's model from the settings."""

    @property
    @abstractmethod
    def model_id(self) -> str:
        """The model every result names, e.g. ``ViT-B-32/openai`` or ``PP-OCRv4 (rapidocr-onnxruntime 1.4.4)``."""

    @property
    def backend(self) -> str:
        """What runs the model (for the processor's start-up line)."""
        return "onnxruntime"

    @property
    def draft_side(self) -> int | None:
        """For JPEGs, the smallest side the decoder may shrink to (cheap 1/2–1/8 decoding); None: full size."""
        return None

    def group(self, request: ImageRequest) -> Hashable:
        """Requests whose images go through :meth:`run` together; by default the whole batch at once."""
        return None

    @abstractmethod
    def prepare(self, image: Image.Image, request: ImageRequest) -> Any:
        """One upright RGB image → the model's input (runs on the decode thread)."""

    @abstractmethod
    def run(self, prepared: Sequence[Any], requests: Sequence[ImageRequest]) -> list[Output]:
        """Prepared images of one group (all with the same :meth:`group`) → one output per image, in order."""
