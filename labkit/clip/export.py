"""Export CLIP's parts to files that run without PyTorch, cached per weights.

The files: ONNX image and text towers (fp32 and int8), tokenizer.json and a manifest.

Every file is written once under a temporary name and renamed into place, so processors
starting together never read half a file; later runs reuse what is there.
"""

from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from .artifacts import TOKENIZER_FILE, Manifest, image_tower_file, model_folder, text_tower_file
from .cpu import native_int8_dot
from .loading import LoadedClip
from .tokens import build_tokenizer
from .towers import TextTower

log = logging.getLogger(__name__)


def _export(
    module: torch.nn.Module, example: torch.Tensor, target: Path, input_name: str, dynamic: dict[int, str]
) -> None:
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    # Grad enabled on purpose: under no_grad, PyTorch's attention takes a fused fast path
    # that the (TorchScript-based) exporter cannot translate.
    with torch.enable_grad(), warnings.catch_warnings():
        # It warns that negative indices would break `x[rows, eot_positions]`; token positions never are.
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(
            module,
            (example,),
            str(partial),
            input_names=[input_name],
            output_names=["embedding"],
            opset_version=17,
            dynamo=False,
            dynamic_axes={input_name: dynamic, "embedding": {0: "batch"}},
        )
    os.replace(partial, target)


class _SkipPreprocessingAdvice(logging.Filter):
    """Drops ONNX Runtime's "consider pre-processing" advice: it is for static quantization, ours dynamic."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Please consider to run pre-processing")


def _quantize(source: Path, target: Path, ops: tuple[str, ...] = ("MatMul", "Gemm")) -> None:
    """Dynamic int8: weights as int8 with one scale per output channel, activations quantized on the fly.

    Only ``ops`` with constant weights are touched (``Gather`` = the text tower's token
    embedding table, 25 M numbers). ``reduce_range`` keeps weights to 7 bits on CPUs without
    VNNI, whose int8 multiply-add saturates 16-bit sums otherwise (see :mod:`.cpu`).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    partial = target.with_suffix(f".{os.getpid()}.tmp")
    advice = _SkipPreprocessingAdvice()
    logging.getLogger().addFilter(advice)  # ONNX Runtime logs it on the root logger
    try:
        quantize_dynamic(
            str(source),
            str(partial),
            weight_type=QuantType.QInt8,
            reduce_range=not native_int8_dot(),
            per_channel=True,
            op_types_to_quantize=list(ops),
            extra_options={"MatMulConstBOnly": True},
        )
    finally:
        logging.getLogger().removeFilter(advice)
    os.replace(partial, target)


class _TraceableSelfAttention(torch.nn.Module):
    """``nn.MultiheadAttention`` (self-attention, same weights) in plain tensor ops, for the ONNX exporter.

    The exporter traces PyTorch's fused attention function with the example's sequence length
    baked into a reshape, so a graph traced on 8 tokens fails on 9. Here every reshape is
    relative (``unflatten``/``flatten``), and the length stays a dynamic axis.
    """

    def __init__(self, attention: torch.nn.MultiheadAttention):
        super().__init__()
        self.attention = attention

    def forward(self, query, key, value, need_weights=False, attn_mask=None):
        mha = self.attention
        x = query if mha.batch_first else query.transpose(0, 1)  # N×L×D
        q, k, v = torch.nn.functional.linear(x, mha.in_proj_weight, mha.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.unflatten(-1, (mha.num_heads, -1)).transpose(1, 2) for t in (q, k, v))  # N×heads×L×d
        scores = q @ k.transpose(-2, -1) * (q.shape[-1] ** -0.5)
        if attn_mask is not None:
            scores = scores + attn_mask
        out = mha.out_proj((scores.softmax(dim=-1) @ v).transpose(1, 2).flatten(2))
        return (out if mha.batch_first else out.transpose(0, 1)), None


