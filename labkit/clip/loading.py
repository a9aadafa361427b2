"""Where weights come from: an open_clip pretrained tag, a local checkpoint, or the random test model.

A pretrained tag is downloaded once, then cached. All three go through the same
``open_clip.create_model_and_transforms`` call, so the test model exercises exactly the code
path real weights use. What never happens: falling back to random weights because a download
failed. Random weights give confident-looking nonsense.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable
from urllib.parse import urlparse

from ..config import TEST_MODEL, Settings
from ..errors import ModelUnavailable

log = logging.getLogger(__name__)

#: open_clip architecture name of the test model; its config ships next to this file.
TEST_ARCH = "labkit-test-tiny"
_register_lock = threading.Lock()


@dataclass
class LoadedClip:
    """A CLIP model ready for inference, with the image preprocessing and tokenizer that belong to it."""

    model: Any  # open_clip.CLIP, in eval mode
    preprocess: Callable[[Any], Any]  # PIL image → 3×H×W tensor
    tokenizer: Callable[[list[str]], Any]  # texts → token ids
    model_id: str  # e.g. "ViT-B-32/openai"; printed in every result
    random_weights: bool  # True for the test model: its labels are meaningless
    cache_key: str = ""  # names files derived from these weights (e.g. exported ONNX towers)


def _register_test_arch() -> None:
    import open_clip

    with _register_lock:
        if TEST_ARCH not in open_clip.list_models():
            open_clip.add_model_config(Path(__file__).with_name(f"{TEST_ARCH}.json"))


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check of the Hugging Face hub, so an offline machine fails in seconds, not minutes."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    try:
        with socket.create_connection((url.hostname or "huggingface.co", url.port or 443), timeout=timeout):
            return True
    except OSError:
        return False


def _weights_cached(arch: str, tag: str, cache_dir: Path | None) -> bool:
    """True when open_clip's download of ``arch``/``tag`` is already in the local hub cache."""
    import open_clip
    from huggingface_hub import try_to_load_from_cache

    hub = open_clip.get_pretrained_cfg(arch, tag).get("hf_hub", "").strip("/")
    if not hub:
        return False
    parts = hub.split("/")
    repo, explicit = "/".join(parts[:2]), "/".join(parts[2:])
    names = [explicit] if explicit else ["open_clip_model.safetensors", "open_clip_pytorch_model.bin"]
    return any(
        isinstance(try_to_load_from_cache(repo, name, cache_dir=cache_dir and str(cache_dir)), str) for name in names
    )


#: ``LABKIT_PRETRAINED=random``: the named architecture with random weights, for speed measurements
#: (speed does not depend on the values). Asked for explicitly; never a fallback.
RANDOM_WEIGHTS = "random"


def weights_cache_key(settings: Settings) -> str:
    """A file-name-safe key for exactly the weights ``settings`` name (no open_clip or PyTorch import)."""
    if settings.model == TEST_MODEL:
        return f"{TEST_MODEL}-seed{test_seed(settings)}"
    if settings.checkpoint is not None:
        checkpoint = Path(settings.checkpoint)
        stat = checkpoint.stat() if checkpoint.is_file() else None
        return (
            f"{settings.model}__{checkpoint.stem}-{stat.st_size}-{int(stat.st_mtime)}"
            if stat
            else f"{settings.model}__{checkpoint.stem}-missing"
        )
    if settings.pretrained == RANDOM_WEIGHTS:
        return f"{settings.model}__random-seed0"
    return f"{settings.model}__{settings.pretrained}"


def test_seed(settings: Settings) -> int:
    """The test model's seed: 0, or N for ``LABKIT_PRETRAINED=seedN`` (a second test model, other vectors)."""
    tag = settings.pretrained
    if tag.startswith("seed") and tag[4:].isdigit():
        return int(tag[4:])
    return 0


def _weights_source(settings: Settings) -> tuple[str, str | None, str]:
    """(architecture, ``pretrained`` argument for open_clip, model id) or :class:`ModelUnavailable`."""
    import open_clip

    if settings.model == TEST_MODEL:
        _register_test_arch()
        seed = test_seed(settings)
        return TEST_ARCH, None, f"{TEST_MODEL} (random weights{f', seed {seed}' if seed else ''})"
    if settings.model not in open_clip.list_models():
        raise ModelUnavailable(
            f"Unknown CLIP architecture {settings.model!r}. Pick one of open_clip.list_models() "
            f"(e.g. ViT-B-32), or LABKIT_MODEL={TEST_MODEL} for the small random test model."
        )
    if settings.pretrained == RANDOM_WEIGHTS and settings.checkpoint is None:
        return settings.model, None, f"{settings.model} (random weights)"
    if settings.checkpoint is not None:
        if not Path(settings.checkpoint).is_file():
            raise ModelUnavailable(
                f"Checkpoint {settings.checkpoint} does not exist. Set LABKIT_CHECKPOINT to a weights "
                f"file for {settings.model}, or unset it to download the {settings.pretrained!r} weights."
            )
        return settings.model, str(settings.checkpoint), f"{settings.model}/{Path(settings.checkpoint).name}"
    tags = open_clip.list_pretrained_tags_by_model(settings.model)
    if settings.pretrained not in tags:
        raise ModelUnavailable(
            f"{settings.model} has no pretrained tag {settings.pretrained!r}; known tags: "
            f"{', '.join(tags) or 'none'} (or '{RANDOM_WEIGHTS}' for benchmarks). Set LABKIT_PRETRAINED, "
            "or LABKIT_CHECKPOINT to a local file."
        )
    if not _weights_cached(settings.model, settings.pretrained, settings.model_cache_dir) and not _hub_reachable():
        raise ModelUnavailable(
            f"Cannot download CLIP weights {settings.model}/{settings.pretrained}: the model hub is "
            "unreachable and they are not cached. Either set LABKIT_CHECKPOINT=/path/to/weights "
            f"(a local open_clip checkpoint), or LABKIT_MODEL={TEST_MODEL} for a small random model "
            "whose labels are meaningless."
        )
    return settings.model, settings.pretrained, f"{settings.model}/{settings.pretrained}"


def load_clip(settings: Settings) -> LoadedClip:
    """Load the CLIP model ``settings`` name, in eval mode on the CPU (downloads and caches on first use)."""
    import open_clip
    import torch

    arch, pretrained, model_id = _weights_source(settings)
    if pretrained is None:  # a random model, but the same one every time (the test model's seed may differ)
        torch.manual_seed(test_seed(settings) if settings.model == TEST_MODEL else 0)
    log.info("loading CLIP %s", model_id)
    try:
        model, _, preprocess = open_clip.create_model_and_transforms(
            arch,
            pretrained=pretrained,
            cache_dir=str(settings.model_cache_dir) if settings.model_cache_dir else None,
        )
    except RuntimeError as exc:
        raise ModelUnavailable(
            f"Could not load CLIP weights {model_id}: {str(exc).splitlines()[0]} Set "
            f"LABKIT_CHECKPOINT to a local weights file, or LABKIT_MODEL={TEST_MODEL}."
        ) from None
    model.eval()
    return LoadedClip(
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer(arch),
        model_id=model_id,
        random_weights=pretrained is None,
        cache_key=weights_cache_key(settings),
    )
