"""What every CLIP scorer does, whatever runs the model.

Cache label embeddings, batch images, turn similarities into top-k labels.

Two runtime adapters fill in the model-specific parts (embed images, embed prompts, preprocess):
:class:`~labkit.clip.torch_scorer.ClipScorer` runs open_clip in PyTorch, and
:class:`~labkit.clip.onnx_scorer.OnnxScorer` runs exported ONNX files with no PyTorch at all.
The processor, the notebooks and the tests only ever talk to this interface.

CLIP maps images and texts into one space where a matching (image, caption) pair points in
the same direction. To classify without training ("zero-shot"):

1. embed every candidate label through prompt templates, once, and cache the result;
2. embed the image and L2-normalise it;
3. cosine similarity = dot product of unit vectors (raw values are only ~0.1–0.35);
4. multiply by the model's learned ``logit_scale`` (100 for OpenAI's CLIP) and softmax over the
   labels: the probabilities are relative to *these* candidates, never absolute.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image

from ..records.wire import LabelScore
from . import zero_shot
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES

log = logging.getLogger(__name__)

#: The image backends a scorer can run, the reference first (``LABKIT_BACKEND``; ``auto`` picks one of them).
BACKENDS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")
#: How many label sets keep their text embeddings (least recently used ones are dropped).
LABEL_CACHE_SIZE = 128
#: Prompts per text-tower call: bounds the working memory (ONNX Runtime keeps its peak) when someone sends 1,000 labels.
PROMPT_CHUNK = 64


class Scorer(ABC):
    """Scores images against a default label set (or a per-request one) with one CLIP model."""

    model_id: str  # e.g. "ViT-B-32/openai"; printed in every result
    random_weights: bool  # True for test/benchmark models: their labels are meaningless
    input_size: int  # side of the square CLIP sees (224 for ViT-B/32)

    def __init__(
        self, labels: Sequence[str] = DEFAULT_LABELS, templates: Sequence[str] = DEFAULT_TEMPLATES, top_k: int = 5
    ):
        if not labels:
            raise ValueError("a scorer needs at least one candidate label")
        self.labels = tuple(labels)
        self.templates = tuple(templates)
        self.top_k = top_k
        self._text_cache: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    # --- what an adapter provides -----------------------------------------------------------------

    @property
    @abstractmethod
    def backend(self) -> str:
        """Name of what runs the image tower (``torch-fp32``, ``onnx-int8``, …)."""

    @property
    @abstractmethod
    def logit_scale(self) -> float:
        """The model's learned temperature (already exponentiated)."""

    @abstractmethod
    def preprocess(self, image: Image.Image) -> Any:
        """One RGB image → the model's 3×H×W input (resize, centre-crop, normalise)."""

    @abstractmethod
    def embed_images(self, pixels: Sequence[Any]) -> np.ndarray:
        """Preprocessed images → N×D float32 embeddings (not yet normalised)."""

    @abstractmethod
    def embed_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        """Texts → N×D float32 embeddings (not yet normalised)."""

    # --- shared behaviour ---------------------------------------------------------------------------

    def label_embeddings(self, labels: Sequence[str] | None = None) -> np.ndarray:
        """One unit vector per label, computed once per label set (LRU cache).

        The default label set averages every prompt template (ensembling: a little more
        accurate, computed once at start-up). Custom labels arrive with a request, so they use
        the first template only: 1,000 labels take seconds instead of most of a minute.
        """
        custom = labels is not None and tuple(labels) != self.labels
        key = (tuple(labels or self.labels), self.templates[:1] if custom else self.templates)
        with self._lock:
            cached = self._text_cache.get(key)
            if cached is not None:
                self._text_cache.move_to_end(key)
                return cached
        prompts = [template.format(label) for label in key[0] for template in key[1]]
        embeddings = zero_shot.unit(
            np.concatenate(
                [self.embed_prompts(prompts[i : i + PROMPT_CHUNK]) for i in range(0, len(prompts), PROMPT_CHUNK)]
            )
        )
        per_label = zero_shot.unit(embeddings.reshape(len(key[0]), len(key[1]), -1).mean(axis=1))
        with self._lock:
            self._text_cache[key] = per_label
            while len(self._text_cache) > LABEL_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        log.debug("embedded %d labels × %d templates", len(key[0]), len(key[1]))
        return per_label

    def image_embeddings(self, pixels: Sequence[Any]) -> np.ndarray:
        """Unit vectors for a batch of preprocessed images."""
        return zero_shot.unit(self.embed_images(pixels))

    def probabilities(self, pixels: Sequence[Any], labels: Sequence[str] | None = None) -> np.ndarray:
        """N×L softmax probabilities of each label for each image."""
        return zero_shot.probabilities(self.embed_images(pixels), self.label_embeddings(labels), self.logit_scale)

    def score(
        self, images: Sequence[Image.Image], labels: Sequence[str] | None = None, top_k: int | None = None
    ) -> list[list[LabelScore]]:
        """The ``top_k`` most probable labels for each image, best first."""
        if not images:
            return []
        return self.score_pixels([self.preprocess(image) for image in images], labels, top_k)

    def score_pixels(
        self, pixels: Sequence[Any], labels: Sequence[str] | None = None, top_k: int | None = None
    ) -> list[list[LabelScore]]:
        """Like :meth:`score`, for images already preprocessed (a list, or an N×3×H×W batch)."""
        return self.embed_and_score(pixels, labels, top_k)[1]

    def embed_and_score(
        self, pixels: Sequence[Any], labels: Sequence[str] | None = None, top_k: int | None = None
    ) -> tuple[np.ndarray, list[list[LabelScore]]]:
        """One forward pass, two answers: the images' unit embeddings (N×D, for search) and their top labels."""
        names = tuple(labels or self.labels)
        embeddings = zero_shot.unit(self.embed_images(pixels))
        probabilities = zero_shot.probabilities(embeddings, self.label_embeddings(names), self.logit_scale)
        return embeddings, zero_shot.top_labels(probabilities, names, top_k or self.top_k)
