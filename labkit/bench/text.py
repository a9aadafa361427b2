"""Text-tower speed: how long embedding a large custom label set takes, trimmed versus the full 77-token sequences."""

from __future__ import annotations

import time

import torch

from ..clip import DEFAULT_LABELS, DEFAULT_TEMPLATES, ClipScorer
from ..clip.scorer import encode_text_trimmed

ADJECTIVES = ("red", "small", "old", "wet", "happy", "striped", "wooden", "tiny", "giant", "blue", "sleepy",
              "shiny", "green", "broken", "fluffy")


def thousand_labels() -> list[str]:
    """1,000 distinct, realistic labels ("striped teapot", "sleepy dog", …)."""
    return [f"{adjective} {label}" for adjective in ADJECTIVES for label in DEFAULT_LABELS][:1000]


def text_tower_speed(scorer: ClipScorer, labels: list[str]) -> dict:
    """Seconds to embed ``labels`` as custom labels (as a request's labels are), trimmed vs full length."""
    started = time.perf_counter()
    scorer.label_embeddings(labels)
    ensemble_s = time.perf_counter() - started
    sample = scorer.clip.tokenizer([DEFAULT_TEMPLATES[0].format(label) for label in labels[:100]])
    timings = {}
    for name, encode in (("trimmed", lambda t: encode_text_trimmed(scorer.clip.model, t)),
                         ("full", scorer.clip.model.encode_text)):
        started = time.perf_counter()
        with torch.inference_mode():
            encode(sample)
        timings[name] = time.perf_counter() - started
    templates = 1  # custom label sets use one prompt template (see ClipScorer.label_embeddings)
    return {"labels": len(labels), "templates": templates, "prompts": len(labels) * templates,
            "seconds": round(ensemble_s, 2), "trim_speedup": round(timings["full"] / timings["trimmed"], 1)}
