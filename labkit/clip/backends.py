"""Image backends by name: build one, or pick the fastest that passes the fidelity gate.

Build one by its name (``torch-fp32`` … ``onnx-int8``), or let ``auto`` pick the fastest that passes.

ONNX files are exported on first use and cached in the artifact store, keyed by model and
weights. :func:`choose_tower` implements ``LABKIT_BACKEND=auto``: every available backend must
pass the fidelity gate (:mod:`.fidelity`) against fp32 on sample photos, and the fastest that
passes wins. ``int8`` on CPUs without VNNI keeps 7-bit weights (cosine to fp32 fell to ~0.985
there without it; see :mod:`.cpu`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from .base import BACKENDS
from .cpu import native_bf16
from .export import export_image_tower
from .fidelity import fidelity
from .loading import LoadedClip
from .towers import ImageTower, OnnxTower, TorchTower

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "choose_tower", "make_tower"]


def make_tower(name: str, clip: LoadedClip, cache_dir: Path | None = None) -> ImageTower:
    """The backend called ``name`` (one of :data:`BACKENDS`)."""
    if name == "torch-fp32":
        return TorchTower(clip)
    if name == "torch-bf16":
        return TorchTower(clip, torch.bfloat16)
    if name in ("onnx-fp32", "onnx-int8"):
        return OnnxTower(export_image_tower(clip, cache_dir, quantized=name == "onnx-int8"), name)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)} or auto")


def _images_per_second(tower: ImageTower, pixels: torch.Tensor, runs: int = 2) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        tower.embed(pixels)
    return runs * len(pixels) / (time.perf_counter() - started)


def choose_tower(
    clip: LoadedClip, backend: str, sample_pixels: torch.Tensor, label_embeddings, cache_dir: Path | None = None
) -> ImageTower:
    """The backend to use; for ``auto``, the fastest that passes the fidelity gate on ``sample_pixels``.

    Every candidate also runs the sample batch here, which doubles as the warm-up: the first
    real request does not pay for lazy initialisation.
    """
    reference = TorchTower(clip)
    expected = reference.embed(sample_pixels)
    if backend != "auto":
        tower = make_tower(backend, clip, cache_dir)
        report = fidelity(expected, tower.embed(sample_pixels), label_embeddings, clip.random_weights)
        if not report.passes:
            log.warning("backend %s misses the fidelity gate here (%s); using it as asked", backend, report.describe())
        return tower
    candidates: list[tuple[float, ImageTower]] = [(_images_per_second(reference, sample_pixels), reference)]
    for name in BACKENDS[1:]:
        if name == "torch-bf16" and not native_bf16():
            log.info("backend torch-bf16 skipped: this CPU has no native bfloat16")
            continue
        try:
            tower = make_tower(name, clip, cache_dir)
        except ImportError:
            log.info("backend %s skipped: onnxruntime is not installed", name)
            continue
        report = fidelity(expected, tower.embed(sample_pixels), label_embeddings, clip.random_weights)
        if not report.passes:
            log.info("backend %s fails the fidelity gate (%s)", name, report.describe())
            continue
        candidates.append((_images_per_second(tower, sample_pixels), tower))
    speed, chosen = max(candidates, key=lambda c: c[0])
    log.info(
        "image backend: %s (%.0f img/s on the warm-up batch; candidates: %s)",
        chosen.name,
        speed,
        ", ".join(f"{t.name} {s:.0f}" for s, t in candidates),
    )
    return chosen
