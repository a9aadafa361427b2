"""The on-disk artifact store: where exported ONNX files, their manifest and the backend verdicts live.

It also says how they are named.

The PyTorch work — loading open_clip, exporting, quantizing and checking fidelity — happens
once, in a short-lived child process (:mod:`labkit.clip.prepare`), and leaves one folder per
set of weights that the PyTorch-free scorer (:mod:`labkit.clip.onnx_scorer`) serves from:

``<onnx cache>/<weights key>/``
    ``image-tower.fp32.onnx``, ``image-tower.int8-<recipe>.onnx``  the image tower (backends)
    ``text-tower.fp32.onnx``, ``text-tower.int8-<recipe>.onnx``    the trimmed text tower
    ``tokenizer.json``                                          CLIP's BPE (:mod:`.tokens`)
    ``manifest.json``                                           model id, preprocessing, logit scale
    ``decision-<backend>-<machine>.json``                       which backend passed here, and how well

Every file is written under a temporary name and renamed into place, so processors starting
together never read half a file.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..config import Settings
from .cpu import int8_recipe, machine_signature
from .loading import weights_cache_key

TOKENIZER_FILE = "tokenizer.json"
MANIFEST_FILE = "manifest.json"


def onnx_cache_dir(override: Path | None = None) -> Path:
    """Where exported files live: ``override``, else ``$XDG_CACHE_HOME/labkit/onnx``."""
    if override:
        return Path(override)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "labkit" / "onnx"


def model_folder(cache_key: str, cache_dir: Path | None = None, create: bool = False) -> Path:
    """The folder of a set of weights (``cache_key``: see :func:`~labkit.clip.loading.weights_cache_key`)."""
    folder = onnx_cache_dir(cache_dir) / cache_key
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    return folder


def settings_folder(settings: Settings) -> Path:
    """The folder of the weights ``settings`` name, found without loading them (nor importing PyTorch)."""
    return model_folder(weights_cache_key(settings), settings.onnx_cache_dir)


def write_json_atomically(path: Path, data: Any) -> None:
    """Write to a temporary name, then rename: a reader (a processor starting) never sees half a file."""
    partial = path.with_suffix(f".{os.getpid()}.tmp")
    partial.write_text(json.dumps(data, indent=2))
    os.replace(partial, path)


def image_tower_file(backend: str) -> str:
    """Image tower file name for ``onnx-fp32`` or ``onnx-int8`` (the int8 recipe depends on the CPU)."""
    return "image-tower.fp32.onnx" if backend == "onnx-fp32" else f"image-tower.int8-{int8_recipe()}.onnx"


def text_tower_file(quantized: bool) -> str:
    """File name of the trimmed text tower, fp32 or int8."""
    return f"text-tower.int8-{int8_recipe()}.onnx" if quantized else "text-tower.fp32.onnx"


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
        data = json.loads((folder / MANIFEST_FILE).read_text())
        return cls(**{**data, "mean": tuple(data["mean"]), "std": tuple(data["std"])})

    def write(self, folder: Path) -> None:
        write_json_atomically(folder / MANIFEST_FILE, asdict(self))


@dataclass(frozen=True)
class Decision:
    """The verdict of the export step for one requested backend on one machine (the decision cache).

    ``backend`` is what to run. ``torch_free`` says whether the PyTorch-free runtime (ONNX +
    NumPy + tokenizers) passed the fidelity gate end to end; if not, the processor keeps PyTorch.
    """

    requested: str
    backend: str
    torch_free: bool
    text_tower: str | None  # file name of the text tower that passed, when torch_free
    image_cosine: float | None = None
    text_cosine: float | None = None
    top1_agreement: float | None = None
    reason: str = ""
    memory_budget_mb: int | None = None  # LABKIT_BACKEND_MEMORY_MB when ``auto`` chose (None: from before budgets)

    @staticmethod
    def path(folder: Path, requested: str, threads: int) -> Path:
        return folder / f"decision-{requested}-{machine_signature(threads)}.json"

    @classmethod
    def read(cls, folder: Path, requested: str, threads: int, memory_budget_mb: int | None = None) -> Decision | None:
        """The verdict cached for ``requested``; None if none, or if ``auto`` chose it under another budget."""
        try:
            decision = cls(**json.loads(cls.path(folder, requested, threads).read_text()))
        except (OSError, ValueError, TypeError):
            return None
        if requested == "auto" and memory_budget_mb is not None and decision.memory_budget_mb != memory_budget_mb:
            return None
        return decision

    def write(self, folder: Path, threads: int) -> None:
        write_json_atomically(self.path(folder, self.requested, threads), asdict(self))
