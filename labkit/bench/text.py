"""Text-tower speed: how long embedding a large custom label set takes, per scorer.

It also measures what trimming the padding saves.
"""

from __future__ import annotations

import time

from ..clip import DEFAULT_LABELS, DEFAULT_TEMPLATES, Scorer
from ..clip.zero_shot import min_cosine

ADJECTIVES = (
    "red",
    "small",
    "old",
    "wet",
    "happy",
    "striped",
    "wooden",
    "tiny",
    "giant",
    "blue",
    "sleepy",
    "shiny",
    "green",
    "broken",
    "fluffy",
)


def thousand_labels() -> list[str]:
    """1,000 distinct, realistic labels ("striped teapot", "sleepy dog", …)."""
    return [f"{adjective} {label}" for adjective in ADJECTIVES for label in DEFAULT_LABELS][:1000]


def trimmed_text_tower(scorer, labels: list[str]) -> dict:
    """The PyTorch text tower on 100 prompts, with and without trimming the padding.

    It reports the speed-up and how well the two agree.

    ``scorer`` is a :class:`~labkit.clip.ClipScorer`. ``trim_speedup`` is one timing ratio on
    this machine (a report figure, not a promise); ``trim_min_cosine`` is the worst cosine
    between the two embeddings of a prompt, which must be 1 up to rounding.
    """
    import torch

    from ..clip.towers import encode_text_trimmed

    sample = scorer.clip.tokenizer([DEFAULT_TEMPLATES[0].format(label) for label in labels[:100]])
    timings, embeddings = {}, {}
    for name, encode in (
        ("trimmed", lambda t: encode_text_trimmed(scorer.clip.model, t)),
        ("full", scorer.clip.model.encode_text),
    ):
        started = time.perf_counter()
        with torch.inference_mode():
            embeddings[name] = encode(sample).float().numpy()
        timings[name] = time.perf_counter() - started
    return {
        "trim_speedup": round(timings["full"] / timings["trimmed"], 2),
        "trim_min_cosine": round(min_cosine(embeddings["full"], embeddings["trimmed"]), 6),
    }


def text_tower_speed(scorer: Scorer, labels: list[str], name: str) -> dict:
    """Seconds ``scorer`` takes to embed ``labels`` as custom labels (one template each, like a request's)."""
    started = time.perf_counter()
    scorer.label_embeddings(labels)
    return {
        "scorer": name,
        "labels": len(labels),
        "prompts": len(labels),
        "seconds": round(time.perf_counter() - started, 2),
    }
