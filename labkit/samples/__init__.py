"""Eight labelled sample photos shipped with labkit: for notebooks, warm-up and checks.

They are under the MIT licence: see LICENSE in this folder.
"""

from __future__ import annotations

from pathlib import Path

HERE = Path(__file__).parent


def sample_photos() -> dict[str, Path]:
    """``{label: path}`` for every sample photo, e.g. ``sample_photos()["kitten"]``."""
    return {path.stem.replace("-", " "): path for path in sorted(HERE.glob("*.jpg"))}
