"""The PyTorch-free scorer: CLIP's exported ONNX image and text towers run by ONNX Runtime, with NumPy preprocessing.

Why it exists: importing PyTorch costs ~500 MB of resident memory before a single weight is
loaded, and a processor that runs ONNX Runtime never calls it. So the PyTorch work — loading
open_clip, exporting, quantizing and checking fidelity — happens once, in a short-lived child
process (:mod:`labkit.clip.prepare`), and leaves a folder this module serves from:

``<onnx cache>/<weights key>/``
    ``image-tower.fp32.onnx``, ``image-tower.int8-<recipe>.onnx``  the image tower (backends)
    ``text-tower.fp32.onnx``, ``text-tower.int8-<recipe>.onnx``    the trimmed text tower
    ``tokenizer.json``                                          CLIP's BPE (:mod:`.tokens`)
    ``manifest.json``                                           model id, preprocessing, logit scale
    ``decision-<machine>.json``                                 which backend passed here, and how well
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from .cpu import int8_recipe, machine_signature
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES
from .preprocess import Preprocess
from .scoring import Scorer
from .tokens import ClipTokenizer

log = logging.getLogger(__name__)


def onnx_cache_dir(override: Path | None = None) -> Path:
    """Where exported files live: ``override``, else ``$XDG_CACHE_HOME/labkit/onnx``."""
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labkit" / "onnx"


def onnx_session(path: Path, threads: int):
    """An ONNX Runtime CPU session with every graph optimisation, using ``threads`` cores."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass(frozen=True)
class Manifest:
    """What the runtime needs to know about the exported model (written by the export step)."""

    model_id: str
    random_weights: bool
    input_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    logit_scale: float

    @classmethod
    def read(cls, folder: Path) -> Manifest:
        data = json.loads((folder / "manifest.json").read_text())
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})

    def write(self, folder: Path) -> None:
        write_json_atomically(folder / "manifest.json", asdict(self))


@dataclass(frozen=True)
class Decision:
    """The verdict of the export step for one requested backend on one machine.

    ``backend`` is what to run. ``torch_free`` says whether this runtime (ONNX + NumPy +
    tokenizers) passed the fidelity gate end to end; if not, the processor keeps PyTorch.
    """

    requested: str
    backend: str
    torch_free: bool
    text_tower: str | None  # file name of the text tower that passed, when torch_free
    image_cosine: float | None = None
    text_cosine: float | None = None
    top1_agreement: float | None = None
    reason: str = ""

    @staticmethod
    def path(folder: Path, requested: str, threads: int) -> Path:
        return folder / f"decision-{requested}-{machine_signature(threads)}.json"

    @classmethod
    def read(cls, folder: Path, requested: str, threads: int) -> Decision | None:
        try:
            return cls(**json.loads(cls.path(folder, requested, threads).read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def write(self, folder: Path, threads: int) -> None:
        write_json_atomically(self.path(folder, self.requested, threads), asdict(self))


def write_json_atomically(path: Path, data: Any) -> None:
    """Write to a temporary name, then rename: a reader (another processor starting) never sees half a file."""
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(data, indent=2))
    os.replace(partial, path)


def image_tower_file(backend: str) -> str:
    """File name of the image tower for ``onnx-fp32`` or ``onnx-int8`` (the int8 recipe depends on the CPU)."""
    return "image-tower.fp32.onnx" if backend == "onnx-fp32" else f"image-tower.int8-{int8_recipe()}.onnx"


def text_tower_file(quantized: bool) -> str:
    return f"text-tower.int8-{int8_recipe()}.onnx" if quantized else "text-tower.fp32.onnx"


class OnnxScorer(Scorer):
    """Scores images with the exported towers in ``folder``; imports neither PyTorch nor open_clip."""

    def __init__(self, folder: Path, backend: str, text_tower: str, threads: int,
                 labels: Sequence[str] = DEFAULT_LABELS, templates: Sequence[str] = DEFAULT_TEMPLATES, top_k: int = 5):
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
        self._tokenizer = ClipTokenizer(folder / "tokenizer.json")

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
