"""Image-tower backends: run CLIP's image encoder in PyTorch (fp32 or bf16) or ONNX Runtime (fp32 or int8), and pick the fastest faithful one.

Almost all of CLIP's cost per image is the image tower (ViT-B/32: 8.8 GFLOP per image), so
that is what the backends swap. The text tower runs once per label set and stays in PyTorch.

* ``torch-fp32``  the reference: open_clip's module as it is.
* ``torch-bf16``  the weights *cast* to bfloat16 (not autocast, which re-casts them on every
  call). Fast only on CPUs with native bf16 (AVX-512 BF16, AMX); emulated elsewhere.
* ``onnx-fp32``   the tower exported to ONNX and run by ONNX Runtime's graph optimiser.
* ``onnx-int8``   the ONNX graph with weight matrices quantized to int8 ("dynamic"
  quantization: activations are quantized on the fly), one scale per output channel.
  ``reduce_range`` keeps weights to 7 bits: on CPUs without VNNI the int8 multiply-add
  saturates 16-bit sums otherwise (cosine to fp32 fell to ~0.985 here without it).

ONNX files are exported on first use and cached on disk, keyed by model and weights.
:func:`choose_tower` implements ``LABKIT_BACKEND=auto``: every available backend must pass the
*fidelity gate* against fp32 on sample photos, and the fastest that passes wins. (With random
weights only the cosine counts: their label scores are near-uniform, so top-1 is noise.)
"""

from __future__ import annotations

import copy
import logging
import os
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

import torch

from .loading import LoadedClip

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
        import onnxruntime as ort

        self.name = name
        self.path = path
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = torch.get_num_threads()  # the same CPU budget as PyTorch
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"pixels": pixels.contiguous().numpy()})[0])


def onnx_cache_dir(override: Path | None = None) -> Path:
    """Where exported ONNX files live: ``override``, else ``$XDG_CACHE_HOME/labkit/onnx``."""
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labkit" / "onnx"


def export_onnx(clip: LoadedClip, cache_dir: Path | None = None, quantized: bool = False) -> Path:
    """The image tower as an ONNX file (int8 if ``quantized``), exported once and then reused."""
    folder = onnx_cache_dir(cache_dir) / clip.cache_key
    fp32 = folder / "image-tower.fp32.onnx"
    target = folder / ("image-tower.int8-pc-rr.onnx" if quantized else fp32.name)  # name = quantization recipe
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    if not fp32.is_file():
        log.info("exporting the %s image tower to ONNX (once; cached in %s)", clip.model_id, folder)
        size = clip.model.visual.image_size
        example = torch.zeros(1, 3, *(size if isinstance(size, tuple) else (size, size)))
        partial = fp32.with_suffix(f".{os.getpid()}.tmp")
        # Grad enabled on purpose: under no_grad, PyTorch's attention takes a fused fast path
        # that the (TorchScript-based) exporter cannot translate.
        with torch.enable_grad():
            torch.onnx.export(clip.model.visual, (example,), str(partial), input_names=["pixels"],
                              output_names=["embedding"], opset_version=17, dynamo=False,
                              dynamic_axes={"pixels": {0: "batch"}, "embedding": {0: "batch"}})
        os.replace(partial, fp32)
    if quantized:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        log.info("quantizing the %s image tower to int8 (once)", clip.model_id)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        quantize_dynamic(str(fp32), str(partial), weight_type=QuantType.QInt8, reduce_range=True, per_channel=True,
                         op_types_to_quantize=["MatMul", "Gemm"], extra_options={"MatMulConstBOnly": True})
        os.replace(partial, target)
    return target


def make_tower(name: str, clip: LoadedClip, cache_dir: Path | None = None) -> ImageTower:
    """The backend called ``name`` (one of :data:`BACKENDS`)."""
    if name == "torch-fp32":
        return TorchTower(clip)
    if name == "torch-bf16":
        return TorchTower(clip, torch.bfloat16)
    if name in ("onnx-fp32", "onnx-int8"):
        return OnnxTower(export_onnx(clip, cache_dir, quantized=name == "onnx-int8"), name)
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


def fidelity(reference: torch.Tensor, candidate: torch.Tensor, label_embeddings: torch.Tensor) -> Fidelity:
    """Compare two N×D embedding batches of the same images (and their top-1 labels)."""
    ref = reference / reference.norm(dim=-1, keepdim=True)
    cand = candidate / candidate.norm(dim=-1, keepdim=True)
    cosine = (ref * cand).sum(dim=-1)
    agree = ((ref @ label_embeddings.T).argmax(-1) == (cand @ label_embeddings.T).argmax(-1)).float().mean()
    return Fidelity(float(cosine.min()), float(agree))


def native_bf16() -> bool:
    """True when this CPU computes bfloat16 in hardware (otherwise torch emulates it, slowly)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def _images_per_second(tower: ImageTower, pixels: torch.Tensor, runs: int = 2) -> float:
    started = time.perf_counter()
    for _ in range(runs):
        tower.embed(pixels)
    return runs * len(pixels) / (time.perf_counter() - started)


def choose_tower(clip: LoadedClip, backend: str, sample_pixels: torch.Tensor, label_embeddings: torch.Tensor,
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
