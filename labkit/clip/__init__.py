"""CLIP zero-shot scoring with open_clip: load a model, embed labels once, score images."""

from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES, read_labels
from .loading import LoadedClip, load_clip
from .scorer import ClipScorer

__all__ = ["ClipScorer", "DEFAULT_LABELS", "DEFAULT_TEMPLATES", "LoadedClip", "load_clip", "read_labels",
           "build_scorer"]


def build_scorer(settings) -> ClipScorer:
    """The scorer ``settings`` describe: model, label set and top-k."""
    labels = read_labels(settings.labels_file) if settings.labels_file else DEFAULT_LABELS
    return ClipScorer(load_clip(settings), labels=labels, top_k=settings.top_k)
