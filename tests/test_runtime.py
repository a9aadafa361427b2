"""The PyTorch-free runtime against open_clip.

Tokenizer, preprocessing, both exported towers, the verdict cache, and a process that never imports
PyTorch.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from labkit.clip import OnnxScorer, build_scorer
from labkit.clip.artifacts import Decision
from labkit.clip.export import export_text_tower, export_tokenizer
from labkit.clip.fidelity import MIN_COSINE
from labkit.clip.labels import DEFAULT_TEMPLATES
from labkit.clip.onnx_scorer import onnx_session
from labkit.clip.prepare import decide
from labkit.clip.preprocess import Preprocess
from labkit.clip.tokens import AWKWARD_TEXTS, ClipTokenizer
from labkit.clip.towers import TextTower, trim
from labkit.clip.zero_shot import min_cosine
from labkit.config import Settings
from labkit.errors import ModelUnavailable
from labkit.images import load_rgb
from labkit.samples import sample_photos


@pytest.fixture(scope="module")
def exported(scorer, tmp_path_factory):
    """The test model's runtime files in a fresh folder, and the verdict the export step reached."""
    cache = tmp_path_factory.mktemp("onnx")
    settings = Settings(model="test-tiny", backend="onnx-int8", onnx_cache_dir=cache)
    decision = decide(settings, threads=2)
    decision.write(cache / scorer.clip.cache_key, threads=2)
    return settings, decision, cache / scorer.clip.cache_key


def test_tokenizer_matches_open_clip_token_for_token(scorer, photo_labels, tmp_path):
    ours = ClipTokenizer(export_tokenizer(scorer.clip, tmp_path))
    texts = [t.format(label) for label in sorted(set(photo_labels.values())) for t in DEFAULT_TEMPLATES]
    texts += list(AWKWARD_TEXTS) + ["Ünïcödé ÅNGSTRÖM", "tab\tand\nnewline", "a" * 5 + " " + "b" * 400]
    mine, theirs = ours(texts), scorer.clip.tokenizer(texts).numpy()
    assert np.array_equal(mine, theirs[:, : mine.shape[1]]) and not theirs[:, mine.shape[1] :].any()
    assert mine.shape[1] == 77  # the 400-letter text was cut to the context length, end-of-text last
    assert mine[-1, -1] == theirs[-1].max()


def test_numpy_preprocessing_is_identical_to_open_clips(scorer, photos):
    config = scorer.clip.model.visual.preprocess_cfg
    ours = Preprocess(config["size"][0], config["mean"], config["std"])
    for path in photos[::5]:
        image = load_rgb(path.read_bytes())
        for variant in (image, image.rotate(90, expand=True), image.crop((0, 0, 300, 231))):
            assert np.abs(ours(variant) - scorer.preprocess(variant).numpy()).max() < 1e-6


def test_exported_text_tower_keeps_a_dynamic_length(scorer, tmp_path):
    session = onnx_session(export_text_tower(scorer.clip, tmp_path, quantized=False), 1)
    for texts in (["a cat."], ["a photo of a cat.", "a much longer description of a brown bear in a river"]):
        tokens = trim(scorer.clip.tokenizer(texts))
        with torch.inference_mode():
            expected = TextTower(scorer.clip.model)(tokens).numpy()
        assert min_cosine(expected, session.run(None, {"tokens": tokens.numpy()})[0]) > 0.99999


def test_runtime_passes_the_fidelity_gate_on_the_100_photos(scorer, exported, photos, photo_labels):
    settings, decision, folder = exported
    assert decision.torch_free and decision.backend.startswith("onnx-"), decision
    runtime = OnnxScorer(folder, decision.backend, decision.text_tower, threads=2)
    images = [load_rgb(p.read_bytes()) for p in photos]
    expected = scorer.embed_images([scorer.preprocess(i) for i in images])
    assert min_cosine(expected, runtime.embed_images([runtime.preprocess(i) for i in images])) >= MIN_COSINE
    labels = sorted(set(photo_labels.values()))
    assert min_cosine(scorer.label_embeddings(labels), runtime.label_embeddings(labels)) >= MIN_COSINE
    assert runtime.model_id == scorer.model_id and runtime.logit_scale == pytest.approx(scorer.logit_scale)


def test_verdict_is_cached_and_the_serving_process_never_imports_pytorch(exported):
    settings, decision, folder = exported
    assert Decision.read(folder, "onnx-int8", threads=2) == decision
    code = (
        "import sys, json; from labkit.clip import build_scorer; from labkit.config import Settings\n"
        "s = build_scorer(Settings(model='test-tiny', backend='onnx-int8', "
        f"onnx_cache_dir={str(settings.onnx_cache_dir)!r},"
        " inference_threads=2))\n"
        "print(json.dumps([type(s).__name__, s.backend, 'torch' in sys.modules, 'open_clip' in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout.splitlines()[-1]) == ["OnnxScorer", decision.backend, False, False]
    assert "child process loads PyTorch" not in out.stderr  # the verdict was read, not recomputed


def test_deleted_runtime_files_are_exported_again(scorer, tmp_path):
    settings = Settings(model="test-tiny", backend="onnx-fp32", onnx_cache_dir=tmp_path, inference_threads=1)
    first = build_scorer(settings)
    assert isinstance(first, OnnxScorer)
    (first.folder / "image-tower.fp32.onnx").unlink()
    again = build_scorer(settings)
    assert isinstance(again, OnnxScorer) and (again.folder / "image-tower.fp32.onnx").is_file()
    image = [load_rgb(next(iter(sample_photos().values())).read_bytes())]
    assert again.score(image) == first.score(image)


def test_a_model_that_cannot_load_fails_in_the_child_with_the_same_clear_message(tmp_path):
    with pytest.raises(ModelUnavailable, match="does not exist"):
        build_scorer(Settings(model="ViT-B-32", checkpoint=tmp_path / "nope.pt", onnx_cache_dir=tmp_path))
