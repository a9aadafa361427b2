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

import gc
import logging
import threading
from collections import OrderedDict
from collections.abc import Sequence

import torch
from PIL import Image

from ..wire import LabelScore
from .backends import ImageTower, TorchTower
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES
from .loading import LoadedClip

log = logging.getLogger(__name__)

#: How many label sets keep their text embeddings (least recently used ones are dropped).
LABEL_CACHE_SIZE = 128


@torch.inference_mode()
def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    """CLIP's text tower on token sequences cut after their last end-of-text token.

    Tokens are padded to 77 positions, but a prompt like "a photo of a cat." uses ~8. CLIP's
    text transformer is causal and reads its output at the end-of-text token (the largest
    token id), which never attends to the padding after it; so dropping the padding gives the
    same embeddings for a fraction of the work (attention cost grows with length²).
    Models without that structure fall back to the full ``encode_text``.
    """
    if getattr(model, "attn_mask", None) is None or getattr(model, "text_pool_type", None) != "argmax":
        return model.encode_text(tokens)
    length = int(tokens.argmax(dim=-1).max()) + 1
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
    x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
    x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
    if isinstance(model.text_projection, torch.nn.Linear):
        return model.text_projection(x)
    return x @ model.text_projection if model.text_projection is not None else x


class ClipScorer:
    """Scores PIL images against a label set with one loaded CLIP model."""

    def __init__(self, clip: LoadedClip, labels: Sequence[str] = DEFAULT_LABELS,
                 templates: Sequence[str] = DEFAULT_TEMPLATES, top_k: int = 5, tower: ImageTower | None = None):
        if not labels:
            raise ValueError("a scorer needs at least one candidate label")
        self.clip = clip
        self.labels = tuple(labels)
        self.templates = tuple(templates)
        self.top_k = top_k
        self.tower = tower or TorchTower(clip)
        size = clip.model.visual.image_size
        self.input_size = min(size) if isinstance(size, tuple) else int(size)  # side of the square CLIP sees
        self._text_cache: OrderedDict[tuple[tuple[str, ...], tuple[str, ...]], torch.Tensor] = OrderedDict()
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.clip.model_id

    @property
    def backend(self) -> str:
        return self.tower.name

    def use_tower(self, tower: ImageTower) -> None:
        """Switch the image backend; the PyTorch image weights are dropped when no longer used (saves RAM)."""
        self.tower = tower
        if not isinstance(tower, TorchTower) and self.clip.model.visual is not None:
            self.clip.model.visual = None  # ViT-B/32: ~350 MB of fp32 weights the ONNX session does not need
            gc.collect()

    @property
    def logit_scale(self) -> float:
        return float(self.clip.model.logit_scale.detach().exp())

    @torch.inference_mode()
    def label_embeddings(self, labels: Sequence[str] | None = None) -> torch.Tensor:
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
        tokens = self.clip.tokenizer(prompts)
        embeddings = torch.cat([encode_text_trimmed(self.clip.model, chunk).float() for chunk in tokens.split(256)])
        embeddings = embeddings / embeddings.norm(dim=-1, keepdim=True)
        per_label = embeddings.reshape(len(key[0]), len(key[1]), -1).mean(dim=1)
        per_label = per_label / per_label.norm(dim=-1, keepdim=True)
        with self._lock:
            self._text_cache[key] = per_label
            while len(self._text_cache) > LABEL_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        log.debug("embedded %d labels × %d templates", len(key[0]), len(self.templates))
        return per_label

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own preprocessing: resize the short side, centre-crop, normalise."""
        return self.clip.preprocess(image)

    @torch.inference_mode()
    def image_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """Unit vectors for a batch of preprocessed images (N×3×H×W)."""
        embeddings = self.tower.embed(pixels)
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
