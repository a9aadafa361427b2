"""How a labkit command logs: its own lines at the chosen level on stderr, other libraries' warnings only."""

from __future__ import annotations

import logging
import sys


def log_to_stderr(level: str) -> None:
    """Print log records on stderr: ``labkit.*`` at ``level``, other libraries (open_clip, ONNX Runtime) at WARNING up.

    The root logger keeps Python's default level (WARNING); only labkit's own logger is set, so
    a program that embeds labkit keeps control of everything else.
    """
    logging.basicConfig(
        stream=sys.stderr, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", datefmt="%H:%M:%S"
    )
    logging.getLogger("labkit").setLevel(level)
    # librdkafka's own complaints about an absent broker: labkit reports broker trouble itself.
    logging.getLogger("labkit.kafka").setLevel(logging.NOTSET if level == "DEBUG" else logging.CRITICAL)
