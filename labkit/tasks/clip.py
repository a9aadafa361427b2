"""The ``clip`` task: zero-shot labels from CLIP, against the default label set or the request's own."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any

from PIL import Image

from ..clip import Scorer, build_scorer
from ..records.wire import ImageRequest, LabelScore
from .base import Answer, Output, Shown, Task


class ClipAnswer(Answer):
    """CLIP's answer: the top candidate labels, best first, with their probabilities among all candidates."""

    labels: list[LabelScore]


class ClipTask(Task):
    """Top-k labels per image; images that share a label set go through one CLIP forward pass."""

    name = "clip"
    model_method = "embed_and_score"
    answer_model = ClipAnswer
    title = "CLIP labels"
    layout = "bars"
    empty = "no labels"
    history_columns = ("top_label", "top_score")
    _model: Scorer | None

    def load_model(self) -> Scorer:
        return build_scorer(self.settings)  # loads the model, picks the backend and runs the warm-up batch

    @property
    def scorer(self) -> Scorer:
        return self.model

    @property
    def model_id(self) -> str:
        return self.scorer.model_id

    @property
    def backend(self) -> str:
        return self.scorer.backend

    @property
    def draft_side(self) -> int:
        return self.scorer.input_size  # CLIP sees 224 px: a JPEG may decode at 1/2–1/8 scale down to that

    def group(self, request: ImageRequest) -> Hashable:
        return request.labels  # each label set needs its own text embeddings, so its own forward pass

    def prepare(self, image: Image.Image, request: ImageRequest) -> Any:
        return self.scorer.preprocess(image)

    def run(self, prepared: Sequence[Any], requests: Sequence[ImageRequest]) -> list[Output]:
        embeddings, top = self.scorer.embed_and_score(list(prepared), requests[0].labels)
        return [
            Output(ClipAnswer(labels=labels), f"{labels[0].label} {labels[0].score:.1%}", embedding)
            for labels, embedding in zip(top, embeddings)
        ]

    @classmethod
    def show(cls, answer: ClipAnswer) -> list[Shown]:
        return [Shown(text=label.label, score=label.score) for label in answer.labels]

    @classmethod
    def history_values(cls, answer: ClipAnswer) -> dict[str, object]:
        top = answer.labels[0] if answer.labels else None
        return {"top_label": top.label if top else None, "top_score": top.score if top else None}
