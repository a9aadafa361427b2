"""Build the scorer a processor runs, serving without PyTorch when it can.

Decide once per model and machine (in a PyTorch child process) which backend passes the fidelity
gate, then serve without PyTorch when it can.

The decision needs PyTorch — open_clip is the reference every backend is compared with — but
serving an ONNX backend does not. Importing PyTorch costs ~500 MB of resident memory that is
never given back, so the deciding happens in a short-lived *child* process:

1. load the model in PyTorch, export and quantize the towers (cached on disk);
2. pick the backend (``auto``: the fastest that passes the gate, see :mod:`.backends`);
3. for an ONNX backend, check the whole PyTorch-free path against PyTorch on the sample photos
   with the same fidelity gate (:mod:`.fidelity`) — NumPy preprocessing, ONNX image tower,
   tokenizer, ONNX text tower (int8, else fp32) — and write the verdict next to the files
   (:class:`~labkit.clip.artifacts.Decision`).

The parent then loads :class:`~labkit.clip.onnx_scorer.OnnxScorer` and never imports PyTorch.
The next start on the same machine reads the verdict and skips the child entirely. When the
verdict is a PyTorch backend (or the PyTorch-free path missed the gate), the parent loads
open_clip itself, as before.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import TypedDict

import numpy as np

from ..config import Settings
from ..errors import LabkitError, ModelUnavailable
from ..images import load_rgb
from ..samples import sample_photos
from .artifacts import Decision, model_folder, settings_folder
from .base import Scorer
from .fidelity import end_to_end_fidelity
from .labels import DEFAULT_LABELS, read_labels
from .onnx_scorer import OnnxScorer
from .zero_shot import min_cosine

log = logging.getLogger(__name__)

#: Backends that may run without PyTorch in the serving process.
TORCH_FREE_CANDIDATES = ("auto", "onnx-fp32", "onnx-int8")


class _Verdict(TypedDict):
    """The fields every :class:`Decision` of :func:`decide` starts from."""

    requested: str
    backend: str
    torch_free: bool
    text_tower: str | None
    memory_budget_mb: int


def default_threads() -> int:
    """CPU threads for inference when none are configured: the cores this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _labels(settings: Settings) -> tuple[str, ...]:
    return read_labels(settings.labels_file) if settings.labels_file else DEFAULT_LABELS


def _sample_images():
    return [load_rgb(path.read_bytes()) for path in sample_photos().values()]


def decide(settings: Settings, threads: int) -> Decision:
    """Pick and check the backend for ``settings`` on this machine (imports PyTorch; run in a child)."""
    import torch

    from .backends import choose_tower
    from .export import export_text_tower, export_tokenizer, write_manifest
    from .footprint import serving_footprint_mb
    from .loading import load_clip
    from .tokens import AWKWARD_TEXTS, ClipTokenizer
    from .torch_scorer import ClipScorer

    torch.set_num_threads(threads)
    clip = load_clip(settings)
    reference = ClipScorer(clip, labels=_labels(settings))
    images = _sample_images()
    pixels = torch.stack([reference.preprocess(image) for image in images])
    label_embeddings = reference.label_embeddings()
    # Exported before the choice, so that an ONNX backend's measured footprint counts its text tower too.
    text_towers = [export_text_tower(clip, settings.onnx_cache_dir, quantized=q) for q in (True, False)]
    tower = choose_tower(
        clip,
        settings.backend,
        pixels,
        label_embeddings,
        settings.onnx_cache_dir,
        footprint=lambda backend: serving_footprint_mb(settings, backend, threads),
        memory_budget_mb=settings.backend_memory_mb,
    )
    verdict: _Verdict = {
        "requested": settings.backend,
        "backend": tower.name,
        "torch_free": False,
        "text_tower": None,
        "memory_budget_mb": settings.backend_memory_mb,
    }
    if not tower.name.startswith("onnx-"):
        return Decision(**verdict, reason=f"{tower.name} runs in PyTorch")

    manifest = write_manifest(clip, settings.onnx_cache_dir)
    tokenizer_file = export_tokenizer(clip, settings.onnx_cache_dir)
    if manifest is None or tokenizer_file is None or text_towers[0] is None:
        return Decision(
            **verdict,
            reason="this model's preprocessing, tokenizer or text tower has no PyTorch-free version in labkit",
        )
    prompts = [template.format(label) for label in reference.labels for template in reference.templates]
    ours = ClipTokenizer(tokenizer_file)(prompts + list(AWKWARD_TEXTS))
    theirs = clip.tokenizer(prompts + list(AWKWARD_TEXTS)).numpy()
    if not (np.array_equal(theirs[:, : ours.shape[1]], ours) and not theirs[:, ours.shape[1] :].any()):
        return Decision(**verdict, reason="the exported tokenizer differs from open_clip's")

    expected_images = reference.embed_images(pixels)
    expected_texts = reference.embed_prompts(prompts)
    expected_scores = reference.probabilities(pixels)
    folder = model_folder(clip.cache_key, settings.onnx_cache_dir)
    for text_tower in text_towers:
        assert text_tower is not None  # export_text_tower gives both towers, or (checked above) neither
        runtime = OnnxScorer(folder, tower.name, text_tower.name, threads, labels=reference.labels)
        runtime_pixels = [runtime.preprocess(image) for image in images]
        image_cosine = min_cosine(expected_images, runtime.embed_images(runtime_pixels))
        text_cosine = min_cosine(expected_texts, runtime.embed_prompts(prompts))
        report = end_to_end_fidelity(
            [image_cosine, text_cosine], expected_scores, runtime.probabilities(runtime_pixels), clip.random_weights
        )
        log.info(
            "PyTorch-free runtime with %s and %s: image cosine %.5f, text cosine %.5f, top-1 %.0f%% → %s",
            tower.name,
            text_tower.name,
            image_cosine,
            text_cosine,
            report.top1_agreement * 100,
            "passes" if report.passes else "fails",
        )
        if report.passes:
            return Decision(
                **(verdict | {"torch_free": True, "text_tower": text_tower.name}),
                image_cosine=image_cosine,
                text_cosine=text_cosine,
                top1_agreement=report.top1_agreement,
            )
    return Decision(**verdict, reason="the PyTorch-free runtime missed the fidelity gate")


