"""The PyTorch scorer: open_clip's model in this process, with a swappable image backend (the reference every other backend is checked against)."""

from __future__ import annotations

import gc
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from PIL import Image

from .backends import ImageTower, TorchTower
from .labels import DEFAULT_LABELS, DEFAULT_TEMPLATES
from .loading import LoadedClip
from .scoring import Scorer


class TextTower(torch.nn.Module):
    """CLIP's text tower on token ids already cut after the longest prompt's end-of-text token.

    Tokens are padded to 77 positions, but a prompt like "a photo of a cat." uses ~8. CLIP's
    text transformer is causal and reads its output at the end-of-text token (the largest
    token id), which never attends to the padding after it; so dropping the padding gives the
    same embeddings for a fraction of the work (attention cost grows with length²). The
    sequence length is read from the input, so the ONNX export of this module keeps it dynamic.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    @staticmethod
    def supports(model) -> bool:
        """True for models with a causal mask and end-of-text pooling (OpenAI-style CLIP)."""
        return getattr(model, "attn_mask", None) is not None and getattr(model, "text_pool_type", None) == "argmax"

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        model, length = self.model, tokens.shape[1]
        cast_dtype = model.transformer.get_cast_dtype()
        x = model.token_embedding(tokens).to(cast_dtype) + model.positional_embedding[:length].to(cast_dtype)
        x = model.ln_final(model.transformer(x, attn_mask=model.attn_mask[:length, :length]))
        x = x[torch.arange(x.shape[0]), tokens.argmax(dim=-1)]
        if isinstance(model.text_projection, torch.nn.Linear):
            return model.text_projection(x)
        return x @ model.text_projection if model.text_projection is not None else x


def trim(tokens: torch.Tensor) -> torch.Tensor:
    """Cut a padded batch of token ids after the last end-of-text token (the largest id) of any row."""
    return tokens[:, : int(tokens.argmax(dim=-1).max()) + 1]


@torch.inference_mode()
def encode_text_trimmed(model, tokens: torch.Tensor) -> torch.Tensor:
    """``model.encode_text`` with the padding trimmed (see :class:`TextTower`); the full tower where that does not apply."""
    if not TextTower.supports(model):
        return model.encode_text(tokens)
    return TextTower(model)(trim(tokens))


class ClipScorer(Scorer):
    """Scores PIL images with one open_clip model loaded in PyTorch."""

    def __init__(self, clip: LoadedClip, labels: Sequence[str] = DEFAULT_LABELS,
                 templates: Sequence[str] = DEFAULT_TEMPLATES, top_k: int = 5, tower: ImageTower | None = None):
        super().__init__(labels, templates, top_k)
        self.clip = clip
        self.model_id = clip.model_id
        self.random_weights = clip.random_weights
        self.tower = tower or TorchTower(clip)
        size = clip.model.visual.image_size
        self.input_size = min(size) if isinstance(size, tuple) else int(size)

    @property
    def backend(self) -> str:
        return self.tower.name

    def use_tower(self, tower: ImageTower) -> None:
        """Switch the image backend; the PyTorch image weights are dropped when no longer used (saves RAM)."""
        self.tower = tower
        if not isinstance(tower, TorchTower) and self.clip.model.visual is not None:
            self.clip.model.visual = None  # ViT-B/32: ~350 MB of fp32 weights the ONNX session does not need
            gc.collect()

    @property
    def logit_scale(self) -> float:
        return float(self.clip.model.logit_scale.detach().exp())

    def preprocess(self, image: Image.Image) -> torch.Tensor:
        """The model's own torchvision preprocessing: resize the short side, centre-crop, normalise."""
        return self.clip.preprocess(image)

    @torch.inference_mode()
    def embed_images(self, pixels: Sequence[Any]) -> np.ndarray:
        batch = pixels if isinstance(pixels, torch.Tensor) else torch.stack([torch.as_tensor(p) for p in pixels])
        return self.tower.embed(batch).float().numpy()

    @torch.inference_mode()
    def embed_prompts(self, prompts: Sequence[str]) -> np.ndarray:
        return encode_text_trimmed(self.clip.model, self.clip.tokenizer(list(prompts))).float().numpy()
