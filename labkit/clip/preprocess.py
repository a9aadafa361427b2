"""CLIP's image preprocessing in Pillow and NumPy.

Resize the short side (bicubic), centre-crop, scale to 0–1, normalise.

This is what open_clip's torchvision pipeline does for ``resize_mode="shortest"``, step for
step (torchvision resizes Pillow images with Pillow itself), so the ONNX runtime can prepare
pixels without importing PyTorch. The backend check compares the two on sample photos
before the runtime is allowed to use this (see :mod:`labkit.clip.prepare`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from PIL import Image


@dataclass(frozen=True)
class Preprocess:
    """PIL image → 3×size×size float32 array, as the model was trained to see it."""

    size: int
    mean: Sequence[float]
    std: Sequence[float]

    def __call__(self, image: Image.Image) -> np.ndarray:
        width, height = image.size
        short, long = min(width, height), max(width, height)
        if short != self.size:
            # The short side becomes `size`; the long side keeps the aspect ratio (truncated, as torchvision does).
            new_long = int(self.size * long / short)  # noqa: RUF046 — float, then truncate: as torchvision does
            new_size = (self.size, new_long) if width <= height else (new_long, self.size)
            image = image.resize(new_size, Image.Resampling.BICUBIC)
            width, height = new_size
        left, top = int(round((width - self.size) / 2.0)), int(round((height - self.size) / 2.0))
        image = image.crop((left, top, left + self.size, top + self.size)).convert("RGB")
        pixels = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return (pixels - self._mean) / self._std

    @cached_property
    def _mean(self) -> np.ndarray:  # per channel, shaped to broadcast over 3×H×W; built once, not per image
        return np.asarray(self.mean, dtype=np.float32)[:, None, None]

    @cached_property
    def _std(self) -> np.ndarray:
        return np.asarray(self.std, dtype=np.float32)[:, None, None]
