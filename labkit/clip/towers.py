"""CLIP's two towers as runnable parts: the image tower, and the text tower with its padding trimmed.

The image tower runs in PyTorch (fp32, bf16) or ONNX Runtime.

Almost all of CLIP's cost per image is the image tower (ViT-B/32: 8.8 GFLOP per image), so
that is what the image backends swap (:mod:`.backends` picks one):

* ``torch-fp32``  the reference: open_clip's module as it is.
* ``torch-bf16``  the weights *cast* to bfloat16 (not autocast, which re-casts them on every
  call). Fast only on CPUs with native bf16 (AVX-512 BF16, AMX); emulated elsewhere.
* ``onnx-fp32`` / ``onnx-int8``  the tower exported to ONNX (:mod:`.export`) and run by ONNX
  Runtime's graph optimiser, with int8 weight matrices for the second.

The text tower runs once per label set; :class:`TextTower` is what both the PyTorch scorer and
the ONNX export run.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from pathlib import Path

import torch

from .loading import LoadedClip
from .onnx_scorer import onnx_session


class ImageTower(ABC):
    """One way of running the image encoder: preprocessed pixels (N×3×H×W) → embeddings (N×D, float32)."""

    name: str

    @abstractmethod
    def embed(self, pixels: torch.Tensor) -> torch.Tensor: ...


class TorchTower(ImageTower):
    """open_clip's own module, in fp32 or with its weights cast to bf16."""

    def __init__(self, clip: LoadedClip, dtype: torch.dtype = torch.float32):
        self.dtype = dtype
        self.name = "torch-fp32" if dtype == torch.float32 else "torch-bf16"
        visual = clip.model.visual
        self.module = visual if dtype == torch.float32 else copy.deepcopy(visual).to(dtype)

    @torch.inference_mode()
    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.module(pixels.to(self.dtype)).float()


class OnnxTower(ImageTower):
    """The tower as an ONNX graph run by ONNX Runtime on the CPU."""

    def __init__(self, path: Path, name: str):
        self.name = name
        self.path = path
        self.session = onnx_session(path, torch.get_num_threads())  # the same CPU budget as PyTorch

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.session.run(None, {"pixels": pixels.contiguous().numpy()})[0])


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
    """``model.encode_text`` with the padding trimmed (see :class:`TextTower`).

    Where trimming does not apply, the full tower runs.
    """
    if not TextTower.supports(model):
        return model.encode_text(tokens)
    return TextTower(model)(trim(tokens))
