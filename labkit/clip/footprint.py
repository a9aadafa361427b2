"""A backend's serving footprint: the peak resident memory of a fresh process that serves it.

``LABKIT_BACKEND=auto`` picks the fastest backend that passes the fidelity gate *and* whose
footprint fits ``LABKIT_BACKEND_MEMORY_MB`` (:func:`labkit.clip.backends.rank_backends`).

What a backend costs in memory is mostly not its weights. A process serving a PyTorch backend
carries PyTorch itself (~500 MB resident before a single weight is loaded) and the whole
open_clip model in fp32 (``torch-bf16`` adds a bfloat16 copy of the image tower), while an ONNX
backend is served without PyTorch (:mod:`.onnx_scorer`). Weighing file sizes would miss all of
that, and measuring inside the deciding process cannot separate what PyTorch already holds. So
the footprint is measured the one way that counts everything: ``python -m labkit.clip.footprint
BACKEND THREADS`` loads what a processor serving that backend loads, scores one batch of
``max_batch_size`` images (activations count too), and prints its peak resident set.

For ONNX backends the text tower is counted when it has been exported already (int8, else fp32);
the deciding process exports it before it ranks the backends (:func:`labkit.clip.prepare.decide`).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys

from ..config import Settings
from ..errors import LabkitError
from .artifacts import image_tower_file, settings_folder, text_tower_file


def serving_footprint_mb(settings: Settings, backend: str, threads: int) -> float:
    """Peak resident MB of a fresh process serving ``backend`` for ``settings`` on ``threads`` threads."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LABKIT_")} | settings.to_env()
    done = subprocess.run(
        [sys.executable, "-m", "labkit.clip.footprint", backend, str(threads)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise LabkitError(
            f"measuring {backend}'s memory failed ({done.stderr.strip()[-500:]}); set LABKIT_BACKEND to a "
            "backend by name to skip the measurement, or LABKIT_LOG_LEVEL=DEBUG to see more"
        )
    return float(json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"])


def peak_rss_mb() -> float:
    """This process's peak resident set so far, in MB: Linux's ``VmHWM``, else ``ru_maxrss``.

    Not ``ru_maxrss`` on Linux: it survives ``exec``, so a child started from a big process (a test
    run, the deciding process) would report its parent's peak at the fork instead of its own.
    """
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")) / 2**10
    except (OSError, StopIteration):
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return peak / 2**20 if sys.platform == "darwin" else peak / 2**10  # bytes on macOS, KiB elsewhere


def _serve_one_batch_onnx(settings: Settings, backend: str, threads: int) -> None:
    """Open the sessions a PyTorch-free processor opens and run one batch through the image tower."""
    import numpy as np

    from .onnx_scorer import onnx_session

    folder = settings_folder(settings)
    text_towers = [folder / text_tower_file(quantized) for quantized in (True, False)]
    served = [folder / image_tower_file(backend)] + [path for path in text_towers if path.is_file()][:1]
    sessions = [onnx_session(path, threads) for path in served]  # held open together, as a processor holds them
    images = sessions[0]
    pixels = images.get_inputs()[0]
    side = pixels.shape[-1] if isinstance(pixels.shape[-1], int) else 224
    batch = np.zeros((settings.max_batch_size, 3, side, side), dtype=np.float32)
    images.run(None, {pixels.name: batch})


def _serve_one_batch_torch(settings: Settings, backend: str, threads: int) -> None:
    """Load open_clip and the backend as a PyTorch processor does, and run one batch through it."""
    import torch

    from .backends import make_tower
    from .loading import load_clip

    torch.set_num_threads(threads)
    clip = load_clip(settings)
    size = clip.model.visual.image_size
    height, width = size if isinstance(size, tuple) else (size, size)
    make_tower(backend, clip, settings.onnx_cache_dir).embed(torch.zeros(settings.max_batch_size, 3, height, width))


def main(backend: str, threads: int) -> int:
    settings = Settings()
    if backend.startswith("onnx-"):
        _serve_one_batch_onnx(settings, backend, threads)
    else:
        _serve_one_batch_torch(settings, backend, threads)
    print(json.dumps({"backend": backend, "peak_rss_mb": round(peak_rss_mb(), 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], int(sys.argv[2])))
