"""CLIP scoring with the random test model, and clear errors when weights are missing.

Also the real-weights reference checks.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import labkit.clip
from conftest import PHOTOS
from labkit._net import free_port
from labkit.clip import ClipScorer, build_scorer, load_clip
from labkit.config import Settings
from labkit.errors import ModelUnavailable
from labkit.images import load_rgb


def test_test_model_scores_every_photo(scorer, photos):
    images = [load_rgb(p.read_bytes()) for p in photos]
    results = scorer.score(images, top_k=5)
    assert len(results) == len(photos)
    for labels in results:
        scores = [s.score for s in labels]
        assert scores == sorted(scores, reverse=True)
        assert 0 < sum(scores) <= 1.0001
        assert {s.label for s in labels} <= set(scorer.labels)
    assert scorer.model_id == "test-tiny (random weights)" and scorer.clip.random_weights


def test_label_embeddings_are_computed_once_per_label_set(scorer):
    first = scorer.label_embeddings(["cat", "dog"])
    assert scorer.label_embeddings(["cat", "dog"]) is first
    assert scorer.label_embeddings(["cat", "teapot"]) is not first
    assert np.allclose(np.linalg.norm(first, axis=-1), 1, atol=1e-5)


def test_custom_labels_are_scored(scorer, photos):
    (labels,) = scorer.score([load_rgb(photos[0].read_bytes())], labels=["kitten", "teapot", "pyramids"], top_k=3)
    assert sorted(s.label for s in labels) == ["kitten", "pyramids", "teapot"]
    assert sum(s.score for s in labels) == pytest.approx(1, abs=1e-4)


def test_test_model_is_the_same_random_model_every_time(scorer, photos):
    again = build_scorer(Settings(model="test-tiny", backend="torch-fp32"))
    image = [load_rgb(photos[5].read_bytes())]
    assert scorer.score(image) == again.score(image)
    # LABKIT_PRETRAINED=seed1: a second test model (what lesson 21 switches to): its own name, other vectors.
    other = build_scorer(Settings(model="test-tiny", pretrained="seed1", backend="torch-fp32"))
    assert other.model_id == "test-tiny (random weights, seed 1)" != scorer.model_id
    pixels = [scorer.preprocess(image[0])]
    assert float(other.image_embeddings(pixels)[0] @ scorer.image_embeddings(pixels)[0]) < 0.99


def test_offline_pretrained_download_fails_fast_with_both_ways_out(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # a hub that does not answer
    started = time.monotonic()
    with pytest.raises(ModelUnavailable) as error:
        load_clip(Settings(model="ViT-B-32", pretrained="openai", model_cache_dir=tmp_path))
    message = str(error.value)
    assert "\n" not in message and "LABKIT_CHECKPOINT" in message and "test-tiny" in message
    assert time.monotonic() - started < 10


def test_missing_checkpoint_and_unknown_names_are_explained(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        load_clip(Settings(model="ViT-B-32", checkpoint=tmp_path / "nope.pt"))
    with pytest.raises(ModelUnavailable, match="Unknown CLIP architecture"):
        load_clip(Settings(model="ViT-B-99"))
    with pytest.raises(ModelUnavailable, match="known tags"):
        load_clip(Settings(model="ViT-B-32", pretrained="no-such-tag"))


# --- the package's shape: acyclic imports, small modules that say what they hold --------------

CLIP_DIR = Path(labkit.clip.__file__).parent


def _clip_modules() -> dict[str, Path]:
    return {
        ("labkit.clip" if p.stem == "__init__" else f"labkit.clip.{p.stem}"): p for p in sorted(CLIP_DIR.glob("*.py"))
    }


def test_every_clip_module_imports_in_a_fresh_interpreter():
    code = "import importlib\n" + "".join(f"importlib.import_module({name!r})\n" for name in _clip_modules())
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("module", sorted(_clip_modules()))
def test_clip_modules_say_what_they_hold(module):
    """A one-sentence summary first. (No line count: a module holding two concepts is split, never squeezed.)

    Import cycles anywhere in labkit, clip/ included, are tests/test_import_graph.py's.
    """
    path = _clip_modules()[module]
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    assert docstring and docstring.splitlines()[0].rstrip().endswith((".", ")")), "a one-sentence summary first"


# --- real weights: these run only where OpenAI's ViT-B-32 weights are available ------------------


def _real_settings() -> Settings | None:
    checkpoint = os.environ.get("LABKIT_CHECKPOINT")
    if checkpoint and Path(checkpoint).is_file():
        return Settings(model="ViT-B-32", checkpoint=checkpoint)
    from labkit.clip.loading import _weights_cached

    if _weights_cached("ViT-B-32", "openai", None):
        return Settings(model="ViT-B-32", pretrained="openai")
    return None


@pytest.fixture(scope="module")
def real_scorer():
    settings = _real_settings()
    if settings is None:
        pytest.skip("no real CLIP weights here: set LABKIT_CHECKPOINT to OpenAI ViT-B-32 weights to run this")
    return ClipScorer(load_clip(settings), top_k=1)


def test_real_weights_match_the_reference_probabilities(real_scorer):
    image = load_rgb((PHOTOS / "CLIP.png").read_bytes())
    pixels = real_scorer.preprocess(image).unsqueeze(0)
    reference = np.load(PHOTOS / "image_features.npy")
    ours = real_scorer.image_embeddings(pixels)
    cosine = float((ours * reference).sum() / np.linalg.norm(reference))
    assert cosine > 0.99
    probs = real_scorer.probabilities(pixels, ["diagram", "dog", "cat"])[0]
    # the reference uses single prompts "a diagram"/"a dog"/"a cat"; our templates differ slightly
    assert probs[0] > 0.95 and probs.argmax() == 0


def test_real_weights_classify_the_labelled_photos(real_scorer, photos, photo_labels):
    labels = sorted(set(photo_labels.values()))
    images = [load_rgb(p.read_bytes()) for p in photos]
    predicted = [r[0].label for r in real_scorer.score(images, labels=labels, top_k=1)]
    correct = sum(pred == photo_labels[p.name] for pred, p in zip(predicted, photos))
    assert correct / len(photos) >= 0.95


def test_real_weights_served_without_pytorch_classify_the_labelled_photos(photos, photo_labels, tmp_path):
    """The default backend (``auto``: int8 ONNX where it passes the gate) on real weights."""
    settings = _real_settings()
    if settings is None:
        pytest.skip("no real CLIP weights here: set LABKIT_CHECKPOINT to OpenAI ViT-B-32 weights to run this")
    scorer = build_scorer(settings.model_copy(update={"backend": "auto", "onnx_cache_dir": tmp_path}))
    labels = sorted(set(photo_labels.values()))
    predicted = [r[0].label for r in scorer.score([load_rgb(p.read_bytes()) for p in photos], labels=labels, top_k=1)]
    assert sum(pred == photo_labels[p.name] for pred, p in zip(predicted, photos)) / len(photos) >= 0.95


def test_random_weights_of_a_real_architecture_are_asked_for_explicitly():
    clip = load_clip(Settings(model="ViT-B-32", pretrained="random"))
    assert clip.random_weights and clip.model_id == "ViT-B-32 (random weights)"
    assert clip.cache_key == "ViT-B-32__random-seed0"
