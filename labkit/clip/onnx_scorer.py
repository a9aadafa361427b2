"""The ONNX Runtime adapter: a scorer that runs CLIP's exported towers and never imports PyTorch.

It runs the exported image and text towers, with NumPy preprocessing.

Why it exists: importing PyTorch costs ~500 MB of resident memory before a single weight is
loaded, and a processor that runs ONNX Runtime never calls it. It serves from the folder the
export step leaves in the artifact store (:mod:`.artifacts`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .artifacts import TOKENIZER_FILE, Manifest, image_tower_file
from .base import Scorer
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES
from .preprocess import Preprocess
from .tokens import ClipTokenizer

log = logging.getLogger(__name__)


def onnx_session(path: Path, threads: int):
    """An ONNX Runtime CPU session with every graph optimisation, using ``threads`` cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    # ONNX Runtime's worker threads spin (busy-wait) between parallel sections by default. On a machine the
    # web app, broker and sink share, that spinning is CPU they do not get: measured here (2 cores, ViT-B-32 int8)
    # beside one busy thread, batch 8 ran at 37 img/s without spinning and 28 with it, and one image every
    # 20 ms cost 43 ms of CPU instead of 61; the tower alone lost 4 % (59.5 vs 61.8 img/s).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxScorer(Scorer):
    """Scores images with the exported towers in ``folder``; imports neither PyTorch nor open_clip."""

    def __init__(
        self,
        folder: Path,
        backend: str,
        text_tower: str,
        threads: int,
        labels: Sequence[str] = DEFAULT_LABELS,
        templates: Sequence[str] = DEFAULT_TEMPLATES,
        top_k: int = 5,
    ):
        super().__init__(labels, templates, top_k)
        manifest = Manifest.read(folder)
        self.folder = folder
        self.model_id = manifest.model_id
        self.random_weights = manifest.random_weights
        self.input_size = manifest.input_size
        self._backend = backend
        self._logit_scale = manifest.logit_scale
        self._preprocess = Preprocess(manifest.input_size, manifest.mean, manifest.std)
        self._images = onnx_session(folder / image_tower_file(backend), threads)
        self._texts = onnx_session(folder / text_tower, threads)
        self._tokenizer = ClipTokenizer(folder / TOKENIZER_FILE)

    @property
    def backend(self) -> str:
        return self._backend

    @property
    def logit_scale(self) -> float:
        return self._logit_scale

    def preprocess(self, image: Image.Image) -> np.ndarray:
        return self._preprocess(image)

    def embed_images(self, pixels: Sequence[Any]) -> np.ndarray:
        batch = pixels if isinstance(pixels, np.ndarray) else np.stack([np.asarray(p, np.float32) for p in pixels])
        return self._images.run(None, {"pixels": np.ascontiguousarray(batch, np.float32)})[0]

    def embed_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        return self._texts.run(None, {"tokens": self._tokenizer(prompts)})[0]
