"""ClipScorer, the PyTorch adapter: open_clip's model in this process, with a swappable image tower.

It is the reference every other backend is checked against.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from .base import Scorer
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES
from .loading import LoadedClip
from .towers import ImageTower, TorchTower, encode_text_trimmed


class ClipScorer(Scorer):
    """Scores PIL images with one open_clip model loaded in PyTorch."""

    def __init__(
        self,
        clip: LoadedClip,
        labels: Sequence[str] = DEFAULT_LABELS,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        top_k: int = 5,
        tower: ImageTower | None = None,
    ):
        super().__init__(labels, templates, top_k)
        self.clip = clip
        self.model_id = clip.model_id
        self.random_weights = clip.random_weights
        self.tower = tower or TorchTower(clip)
        size = clip.model.visual.image_size
        self.input_size = min(size) if isinstance(size, tuple) else int(size)

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

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own torchvision preprocessing: resize the short side, centre-crop, normalise."""
        return self.clip.preprocess(image)

    @torch.inference_mode()
    def embed_images(self, pixels: Sequence[Any]) -> np.ndarray:
        batch = pixels if isinstance(pixels, torch.Tensor) else torch.stack([torch.as_tensor(p) for p in pixels])
        return self.tower.embed(batch).float().numpy()

    @torch.inference_mode()
    def embed_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        return encode_text_trimmed(self.clip.model, self.clip.tokenizer(list(prompts))).float().numpy()
