"""Image-tower backends against the fp32 reference: the fidelity gate.

Also ONNX caching, the trimmed text tower, and draft decoding.
"""

from __future__ import annotations

import os

import pytest
import torch
from test_wire_and_images import phone_photo

from labkit.clip import BACKENDS, ClipScorer, build_scorer, make_tower
from labkit.clip.export import export_image_tower
from labkit.clip.fidelity import MIN_COSINE, MIN_TOP1_AGREEMENT, Fidelity, fidelity
from labkit.clip.towers import TorchTower, encode_text_trimmed
from labkit.config import Settings
from labkit.images import load_rgb


@pytest.fixture(scope="module")
def photo_batch(scorer, photos, photo_labels):
    pixels = torch.stack([scorer.preprocess(load_rgb(p.read_bytes())) for p in photos])
    labels = sorted(set(photo_labels.values()))
    return pixels, scorer.label_embeddings(labels)


@pytest.mark.parametrize("backend", BACKENDS[1:])
def test_every_backend_passes_the_fidelity_gate_on_the_100_photos(scorer, photo_batch, backend):
    pixels, label_embeddings = photo_batch
    reference = TorchTower(scorer.clip).embed(pixels)
    tower = make_tower(backend, scorer.clip, os.environ["LABKIT_ONNX_CACHE_DIR"])
    report = fidelity(reference, tower.embed(pixels), label_embeddings)
    assert report.min_cosine >= MIN_COSINE, report
    assert report.top1_agreement >= MIN_TOP1_AGREEMENT, report


def test_fidelity_gate_rejects_a_wrong_tower(scorer, photo_batch):
    pixels, label_embeddings = photo_batch
    reference = TorchTower(scorer.clip).embed(pixels)
    assert not fidelity(reference, reference.flip(0), label_embeddings).passes


def test_onnx_export_is_cached_per_model(scorer, tmp_path):
    first = export_image_tower(scorer.clip, tmp_path, quantized=True)
    stamp = first.stat().st_mtime_ns
    assert export_image_tower(scorer.clip, tmp_path, quantized=True) == first and first.stat().st_mtime_ns == stamp
    assert first.parent.name == "test-tiny-seed0" and (first.parent / "image-tower.fp32.onnx").is_file()


def test_auto_picks_a_backend_that_passes_and_explicit_choice_is_obeyed():
    cache = os.environ["LABKIT_ONNX_CACHE_DIR"]
    assert build_scorer(Settings(model="test-tiny", backend="auto", onnx_cache_dir=cache)).backend in BACKENDS
    assert build_scorer(Settings(model="test-tiny", backend="torch-bf16", onnx_cache_dir=cache)).backend == "torch-bf16"
    assert build_scorer(Settings(model="test-tiny", backend="onnx-fp32", onnx_cache_dir=cache)).backend == "onnx-fp32"


def test_trimmed_text_tower_gives_the_same_embeddings(scorer):
    tokens = scorer.clip.tokenizer(["a photo of a cat.", "a bright photo of a small brown bear standing in a river"])
    with torch.inference_mode():
        full = scorer.clip.model.encode_text(tokens)
    assert torch.allclose(encode_text_trimmed(scorer.clip.model, tokens), full, atol=1e-5)


def test_label_cache_is_lru_bounded(scorer, monkeypatch):
    import labkit.clip.base as base

    monkeypatch.setattr(base, "LABEL_CACHE_SIZE", 2)
    fresh = ClipScorer(scorer.clip, labels=("a", "b"))
    older = fresh.label_embeddings(["x", "y"])  # inserted first
    newer = fresh.label_embeddings(["x", "z"])
    assert fresh.label_embeddings(["x", "y"]) is older  # a hit: now ["x", "z"] is the least recently used
    fresh.label_embeddings(["q", "r"])  # a third label set: one of the first two must go
    assert len(fresh._text_cache) == 2
    # LRU drops ["x", "z"] (least recently used); FIFO would have dropped ["x", "y"] (inserted first).
    assert fresh.label_embeddings(["x", "y"]) is older
    assert fresh.label_embeddings(["x", "z"]) is not newer  # recomputed: it had been evicted


def test_fidelity_gate_ignores_top1_for_random_weights_only():
    near_miss = Fidelity(min_cosine=MIN_COSINE, top1_agreement=0.5)
    assert not near_miss.passes and Fidelity(MIN_COSINE, 0.5, random_weights=True).passes
    assert not Fidelity(MIN_COSINE - 1e-4, 1.0, random_weights=True).passes


def test_draft_decoding_of_big_jpegs_passes_the_fidelity_gate(scorer, photos, photo_labels):
    big = [phone_photo(p, size=(2000, 1500)) for p in photos[::12]]
    full = torch.stack([scorer.preprocess(load_rgb(data)) for data in big])
    draft = torch.stack([scorer.preprocess(load_rgb(data, draft_side=scorer.input_size)) for data in big])
    labels = scorer.label_embeddings(sorted(set(photo_labels.values())))
    report = fidelity(scorer.image_embeddings(full), scorer.image_embeddings(draft), labels)
    assert report.passes, report
