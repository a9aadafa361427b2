"""CLIP zero-shot scoring with open_clip: load a model, embed labels once, score images."""

from .backends import BACKENDS, ImageTower, choose_tower, make_tower
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES, read_labels
from .loading import LoadedClip, load_clip
from .scorer import ClipScorer

__all__ = ["BACKENDS", "ImageTower", "choose_tower", "make_tower", "ClipScorer", "DEFAULT_LABELS", "DEFAULT_TEMPLATES", "LoadedClip", "load_clip", "read_labels",
           "build_scorer"]


def build_scorer(settings) -> ClipScorer:
    """The scorer ``settings`` describe: model, image backend (warmed up), label set and top-k."""
    import torch

    from ..images import load_rgb
    from ..samples import sample_photos

    if settings.inference_threads:
        torch.set_num_threads(settings.inference_threads)
    labels = read_labels(settings.labels_file) if settings.labels_file else DEFAULT_LABELS
    scorer = ClipScorer(load_clip(settings), labels=labels, top_k=settings.top_k)
    samples = torch.stack([scorer.preprocess(load_rgb(p.read_bytes())) for p in sample_photos().values()])
    scorer.use_tower(choose_tower(scorer.clip, settings.backend, samples, scorer.label_embeddings(),
                                  settings.onnx_cache_dir))
    return scorer
