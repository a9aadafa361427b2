"""CLIP zero-shot scoring with open_clip: load a model, embed labels once, score images.

The model runs in PyTorch, or exported to ONNX without it.

One scorer base, two runtime adapters, in the order a reader meets them:

    labels        the candidate labels and prompt templates
    zero_shot     the NumPy arithmetic: unit vectors, scaled cosines, softmax, top-k
    base          Scorer: what every scorer does (label-embedding cache, batching, top-k)
    loading       where weights come from (open_clip, a checkpoint, the random test model)
    towers        the image tower (PyTorch fp32/bf16, ONNX) and the trimmed text tower   [PyTorch]
    torch_scorer  ClipScorer: the PyTorch adapter, the reference                          [PyTorch]
    cpu           what this CPU computes fast (bf16, int8), read without PyTorch
    tokens        CLIP's tokenizer as a ``tokenizers`` file, no PyTorch
    preprocess    CLIP's image preprocessing in Pillow and NumPy
    artifacts     the on-disk store: exported files, manifest, cache folders, decision cache
    export        writing the ONNX towers, tokenizer and manifest                       [PyTorch]
    onnx_scorer   OnnxScorer: the ONNX Runtime adapter, no PyTorch
    fidelity      the gate every faster backend must pass against the reference
    footprint     a backend's serving memory: the peak resident set of a process serving it
    backends      image backends by name, and ``auto``: the fastest that passes and fits [PyTorch]
    prepare       build_scorer: decide once in a child process, then serve without PyTorch

The PyTorch-free parts import eagerly; names that need PyTorch load on first use, so a
processor serving ONNX never pays PyTorch's ~500 MB.
"""

from importlib import import_module

from .base import BACKENDS, Scorer
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES, read_labels
from .loading import LoadedClip, load_clip
from .onnx_scorer import OnnxScorer
from .prepare import build_scorer

_NEEDS_TORCH = {
    "ImageTower": ".towers",
    "choose_tower": ".backends",
    "make_tower": ".backends",
    "ClipScorer": ".torch_scorer",
}

__all__ = [
    "BACKENDS",
    "ClipScorer",
    "DEFAULT_LABELS",
    "DEFAULT_TEMPLATES",
    "ImageTower",
    "LoadedClip",
    "OnnxScorer",
    "Scorer",
    "build_scorer",
    "choose_tower",
    "load_clip",
    "make_tower",
    "read_labels",
]


def __getattr__(name: str):
    if name in _NEEDS_TORCH:
        return getattr(import_module(_NEEDS_TORCH[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
