"""Raw image-tower throughput: how fast each backend turns preprocessed pixels into embeddings.

It is measured with nothing else running. This is the ceiling the pipeline is measured against.
Each backend runs the same batch a few times after a warm-up; the median run counts. PyTorch
fp32 eager, measured in the same run, is the baseline for the ratios.
"""

from __future__ import annotations

import statistics
import time
from typing import TYPE_CHECKING

from ..clip import BACKENDS, LoadedClip
from ..clip.cpu import native_bf16

if TYPE_CHECKING:
    import torch


def tower_throughput(
    clip: LoadedClip,
    pixels: torch.Tensor,
    batch_sizes: list[int],
    backends: list[str] | None = None,
    runs: int = 5,
    cache_dir=None,
    progress=None,
) -> list[dict]:
    """Rows of ``{backend, batch, img_per_s, ratio_to_fp32}`` for every backend × batch size."""
    from ..clip.backends import make_tower

    backends = backends or list(BACKENDS)
    rows = []
    baseline: dict[int, float] = {}
    for name in ["torch-fp32"] + [b for b in backends if b != "torch-fp32"]:
        tower = make_tower(name, clip, cache_dir)
        for batch in batch_sizes:
            sample = pixels[:batch]
            if len(sample) < batch:
                sample = pixels.repeat((batch + len(pixels) - 1) // len(pixels), 1, 1, 1)[:batch]
            tower.embed(sample)  # warm-up
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                tower.embed(sample)
                times.append(time.perf_counter() - started)
            speed = batch / statistics.median(times)
            if name == "torch-fp32":
                baseline[batch] = speed
            rows.append(
                {
                    "backend": name,
                    "batch": batch,
                    "img_per_s": round(speed, 2),
                    "ratio_to_fp32": round(speed / baseline[batch], 2),
                    "note": "" if name != "torch-bf16" or native_bf16() else "bf16 emulated (no native bf16)",
                }
            )
            if progress:
                progress.update(1)
    return rows
