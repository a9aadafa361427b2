"""Zero-shot arithmetic both scorers share, in NumPy: unit vectors, scaled cosines, softmax, top-k.

Kept free of PyTorch so the ONNX runtime (no PyTorch in the process) and the PyTorch scorer
compute probabilities with literally the same code.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..records.wire import LabelScore


def unit(vectors: np.ndarray) -> np.ndarray:
    """Each row scaled to length 1, so a dot product between rows is their cosine similarity."""
    return vectors / np.linalg.norm(vectors, axis=-1, keepdims=True)


def min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    """The worst cosine similarity between matching rows of two batches (1.0 = same directions)."""
    return float((unit(np.asarray(a, np.float32)) * unit(np.asarray(b, np.float32))).sum(axis=-1).min())


def probabilities(image_embeddings: np.ndarray, label_embeddings: np.ndarray, logit_scale: float) -> np.ndarray:
    """N×L softmax over ``logit_scale`` × cosine(image, label): relative to *these* labels only.

    Raw cosines of a good match are only ~0.3; CLIP learned ``logit_scale`` (100 for OpenAI's
    weights) to spread them before the softmax, which is why two labels can read 99 % / 1 %.
    """
    logits = logit_scale * unit(image_embeddings) @ unit(label_embeddings).T
    logits = logits - logits.max(axis=-1, keepdims=True)  # same result, no overflow in exp
    weights = np.exp(logits)
    return weights / weights.sum(axis=-1, keepdims=True)


def top_labels(probs: np.ndarray, names: Sequence[str], k: int) -> list[list[LabelScore]]:
    """The ``k`` most probable labels of each row of ``probs``, best first."""
    k = min(k, len(names))
    order = np.argsort(-probs, axis=-1, kind="stable")[:, :k]
    return [
        [LabelScore(label=names[i], score=round(float(row[i]), 6)) for i in best] for row, best in zip(probs, order)
    ]