def decide_in_child(settings: Settings, threads: int) -> Decision:
    """:func:`decide` in a fresh Python process, which exits with its memory; its log lines show here live."""
    log.info("checking backends for %s on this machine (once; a child process loads PyTorch)", settings.model)
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")} | settings.to_env()
    env["LABKIT_LOG_LEVEL"] = logging.getLevelName(logging.getLogger("labkit").getEffectiveLevel())
    child = subprocess.Popen(
        [sys.executable, "-m", "labkit.clip", str(threads)], env=env, stderr=subprocess.PIPE, text=True
    )
    last = ""
    assert child.stderr is not None  # stderr=PIPE
    for line in child.stderr:  # pass progress through; remember the last line (the error, if it fails)
        sys.stderr.write(line)
        last = line.strip() or last
    if child.wait() != 0:  # the child printed "labkit: error: <what to do>" last
        raise ModelUnavailable(
            last.removeprefix("labkit: error: ") or f"the backend check exited with {child.returncode}"
        )
    decision = Decision.read(settings_folder(settings), settings.backend, threads, settings.backend_memory_mb)
    if decision is None:
        raise LabkitError("the backend check wrote no verdict; run it again with LABKIT_LOG_LEVEL=DEBUG")
    return decision


def _torch_scorer(settings: Settings, backend: str, threads: int) -> Scorer:
    import torch

    from .backends import choose_tower
    from .loading import load_clip
    from .torch_scorer import ClipScorer

    torch.set_num_threads(threads)
    scorer = ClipScorer(load_clip(settings), labels=_labels(settings), top_k=settings.top_k)
    pixels = torch.stack([scorer.preprocess(image) for image in _sample_images()])
    scorer.use_tower(choose_tower(scorer.clip, backend, pixels, scorer.label_embeddings(), settings.onnx_cache_dir))
    return scorer


def _onnx_scorer(folder: Path, decision: Decision, settings: Settings, threads: int) -> OnnxScorer | None:
    """The PyTorch-free scorer the verdict allows, or None when the cached files are gone or damaged."""
    try:
        assert decision.text_tower is not None, "the verdict names no text tower"  # only a damaged file lacks it
        return OnnxScorer(
            folder, decision.backend, decision.text_tower, threads, labels=_labels(settings), top_k=settings.top_k
        )
    except Exception as exc:  # deleted, half-copied, or from another onnxruntime version
        log.warning("cached ONNX files in %s are unusable (%s); exporting them again", folder, exc)
        return None


def build_scorer(settings: Settings) -> Scorer:
    """The scorer ``settings`` describe, warmed up: PyTorch-free when the chosen backend allows it."""
    threads = settings.inference_threads or default_threads()
    backend: str = settings.backend
    if backend in TORCH_FREE_CANDIDATES:
        folder = settings_folder(settings)
        decision = Decision.read(folder, backend, threads, settings.backend_memory_mb)
        scorer = _onnx_scorer(folder, decision, settings, threads) if decision and decision.torch_free else None
        if decision is None or (decision.torch_free and scorer is None):
            decision = decide_in_child(settings, threads)
            scorer = _onnx_scorer(folder, decision, settings, threads) if decision.torch_free else None
        if scorer is not None:
            scorer.score(_sample_images())  # warm-up: the first request pays for no lazy initialisation
            log.info("image backend: %s, without PyTorch (verdict cached in %s)", scorer.backend, folder)
            return scorer
        log.info("image backend: %s, with PyTorch in this process (%s)", decision.backend, decision.reason)
        backend = decision.backend
    return _torch_scorer(settings, backend, threads)
