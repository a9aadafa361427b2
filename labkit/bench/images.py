"""Benchmark and test images: real photos, and 1080p / 12-megapixel JPEGs made from them."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

FULL_HD = (1920, 1080)
TWELVE_MP = (4000, 3000)


def enlarged_jpeg(photo: Path, size: tuple[int, int], seed: int = 0, quality: int = 95) -> bytes:
    """``photo`` at ``size`` with sensor-like noise, as a JPEG: as heavy to decode as a real camera file."""
    big = Image.open(photo).convert("RGB").resize(size, Image.Resampling.BICUBIC)
    noise = np.random.default_rng(seed).integers(-12, 12, (size[1], size[0], 3), dtype=np.int16)
    pixels = np.clip(np.asarray(big, dtype=np.int16) + noise, 0, 255).astype("uint8")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def image_sets(photos: list[Path], large_count: int = 8) -> dict[str, list[bytes]]:
    """The three workloads: the photos as they are (224 px), and a few of them at 1080p and 12 MP."""
    picks = photos[:: max(1, len(photos) // large_count)][:large_count]
    return {
        "224px": [p.read_bytes() for p in photos],
        "1080p": [enlarged_jpeg(p, FULL_HD, i) for i, p in enumerate(picks)],
        "12MP": [enlarged_jpeg(p, TWELVE_MP, i) for i, p in enumerate(picks)],
    }
