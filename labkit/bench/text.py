"""Text-tower speed: how long embedding a large custom label set takes, per scorer, and what trimming the padding saves."""

from __future__ import annotations

import time

import torch

from ..clip import DEFAULT_LABELS, DEFAULT_TEMPLATES, ClipScorer, Scorer
from ..clip.scorer import encode_text_trimmed

ADJECTIVES = ("red", "small", "old", "wet", "happy", "striped", "wooden", "tiny", "giant", "blue", "sleepy",
              "shiny", "green", "broken", "fluffy")


def thousand_labels() -> list[str]:
    """1,000 distinct, realistic labels ("striped teapot", "sleepy dog", …)."""
    return [f"{adjective} {label}" for adjective in ADJECTIVES for label in DEFAULT_LABELS][:1000]


def trim_speedup(scorer: ClipScorer, labels: list[str]) -> float:
    """How much faster the PyTorch text tower is on 100 prompts when their padding is trimmed."""
    sample = scorer.clip.tokenizer([DEFAULT_TEMPLATES[0].format(label) for label in labels[:100]])
    timings = {}
    for name, encode in (("trimmed", lambda t: encode_text_trimmed(scorer.clip.model, t)),
                         ("full", scorer.clip.model.encode_text)):
        started = time.perf_counter()
        with torch.inference_mode():
            encode(sample)
        timings[name] = time.perf_counter() - started
    return round(timings["full"] / timings["trimmed"], 1)


def text_tower_speed(scorer: Scorer, labels: list[str], name: str) -> dict:
    """Seconds ``scorer`` takes to embed ``labels`` as custom labels (one template each, as a request's are)."""
    started = time.perf_counter()
    scorer.label_embeddings(labels)
    return {"scorer": name, "labels": len(labels), "prompts": len(labels), "seconds": round(time.perf_counter() - started, 2)}
