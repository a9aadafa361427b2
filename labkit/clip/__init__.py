"""CLIP zero-shot scoring with open_clip: load a model, embed labels once, score images — in PyTorch, or exported to ONNX without it.

The PyTorch-free parts import eagerly; names that need PyTorch load on first use, so a
processor serving ONNX never pays PyTorch's ~500 MB.
"""

from importlib import import_module

from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES, read_labels
from .prepare import build_scorer
from .runtime import OnnxScorer
from .scoring import Scorer

_NEEDS_TORCH = {"BACKENDS": ".backends", "ImageTower": ".backends", "choose_tower": ".backends",
                "make_tower": ".backends", "ClipScorer": ".scorer", "LoadedClip": ".loading", "load_clip": ".loading"}

__all__ = ["BACKENDS", "ClipScorer", "DEFAULT_LABELS", "DEFAULT_TEMPLATES", "ImageTower", "LoadedClip",
           "OnnxScorer", "Scorer", "build_scorer", "choose_tower", "load_clip", "make_tower", "read_labels"]


def __getattr__(name: str):
    if name in _NEEDS_TORCH:
        return getattr(import_module(_NEEDS_TORCH[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