@contextlib.contextmanager
def _traceable_attention(transformer: torch.nn.Module):
    """Swap each block's attention for :class:`_TraceableSelfAttention` while exporting, then put it back."""
    swapped = [
        (block, block.attn)
        for block in getattr(transformer, "resblocks", [])
        if isinstance(getattr(block, "attn", None), torch.nn.MultiheadAttention) and block.attn._qkv_same_embed_dim
    ]
    try:
        for block, attention in swapped:
            block.attn = _TraceableSelfAttention(attention)
        yield
    finally:
        for block, attention in swapped:
            block.attn = attention


def _folder(clip: LoadedClip, cache_dir: Path | None) -> Path:
    return model_folder(clip.cache_key, cache_dir, create=True)


def export_image_tower(clip: LoadedClip, cache_dir: Path | None = None, quantized: bool = False) -> Path:
    """The image tower as an ONNX file (int8 if ``quantized``), exported once and then reused."""
    folder = _folder(clip, cache_dir)
    fp32 = folder / image_tower_file("onnx-fp32")
    target = folder / image_tower_file("onnx-int8" if quantized else "onnx-fp32")
    if not fp32.is_file():
        log.info("exporting the %s image tower to ONNX (once; cached in %s)", clip.model_id, folder)
        size = clip.model.visual.image_size
        example = torch.zeros(1, 3, *(size if isinstance(size, tuple) else (size, size)))
        _export(clip.model.visual, example, fp32, "pixels", {0: "batch"})
    if not target.is_file():
        log.info("quantizing the %s image tower to int8 (once)", clip.model_id)
        _quantize(fp32, target)
    return target


def export_text_tower(clip: LoadedClip, cache_dir: Path | None = None, quantized: bool = False) -> Path | None:
    """The trimmed text tower (dynamic batch and length) as ONNX, or None for models it does not fit."""
    if not TextTower.supports(clip.model):
        return None
    folder = _folder(clip, cache_dir)
    fp32, target = folder / text_tower_file(False), folder / text_tower_file(quantized)
    if not fp32.is_file():
        log.info("exporting the %s text tower to ONNX (once)", clip.model_id)
        example = clip.tokenizer(["a photo of a cat.", "a diagram."])[:, :8]
        with _traceable_attention(clip.model.transformer):
            _export(TextTower(clip.model).eval(), example, fp32, "tokens", {0: "batch", 1: "length"})
    if not target.is_file():
        log.info("quantizing the %s text tower to int8 (once)", clip.model_id)
        _quantize(fp32, target, ops=("MatMul", "Gemm", "Gather"))
    return target


def export_tokenizer(clip: LoadedClip, cache_dir: Path | None = None) -> Path | None:
    """open_clip's BPE vocabulary as ``tokenizer.json``, or None for tokenizers other than CLIP's own."""
    tokenizer: Any = clip.tokenizer  # open_clip's SimpleTokenizer, when it has these attributes
    if not all(hasattr(tokenizer, name) for name in ("encoder", "bpe_ranks", "context_length")):
        return None
    target = _folder(clip, cache_dir) / TOKENIZER_FILE
    if not target.is_file():
        merges = sorted(tokenizer.bpe_ranks, key=tokenizer.bpe_ranks.get)
        partial = target.with_suffix(f".{os.getpid()}.tmp")
        build_tokenizer(tokenizer.encoder, merges, tokenizer.context_length).save(str(partial))
        os.replace(partial, target)
    return target


def write_manifest(clip: LoadedClip, cache_dir: Path | None = None) -> Manifest | None:
    """Record what the runtime must know; None when the preprocessing is not what :mod:`.preprocess` does."""
    config = getattr(clip.model.visual, "preprocess_cfg", None) or {}
    size = config.get("size")
    side = size if isinstance(size, int) else (size[0] if size and size[0] == size[1] else None)
    if side is None or config.get("resize_mode") != "shortest" or config.get("interpolation") != "bicubic":
        return None
    manifest = Manifest(
        model_id=clip.model_id,
        random_weights=clip.random_weights,
        input_size=int(side),
        mean=tuple(config["mean"]),
        std=tuple(config["std"]),
        logit_scale=float(clip.model.logit_scale.detach().exp()),
    )
    manifest.write(_folder(clip, cache_dir))
    return manifest
