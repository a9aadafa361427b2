"""Candidate labels and prompt templates: the words CLIP chooses between, and how they are phrased.

CLIP was trained on captions, not on single words, so "a photo of a dog." scores better than
"dog". Averaging the embeddings of several phrasings (prompt ensembling) helps further. The
default label set covers objects, animals, food, scenes and activities; it includes the label
of each of the 8 sample photos that ship in ``labkit/samples``.
"""

from __future__ import annotations

from pathlib import Path

DEFAULT_LABELS: tuple[str, ...] = (
    # animals
    "cat",
    "kitten",
    "dog",
    "puppy",
    "bird",
    "eagle",
    "ostrich",
    "chicken",
    "horse",
    "cow",
    "frog",
    "turtle",
    "dolphin",
    "walrus",
    "tiger",
    "brown bear",
    "panda",
    "gorilla",
    "badger",
    "armadillo",
    "hamster",
    "bunny",
    "fish",
    # food
    "pizza",
    "burger",
    "banana",
    "apple",
    "orange",
    "mushroom",
    "salad",
    "cake",
    "cup of coffee",
    "sushi",
    "bowl of soup",
    # objects
    "teapot",
    "vase",
    "car",
    "bicycle",
    "plane",
    "ship",
    "train",
    "laptop",
    "phone",
    "book",
    "chair",
    "clock",
    "guitar",
    "diagram",
    "screenshot of text",
    # scenes
    "landscape",
    "forest canopy",
    "beach",
    "mountain",
    "city street",
    "pyramids",
    "desert",
    "snowy field",
    "kitchen",
    "office",
    "night sky",
    # people and activities
    "person",
    "group of people",
    "person riding a bike",
    "person cooking",
    "person playing sports",
    "person swimming",
    "person reading",
    "person hiking",
)

#: Phrasings averaged for each label (a small subset of the 80 in OpenAI's CLIP notebook).
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of the {}.",
    "a good photo of a {}.",
    "a cropped photo of a {}.",
    "a bright photo of a {}.",
)


def read_labels(path: Path) -> tuple[str, ...]:
    """Labels from a text file, one per line; blank lines and ``#`` comments are skipped."""
    labels = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            labels.append(line)
    if not labels:
        raise ValueError(f"{path} has no labels: write one label per line")
    return tuple(dict.fromkeys(labels))  # drop duplicates, keep order
