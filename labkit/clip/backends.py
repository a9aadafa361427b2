"""Image backends by name: build one, or pick the fastest that passes the fidelity gate.

Build one by its name (``torch-fp32`` … ``onnx-int8``), or let ``auto`` pick the fastest that passes.

ONNX files are exported on first use and cached in the artifact store, keyed by model and
weights. :func:`choose_tower` implements ``LABKIT_BACKEND=auto``: every available backend must
pass the fidelity gate (:mod:`.fidelity`) against fp32 on sample photos, and the fastest that
passes *and fits the memory budget* wins (``LABKIT_BACKEND_MEMORY_MB``; each backend's serving
footprint is measured in a fresh process, :mod:`.footprint`, fastest first, until one fits).
``int8`` on CPUs without VNNI keeps 7-bit weights (cosine to fp32 fell to ~0.985 there without
it; see :mod:`.cpu`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from .base import BACKENDS
from .cpu import native_bf16
from .export import export_image_tower
from .fidelity import fidelity
from .loading import LoadedClip
from .towers import ImageTower, OnnxTower, TorchTower

log = logging.getLogger(__name__)

__all__ = ["BACKENDS", "Candidate", "Footprint", "choose_tower", "make_tower", "rank_backends"]


def make_tower(name: str, clip: LoadedClip, cache_dir: Path | None = None) -> ImageTower:
    """The backend called ``name`` (one of :data:`BACKENDS`)."""
    if name == "torch-fp32":
        return TorchTower(clip)
    if name == "torch-bf16":
        return TorchTower(clip, torch.bfloat16)
    if name in ("onnx-fp32", "onnx-int8"):
        return OnnxTower(export_image_tower(clip, cache_dir, quantized=name == "onnx-int8"), name)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)} or auto")


def _images_per_second(tower: ImageTower, pixels: torch.Tensor, runs: int = 3) -> float:
    """Images per second of ``tower`` on ``pixels``: the best of ``runs`` timed runs (warmed up already).

    The best, not the mean: on a shared machine a run can only be slowed down by others, never sped up.
    """
    best = float("inf")
    for _ in range(runs):
        started = time.perf_counter()
        tower.embed(pixels)
        best = min(best, time.perf_counter() - started)
    return len(pixels) / best


@dataclass(frozen=True)
class Candidate:
    """One backend as ``auto`` judged it here: speed on the sample batch, memory, and the verdict."""

    name: str
    img_per_s: float | None  # None: not timed (skipped, or it missed the fidelity gate)
    verdict: str  # "chosen: …", "passes, slower", "passes, over the memory budget …", "fails the …", "skipped: …"
    memory_mb: float | None = None  # peak resident MB of a process serving it; None: not measured


#: Measures a backend's serving footprint in MB, given its name (:func:`.footprint.serving_footprint_mb`).
Footprint = Callable[[str], float]


def rank_backends(
    clip: LoadedClip,
    sample_pixels: torch.Tensor,
    label_embeddings,
    cache_dir: Path | None = None,
    *,
    footprint: Footprint | None = None,
    memory_budget_mb: float = 0,
    measure_all: bool = False,
) -> tuple[ImageTower, list[Candidate]]:
    """``auto``'s choice: the fastest backend that passes the gate and fits the budget; every verdict.

    Every candidate runs the sample batch once for the gate, which is also its warm-up, then is timed.
    With a ``footprint`` and a ``memory_budget_mb`` (0: none), those that pass are measured fastest
    first until one fits (all of them with ``measure_all``, as the bench does, to show why). If none
    fits, the smallest is chosen and a warning says which setting to raise.
    """
    reference = TorchTower(clip)
    expected = reference.embed(sample_pixels)
    timed: list[tuple[float, ImageTower, str]] = [(_images_per_second(reference, sample_pixels), reference, "")]
    verdicts: dict[str, str] = {}
    for name in BACKENDS[1:]:
        if name == "torch-bf16" and not native_bf16():
            verdicts[name] = "skipped: this CPU has no native bfloat16 (PyTorch would emulate it, slowly)"
            continue
        try:
            tower = make_tower(name, clip, cache_dir)
        except ImportError:
            verdicts[name] = "skipped: onnxruntime is not installed"
            continue
        report = fidelity(expected, tower.embed(sample_pixels), label_embeddings, clip.random_weights)
        if not report.passes:
            verdicts[name] = f"fails the fidelity gate ({report.describe()})"
            continue
        timed.append((_images_per_second(tower, sample_pixels), tower, report.describe()))
    timed.sort(key=lambda entry: -entry[0])  # fastest first
    memory: dict[str, float] = {}
    chosen: ImageTower | None = None
    for _, tower, _ in timed:
        if footprint is None or (chosen is not None and not measure_all):
            chosen = chosen or tower
            continue
        memory[tower.name] = footprint(tower.name)
        if chosen is None and (not memory_budget_mb or memory[tower.name] <= memory_budget_mb):
            chosen = tower
    over_budget = chosen is None
    if chosen is None:  # every backend that passed is over the budget: the smallest of them
        chosen = min((tower for _, tower, _ in timed), key=lambda tower: memory[tower.name])
        log.warning(
            "every image backend that passes needs more than LABKIT_BACKEND_MEMORY_MB=%d (%s); running the smallest, "
            "%s: raise LABKIT_BACKEND_MEMORY_MB, or choose one with LABKIT_BACKEND",
            memory_budget_mb,
            ", ".join(f"{name} {mb:.0f} MB" for name, mb in memory.items()),
            chosen.name,
        )

    def verdict(tower: ImageTower) -> str:
        used = memory.get(tower.name)
        if tower is chosen:
            if over_budget:
                return f"chosen: passes, the smallest (none fits the memory budget of {memory_budget_mb:.0f} MB)"
            return "chosen: the fastest that passes" + (" and fits the memory budget" if memory_budget_mb else "")
        if used is not None and memory_budget_mb and used > memory_budget_mb:
            return f"passes, over the memory budget ({used:.0f} MB > {memory_budget_mb:.0f} MB)"
        return "passes, slower"

    candidates = [
        Candidate(
            tower.name,
            round(img_per_s, 1),
            verdict(tower) + (f" ({gate})" if gate else " (the reference)"),
            memory.get(tower.name),
        )
        for img_per_s, tower, gate in timed
    ]
    candidates += [Candidate(name, None, verdict) for name, verdict in verdicts.items()]
    candidates.sort(key=lambda c: BACKENDS.index(c.name))
    log.info(
        "image backend: %s (%s)",
        chosen.name,
        "; ".join(
            f"{c.name} {c.img_per_s if c.img_per_s is not None else '-'} img/s"
            + (f", {c.memory_mb:.0f} MB" if c.memory_mb is not None else "")
            + f": {c.verdict}"
            for c in candidates
        ),
    )
    return chosen, candidates


def choose_tower(
    clip: LoadedClip,
    backend: str,
    sample_pixels: torch.Tensor,
    label_embeddings,
    cache_dir: Path | None = None,
    *,
    footprint: Footprint | None = None,
    memory_budget_mb: float = 0,
) -> ImageTower:
    """The backend to use; for ``auto``, the fastest that passes and fits (:func:`rank_backends`).

    The chosen backend has run the sample batch, which doubles as the warm-up: the first real
    request does not pay for lazy initialisation.
    """
    if backend == "auto":
        return rank_backends(
            clip, sample_pixels, label_embeddings, cache_dir, footprint=footprint, memory_budget_mb=memory_budget_mb
        )[0]
    reference = TorchTower(clip)
    tower = make_tower(backend, clip, cache_dir)
    report = fidelity(reference.embed(sample_pixels), tower.embed(sample_pixels), label_embeddings, clip.random_weights)
    if not report.passes:
        log.warning("backend %s misses the fidelity gate here (%s); using it as asked", backend, report.describe())
    return tower
