"""CLIP's BPE tokenizer without PyTorch: open_clip's vocabulary as a Hugging Face ``tokenizers`` file.

open_clip's ``SimpleTokenizer`` is plain Python, but its module imports PyTorch, and the ONNX
scorer must not (PyTorch alone is ~500 MB of resident memory). The vocabulary and merge
rules are data, so the export step writes them into a ``tokenizer.json`` that the
``tokenizers`` library (Rust, fast, no PyTorch) runs with the same rules:

* clean the text like open_clip (fix mojibake with ftfy, unescape HTML, collapse
  whitespace, lower-case);
* split into words with CLIP's pattern, map bytes to printable characters (byte-level BPE),
  merge pairs in rank order, and mark each word's last piece with ``</w>``;
* wrap in ``<start_of_text>`` … ``<end_of_text>`` and cut to the context length (77),
  keeping the end-of-text token last — the token whose output CLIP uses as the embedding.

The backend check (:mod:`labkit.clip.prepare`) makes sure the result is token-for-token
identical to open_clip on every prompt of the label set and a set of awkward strings before
the runtime may use it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

#: How open_clip splits text into words before byte-pair merging (contractions, letters, digits, the rest).
WORD_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
START, END = "<start_of_text>", "<end_of_text>"

#: Strings that trip naive tokenizers; the export compares these with open_clip too.
AWKWARD_TEXTS = (
    "a photo of a CAT.",
    "  spaced\tout\n text ",
    "it's a dog's life",
    "café crème brûlée",
    "東京の夜景",
    "emoji 🐱🍕",
    "&amp; html &lt;b&gt;",
    "numbers 12345 and 3.14",
    "x" * 300,
    "",
    "don't-stop!!!",
)


def clean(text: str) -> str:
    """open_clip's default text cleaning: ftfy, HTML unescape (twice), whitespace collapse, lower-case."""
    import ftfy

    text = html.unescape(html.unescape(ftfy.fix_text(text))).strip()
    return re.sub(r"\s+", " ", text).strip().lower()


def build_tokenizer(encoder: dict[str, int], merges: Sequence[tuple[str, str]], context_length: int):
    """A ``tokenizers.Tokenizer`` with CLIP's vocabulary (``encoder``) and merge rules, in rank order."""
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, processors

    tokenizer = Tokenizer(models.BPE(vocab=dict(encoder), merges=list(merges), end_of_word_suffix="</w>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="removed", invert=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{START} $A {END}", special_tokens=[(START, encoder[START]), (END, encoder[END])]
    )
    tokenizer.enable_truncation(context_length)
    return tokenizer


class ClipTokenizer:
    """Texts → int64 token ids (N×length, zero-padded to the longest), as the ONNX text tower expects."""

    def __init__(self, path: Path):
        from tokenizers import Tokenizer

        self._tokenizer = Tokenizer.from_file(str(path))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        encodings = self._tokenizer.encode_batch([clean(text) for text in texts])
        length = max(len(e.ids) for e in encodings)
        tokens = np.zeros((len(encodings), length), dtype=np.int64)
        for row, encoding in zip(tokens, encodings):
            row[: len(encoding.ids)] = encoding.ids
        return tokens
