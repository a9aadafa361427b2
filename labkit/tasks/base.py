"""What a task gives: a model loaded once, a batch run, its answer's model, how it is shown and kept.

A task is the only part of labkit that knows its model and the shape of its answer. The rest —
polling, micro-batches, dead letters, commit-after-acknowledgement, failpoints (``labkit.batch``,
``labkit.kafka.checkpoint``, ``labkit.processor``), the web API and page, the notebooks' tables
and the history — works from what the task declares here, so a new task is one module in this
package plus one line in the registry (``labkit/tasks/__init__.py``). For each micro-batch the
processor

1. decodes each record into an upright RGB image (``labkit.images.load_rgb``) and calls
   :meth:`Task.prepare` on it — on the decode thread, while the previous batch runs;
2. calls :meth:`Task.run` once per group of images that can run together (:meth:`Task.group`);
3. puts each :class:`Output`'s ``answer`` (an instance of the task's :attr:`Task.answer_model`)
   into that request's result record, under ``answer``.

Everyone who reads a result then asks the task: :meth:`Task.read` validates the answer against
the task's model (a field the model does not declare is refused), :meth:`Task.show` turns it
into the rows the page and the notebooks show, :meth:`Task.history_values` into the history's
search columns.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..config import Settings
from ..errors import LabkitError, WireFormatError
from ..records.serde import validation_problem
from ..records.wire import ImageRequest, ScoreResult


class Answer(BaseModel):
    """The base of every task's answer: its own fields, validated; an undeclared field is refused."""

    model_config = ConfigDict(extra="forbid")


class Shown(BaseModel):
    """One row of an answer as the page and notebooks show it: a text, and a score or colour if it has one."""

    text: str
    score: float | None = Field(None, description="0..1, drawn as a bar (CLIP) or a percentage (OCR)")
    swatch: str | None = Field(
        None, description="a colour to draw beside the text, as #rrggbb", pattern=r"^#[0-9a-f]{6}$"
    )


@dataclass(frozen=True)
class Output:
    """What a task found in one image: its answer, a few words to log, and an embedding if it made one."""

    answer: Answer  # an instance of the task's Answer model
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
    #: The task's answer: a pydantic model of its own (``extra="forbid"``), carried in a result's ``answer``.
    answer_model: ClassVar[type[Answer]]
    #: How the page and the notebooks title the task's answer, e.g. ``CLIP labels``.
    title: ClassVar[str]
    #: How ``show`` is drawn: ``bars`` (a score bar per row) or ``lines`` (text rows, each with its percentage).
    layout: ClassVar[str] = "bars"
    #: What the page says when an answer has no rows (an image without text is an answer, not an error).
    empty: ClassVar[str] = "nothing found"
    #: The history's search columns this task fills (they exist in ``labkit.history.schema``'s migrations).
    history_columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: Settings, model: Any = None):
        """Make the task; its model is loaded on first use unless ``model`` is given.

        ``model``: an already loaded model to share (processors in one process load it once); None
        loads it on first use.
        """
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

    @classmethod
    def read(cls, result: ScoreResult) -> Answer | None:
        """A result's answer as this task's model; None for an error result.

        Raises :class:`WireFormatError` if it is no such answer.
        """
        if result.status != "ok" or result.answer is None:
            return None
        try:
            return cls.answer_model.model_validate(result.answer)
        except ValidationError as exc:
            raise WireFormatError(
                f"the {cls.name} answer of request {result.request_id} is not valid: {validation_problem(exc)} "
                f"(is the processor's labkit newer than this reader's? upgrade the reader)"
            ) from None

    @classmethod
    @abstractmethod
    def show(cls, answer: Any) -> list[Shown]:
        """The rows the page and notebooks show for ``answer`` (an :attr:`answer_model` instance), best first."""

    @classmethod
    def summarize(cls, answer: Any) -> str:
        """An answer in one line, for logs, the CLI, notebook tables and the history's list."""
        rows = cls.show(answer)[:3]
        return (
            ", ".join(f"{row.text} {row.score:.0%}" if row.score is not None else row.text for row in rows) or cls.empty
        )

    @classmethod
    def history_values(cls, answer: Any) -> dict[str, Any]:
        """:attr:`history_columns`' values for ``answer`` (None: an error result, the columns stay unset)."""
        return {}
