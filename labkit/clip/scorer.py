"""Zero-shot scoring: compare an image embedding with the embeddings of candidate labels and turn the similarities into probabilities.

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
from collections.abc import Sequence

import torch
from PIL import Image

from ..wire import LabelScore
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES
from .loading import LoadedClip

log = logging.getLogger(__name__)


class ClipScorer:
    """Scores PIL images against a label set with one loaded CLIP model."""

    def __init__(self, clip: LoadedClip, labels: Sequence[str] = DEFAULT_LABELS,
                 templates: Sequence[str] = DEFAULT_TEMPLATES, top_k: int = 5):
        if not labels:
            raise ValueError("a scorer needs at least one candidate label")
        self.clip = clip
        self.labels = tuple(labels)
        self.templates = tuple(templates)
        self.top_k = top_k
        self._text_cache: dict[tuple[tuple[str, ...], tuple[str, ...]], torch.Tensor] = {}
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.clip.model_id

    @property
    def logit_scale(self) -> float:
        return float(self.clip.model.logit_scale.detach().exp())

    @torch.inference_mode()
    def label_embeddings(self, labels: Sequence[str] | None = None) -> torch.Tensor:
        """One unit vector per label (the mean over prompt templates), computed once per label set."""
        key = (tuple(labels or self.labels), self.templates)
        with self._lock:
            cached = self._text_cache.get(key)
        if cached is not None:
            return cached
        prompts = [template.format(label) for label in key[0] for template in self.templates]
        tokens = self.clip.tokenizer(prompts)
        embeddings = self.clip.model.encode_text(tokens).float()
        embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
        per_label = embeddings.reshape(len(key[0]), len(self.templates), -1).mean(dim=1)
        per_label = per_label / per_label.norm(dim=-1, keepdim=True)
        with self._lock:
            self._text_cache[key] = per_label
        log.debug("embedded %d labels × %d templates", len(key[0]), len(self.templates))
        return per_label

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own preprocessing: resize the short side, centre-crop, normalise."""
        return self.clip.preprocess(image)

    @torch.inference_mode()
    def image_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unit vectors for a batch of preprocessed images (N×3×H×W)."""
        embeddings = self.clip.model.encode_image(pixels).float()
        return embeddings / embeddings.norm(dim=-1, keepdim=True)

    @torch.inference_mode()
    def probabilities(self, pixels: torch.Tensor, labels: Sequence[str] | None = None) -> torch.Tensor:
        """N×L softmax probabilities of each label for each image."""
        logits = self.logit_scale * self.image_embeddings(pixels) @ self.label_embeddings(labels).T
        return logits.softmax(dim=-1)

    def score(self, images: Sequence[Image.Image], labels: Sequence[str] | None = None,
              top_k: int | None = None) -> list[list[LabelScore]]:
        """The ``top_k`` most probable labels for each image, best first."""
        if not images:
            return []
        return self.score_pixels(torch.stack([self.preprocess(image) for image in images]), labels, top_k)

    def score_pixels(self, pixels: torch.Tensor, labels: Sequence[str] | None = None,
                     top_k: int | None = None) -> list[list[LabelScore]]:
        """Like :meth:`score`, for images already preprocessed into an N×3×H×W batch."""
        names = tuple(labels or self.labels)
        probs = self.probabilities(pixels, names)
        k = min(top_k or self.top_k, len(names))
        values, indices = probs.topk(k, dim=-1)
        return [[LabelScore(label=names[i], score=round(float(v), 6)) for v, i in zip(row_v, row_i)]
                for row_v, row_i in zip(values.tolist(), indices.tolist())]
