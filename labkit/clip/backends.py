"""Image-tower backends: run CLIP's image encoder in PyTorch (fp32 or bf16) or ONNX Runtime (fp32 or int8), and pick the fastest faithful one.

Almost all of CLIP's cost per image is the image tower (ViT-B/32: 8.8 GFLOP per image), so
that is what the backends swap. (The text tower runs once per label set; the PyTorch-free
runtime in :mod:`.runtime` exports it too.)

* ``torch-fp32``  the reference: open_clip's module as it is.
* ``torch-bf16``  the weights *cast* to bfloat16 (not autocast, which re-casts them on every
  call). Fast only on CPUs with native bf16 (AVX-512 BF16, AMX); emulated elsewhere.
* ``onnx-fp32``   the tower exported to ONNX and run by ONNX Runtime's graph optimiser.
* ``onnx-int8``   the ONNX graph with weight matrices quantized to int8 ("dynamic"
  quantization: activations are quantized on the fly), one scale per output channel; on
  CPUs without VNNI with 7-bit weights (cosine to fp32 fell to ~0.985 there without it; see
  :mod:`.cpu`).

ONNX files are exported on first use and cached on disk, keyed by model and weights.
:func:`choose_tower` implements ``LABKIT_BACKEND=auto``: every available backend must pass the
*fidelity gate* against fp32 on sample photos, and the fastest that passes wins. (With random
weights only the cosine counts: their label scores are near-uniform, so top-1 is noise.)
"""

from __future__ import annotations

import copy
import logging
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .cpu import native_bf16
from .loading import LoadedClip
from .zero_shot import min_cosine

log = logging.getLogger(__name__)

BACKENDS = ("torch-fp32", "torch-bf16", "onnx-fp32", "onnx-int8")
#: The fidelity gate: minimum cosine to the fp32 embedding, minimum top-1 agreement.
MIN_COSINE = 0.999
MIN_TOP1_AGREEMENT = 0.98


class ImageTower(ABC):
    """One way of running the image encoder: preprocessed pixels (N×3×H×W) → embeddings (N×D, float32)."""

    name: str

    @abstractmethod
    def embed(self, pixels: torch.Tensor) -> torch.Tensor: ...


class TorchTower(ImageTower):
    """open_clip's own module, in fp32 or with its weights cast to bf16."""

    def __init__(self, clip: LoadedClip, dtype: torch.dtype = torch.float32):
        self.dtype = dtype
        self.name = "torch-fp32" if dtype == torch.float32 else "torch-bf16"
        visual = clip.model.visual
        self.module = visual if dtype == torch.float32 else copy.deepcopy(visual).to(dtype)

    @torch.inference_mode()
    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module(pixels.to(self.dtype)).float()


class OnnxTower(ImageTower):
    """The tower as an ONNX graph run by ONNX Runtime on the CPU."""

    def __init__(self, path: Path, name: str):
        from .runtime import onnx_session

        self.name = name
        self.path = path
        self.session = onnx_session(path, torch.get_num_threads())  # the same CPU budget as PyTorch

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"pixels": pixels.contiguous().numpy()})[0])


def make_tower(name: str, clip: LoadedClip, cache_dir: Path | None = None) -> ImageTower:
    """The backend called ``name`` (one of :data:`BACKENDS`)."""
    if name == "torch-fp32":
        return TorchTower(clip)
    if name == "torch-bf16":
        return TorchTower(clip, torch.bfloat16)
    if name in ("onnx-fp32", "onnx-int8"):
        from .export import export_image_tower

        return OnnxTower(export_image_tower(clip, cache_dir, quantized=name == "onnx-int8"), name)
    raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)} or auto")


@dataclass(frozen=True)
class Fidelity:
    """How closely a backend reproduces fp32: worst cosine between embeddings, and top-1 label agreement."""

    min_cosine: float
    top1_agreement: float

    @property
    def passes(self) -> bool:
        return self.min_cosine >= MIN_COSINE and self.top1_agreement >= MIN_TOP1_AGREEMENT

    @property
    def passes_cosine(self) -> bool:
        """The gate for random weights, whose near-uniform label scores make top-1 a coin toss."""
        return self.min_cosine >= MIN_COSINE


def fidelity(reference, candidate, label_embeddings) -> Fidelity:
    """Compare two N×D embedding batches of the same images (and their top-1 labels); arrays or tensors."""
    ref, cand = np.asarray(reference, np.float32), np.asarray(candidate, np.float32)
    labels = np.asarray(label_embeddings, np.float32)
    agree = ((ref @ labels.T).argmax(-1) == (cand @ labels.T).argmax(-1)).mean()
    return Fidelity(min_cosine(ref, cand), float(agree))


def _images_per_second(tower: ImageTower, pixels: torch.Tensor, runs: int = 2) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        tower.embed(pixels)
    return runs * len(pixels) / (time.perf_counter() - started)


def choose_tower(clip: LoadedClip, backend: str, sample_pixels: torch.Tensor, label_embeddings,
                 cache_dir: Path | None = None) -> ImageTower:
    """The backend to use; for ``auto``, the fastest that passes the fidelity gate on ``sample_pixels``.

    Every candidate also runs the sample batch here, which doubles as the warm-up: the first
    real request does not pay for lazy initialisation.
    """
    reference = TorchTower(clip)
    expected = reference.embed(sample_pixels)

    def passes(report: Fidelity) -> bool:
        return report.passes_cosine if clip.random_weights else report.passes

    if backend != "auto":
        tower = make_tower(backend, clip, cache_dir)
        report = fidelity(expected, tower.embed(sample_pixels), label_embeddings)
        if not passes(report):
            log.warning("backend %s misses the fidelity gate here (cosine %.5f, top-1 %.0f%%); using it as asked",
                        backend, report.min_cosine, report.top1_agreement * 100)
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
        report = fidelity(expected, tower.embed(sample_pixels), label_embeddings)
        if not passes(report):
            log.info("backend %s fails the fidelity gate (cosine %.5f, top-1 %.0f%%)", name, report.min_cosine,
                     report.top1_agreement * 100)
            continue
        candidates.append((_images_per_second(tower, sample_pixels), tower))
    speed, chosen = max(candidates, key=lambda c: c[0])
    log.info("image backend: %s (%.0f img/s on the warm-up batch; candidates: %s)", chosen.name, speed,
             ", ".join(f"{t.name} {s:.0f}" for s, t in candidates))
    return chosen
