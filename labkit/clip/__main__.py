"""``python -m labkit.clip THREADS``: the backend check that :func:`labkit.clip.prepare.decide_in_child` runs in a child process.

It reads the ``LABKIT_*`` settings from its environment, decides, writes the verdict next to
the exported files and exits — taking PyTorch's memory with it. Errors a user can fix are
printed as one ``labkit: error: …`` line (the parent repeats it) and exit code 1.
"""

import logging
import sys

from ..config import Settings
from ..errors import LabkitError
from .loading import weights_cache_key
from .prepare import decide
from .runtime import onnx_cache_dir


def main(threads: int) -> int:
    settings = Settings()
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, datefmt="%H:%M:%S",
                        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s")
    logging.getLogger("labkit").setLevel(settings.log_level)
    try:
        decide(settings, threads).write(onnx_cache_dir(settings.onnx_cache_dir) / weights_cache_key(settings), threads)
    except LabkitError as exc:
        print(f"labkit: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1])))
