"""The fidelity gate: whether a faster backend is close enough to the PyTorch fp32 reference to serve.

Close enough is judged by the worst cosine and top-1 agreement. Every shortcut — bf16 weights,
an ONNX graph, int8 weights, NumPy preprocessing, the exported tokenizer — is checked with this
one rule before a processor may use it. With random weights only the cosine counts: their label
scores are near-uniform, so top-1 is a coin toss.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .zero_shot import min_cosine

#: The fidelity gate: minimum cosine to the fp32 embedding, minimum top-1 agreement.
MIN_COSINE = 0.999
MIN_TOP1_AGREEMENT = 0.98


@dataclass(frozen=True)
class Fidelity:
    """How closely a backend reproduces fp32: worst cosine between embeddings, and top-1 label agreement."""

    min_cosine: float
    top1_agreement: float
    random_weights: bool = False  # then top-1 agreement does not count (see the module's docstring)

    @property
    def passes(self) -> bool:
        """True when the candidate may serve in place of the reference."""
        return self.min_cosine >= MIN_COSINE and (self.random_weights or self.top1_agreement >= MIN_TOP1_AGREEMENT)

    def describe(self) -> str:
        return f"cosine {self.min_cosine:.5f}, top-1 {self.top1_agreement * 100:.0f}%"


def top1_agreement(reference_scores, candidate_scores) -> float:
    """Share of rows (images) whose best-scoring label is the same in both N×L score arrays."""
    return float((np.asarray(reference_scores).argmax(-1) == np.asarray(candidate_scores).argmax(-1)).mean())


def fidelity(reference, candidate, label_embeddings, random_weights: bool = False) -> Fidelity:
    """Compare two N×D embedding batches of the same images (and their top-1 labels); arrays or tensors."""
    ref, cand = np.asarray(reference, np.float32), np.asarray(candidate, np.float32)
    labels = np.asarray(label_embeddings, np.float32)
    return Fidelity(min_cosine(ref, cand), top1_agreement(ref @ labels.T, cand @ labels.T), random_weights)


def end_to_end_fidelity(
    cosines: Sequence[float], reference_scores, candidate_scores, random_weights: bool = False
) -> Fidelity:
    """The gate over a whole scorer.

    It takes the worst of several embedding cosines (images, texts), and top-1 of its probabilities.
    """
    return Fidelity(min(cosines), top1_agreement(reference_scores, candidate_scores), random_weights)
