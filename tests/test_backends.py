"""Image-tower backends against the fp32 reference: the fidelity gate.

Also ONNX caching, the trimmed text tower, and draft decoding.
"""

from __future__ import annotations

import os

import pytest
import torch
from test_wire_and_images import phone_photo

from labkit.clip import BACKENDS, ClipScorer, build_scorer, make_tower
from labkit.clip.backends import rank_backends
from labkit.clip.export import export_image_tower
from labkit.clip.fidelity import MIN_COSINE, MIN_TOP1_AGREEMENT, Fidelity, fidelity
from labkit.clip.footprint import serving_footprint_mb
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


def test_auto_takes_the_fastest_backend_that_fits_the_memory_budget(scorer, photo_batch):
    pixels, label_embeddings = photo_batch
    cache = os.environ["LABKIT_ONNX_CACHE_DIR"]
    sizes = {"torch-fp32": 900.0, "torch-bf16": 950.0, "onnx-fp32": 300.0, "onnx-int8": 200.0}
    measured: list[str] = []

    def footprint(name: str) -> float:  # the ranking's rule, with sizes chosen here; real ones are measured below
        measured.append(name)
        return sizes[name]

    def fastest(candidates, budget: float = float("inf")) -> str:
        timed = [c for c in candidates if c.img_per_s is not None and sizes[c.name] <= budget]
        return max(timed, key=lambda c: c.img_per_s).name

    tower, free = rank_backends(scorer.clip, pixels[:8], label_embeddings, cache, footprint=footprint, measure_all=True)
    assert tower.name == fastest(free) and len(measured) == sum(c.img_per_s is not None for c in free)

    measured.clear()  # fastest first, until one fits: those measured before it are over the budget
    tower, ranked = rank_backends(
        scorer.clip, pixels[:8], label_embeddings, cache, footprint=footprint, memory_budget_mb=500
    )
    assert tower.name == fastest(ranked, budget=500) == measured[-1]
    by_name = {c.name: c for c in ranked}
    assert by_name[tower.name].verdict.startswith("chosen: the fastest that passes and fits the memory budget")
    assert all(by_name[name].verdict.startswith("passes, over the memory budget") for name in measured[:-1])

    tower, ranked = rank_backends(
        scorer.clip, pixels[:8], label_embeddings, cache, footprint=footprint, memory_budget_mb=100
    )
    smallest = min((c for c in ranked if c.memory_mb is not None), key=lambda c: c.memory_mb or 0)
    assert tower.name == smallest.name and "none fits the memory budget of 100 MB" in smallest.verdict


def test_a_backends_footprint_is_measured_in_a_process_that_serves_it(scorer):
    cache = os.environ["LABKIT_ONNX_CACHE_DIR"]
    make_tower("onnx-int8", scorer.clip, cache)  # exported, as the deciding process does before it measures
    settings = Settings(model="test-tiny", onnx_cache_dir=cache)
    onnx, torch_mb = (serving_footprint_mb(settings, name, threads=1) for name in ("onnx-int8", "torch-fp32"))
    # A PyTorch backend carries PyTorch itself (hundreds of MB) whatever the model; ONNX Runtime does not.
    assert 20 < onnx < torch_mb - 150, (onnx, torch_mb)


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
