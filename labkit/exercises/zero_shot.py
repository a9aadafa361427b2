"""Checks for notebook 09 (CLIP zero-shot).

Softmax with logit_scale by hand, and a classifier that can say "unknown".
"""

from __future__ import annotations

from typing import Any

from ._feedback import ExerciseFailed
from ._feedback import require as _require
from ._feedback import solved as _solved


def check_zero_shot_probabilities(probs: Any, image_vector, label_vectors, logit_scale: float) -> None:
    """The learner turned one image's cosines with each label into CLIP's softmax probabilities."""
    import numpy as np

    from ..clip.zero_shot import probabilities

    _require(
        probs is not Ellipsis and probs is not None,
        "Set `probs` to a NumPy array with one probability per label (replace the `...`).",
    )
    probs = np.asarray(probs, dtype=np.float64).reshape(-1)
    expected = probabilities(np.asarray(image_vector)[None], np.asarray(label_vectors), logit_scale)[0]
    _require(
        probs.shape == expected.shape,
        f"`probs` has {probs.size} value(s); there are {expected.size} labels, so expect one per label "
        "(`label_vectors @ image_vector` gives one cosine per label).",
    )
    _require(
        abs(probs.sum() - 1) < 1e-4,
        f"Your probabilities sum to {probs.sum():.4f}, not 1. Softmax: exponentiate, then divide by the sum.",
    )
    unscaled = probabilities(np.asarray(image_vector)[None], np.asarray(label_vectors), 1.0)[0]
    _require(
        not np.allclose(probs, unscaled, atol=1e-5) or np.allclose(unscaled, expected, atol=1e-5),
        "Almost: these are the softmax of the raw cosines. Multiply the cosines by `logit_scale` first — "
        "cosines only span ~0.1–0.35, so without it every label gets about the same probability.",
    )
    _require(
        np.allclose(probs, expected, atol=1e-4),
        f"Not CLIP's probabilities yet: expected {np.round(expected, 4).tolist()}, got "
        f"{np.round(probs, 4).tolist()}. Cosine = label_vectors @ image_vector (they are unit vectors).",
    )
    _solved(
        f"those are CLIP's probabilities; the best label gets {expected.max():.1%} — relative to these "
        f"{expected.size} labels only."
    )


def check_unknown_threshold(predict: Any) -> None:
    """The learner's ``predict(cosines, threshold)`` returns the best label, or "unknown".

    "unknown" is the answer when even the best label is a weak match.
    """
    _require(callable(predict), "Define a function `predict(cosines, threshold)` (replace the `...`).")
    cases = [
        ({"cat": 0.31, "dog": 0.22, "teapot": 0.12}, 0.25, "cat"),
        ({"cat": 0.18, "dog": 0.21, "teapot": 0.12}, 0.25, "unknown"),
        ({"cat": 0.18, "dog": 0.21, "teapot": 0.12}, 0.20, "dog"),
        ({"rocket": 0.25}, 0.25, "rocket"),
    ]
    for cosines, threshold, expected in cases:
        try:
            answer = predict(dict(cosines), threshold)
        except Exception as exc:  # the learner's code; show what went wrong
            raise ExerciseFailed(f"predict({cosines}, {threshold}) raised {type(exc).__name__}: {exc}") from None
        _require(
            answer == expected,
            f"predict({cosines}, threshold={threshold}) returned {answer!r}, expected {expected!r}. "
            "Take the label with the highest cosine; if that cosine is below the threshold, say "
            "'unknown' (a cosine exactly at the threshold still counts).",
        )
    _solved("your classifier can say 'unknown' — softmax alone never does, it always picks one of the labels.")
