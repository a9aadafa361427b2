"""The ``ocr`` task: the text in each image, read by PP-OCRv4.

The answer: lines with their boxes and confidences, and the joined text.

The models are PaddleOCR's PP-OCRv4 text detector and recogniser (plus a small classifier that
turns upside-down lines), exported to ONNX and shipped inside the ``rapidocr-onnxruntime``
wheel: no download, and the same ONNX Runtime as CLIP's ONNX backends. Unlike labkit's test
CLIP, these are real pretrained weights, so the answers are real: rendered text comes back
word for word. An image without text is a valid answer — an empty text, not an error.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Hashable, Sequence
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
from PIL import Image

from ..errors import ModelUnavailable
from ..records.wire import ImageRequest, TextLine
from .base import Answer, Output, Shown, Task

log = logging.getLogger(__name__)

#: How the detector sizes an image: its longest side at most 960 px, never enlarged. Uploads are at
#: most ``max_image_side`` (640 px) already; RapidOCR's default (enlarge until the *short* side is
#: 736 px) quadruples the pixels of a 640×360 upload and, measured on rendered text, read no better
#: at a quarter of the speed.
DETECTOR_OPTIONS = {"det_limit_type": "max", "det_limit_side_len": 960}


class OcrAnswer(Answer):
    """OCR's answer: the text read (lines joined by newlines, ``""`` for none) and each line with its box."""

    text: str
    lines: list[TextLine] = []


class TextReader:
    """One RapidOCR engine (its three ONNX sessions), safe to share between processor threads."""

    def __init__(self, threads: int = 0):
        """``threads``: ONNX Runtime threads per session (0: ONNX Runtime's default, all cores)."""
        try:
            from rapidocr_onnxruntime import RapidOCR  # imported here: `import labkit` stays light
        except ImportError as exc:
            raise ModelUnavailable(
                f"The ocr task needs rapidocr-onnxruntime ({exc}): `pip install rapidocr-onnxruntime`, "
                "or run another task (LABKIT_TASK=clip)."
            ) from None
        cores = os.cpu_count() or 1
        threading_options = {"intra_op_num_threads": min(threads, cores)} if threads > 0 else {}
        self._engine = RapidOCR(**DETECTOR_OPTIONS, **threading_options)
        self._lock = threading.Lock()  # the detector keeps per-call state on itself: one image at a time
        try:
            self.model_id = f"PP-OCRv4 (rapidocr-onnxruntime {version('rapidocr-onnxruntime')})"
        except PackageNotFoundError:  # run from a source tree
            self.model_id = "PP-OCRv4 (rapidocr-onnxruntime)"

    def read(self, bgr: np.ndarray) -> list[TextLine]:
        """The lines of text in one H×W×3 BGR image, top to bottom, left to right ([] when there is none)."""
        with self._lock:
            found, _ = self._engine(bgr)
        return [
            TextLine(
                text=text,
                score=round(float(score), 4),
                box=[(round(float(x), 1), round(float(y), 1)) for x, y in box],
            )
            for box, text, score in found or ()
        ]


def _gist(text: str, words: int = 6) -> str:
    """The first words of a text, for a log line."""
    first = text.split()
    return repr(" ".join(first[:words]) + (" …" if len(first) > words else "")) if first else "no text"


class OcrTask(Task):
    """Text lines with boxes and confidences, and the joined text; one image at a time."""

    name = "ocr"
    model_method = "read"
    answer_model = OcrAnswer
    title = "Text (OCR)"
    layout = "lines"
    empty = "no text found"
    history_columns = ("ocr_text",)
    _model: TextReader | None

    def load_model(self) -> TextReader:
        return TextReader(self.settings.inference_threads)

    @property
    def reader(self) -> TextReader:
        return self.model

    @property
    def model_id(self) -> str:
        return self.reader.model_id

    def group(self, request: ImageRequest) -> Hashable:
        return request.request_id  # RapidOCR reads one image per call: each is timed alone

    def prepare(self, image: Image.Image, request: ImageRequest) -> Any:
        return np.ascontiguousarray(np.asarray(image)[:, :, ::-1])  # RGB → the BGR order OpenCV models expect

    def run(self, prepared: Sequence[Any], requests: Sequence[ImageRequest]) -> list[Output]:
        outputs = []
        for bgr in prepared:
            lines = self.reader.read(bgr)
            text = "\n".join(line.text for line in lines)
            outputs.append(Output(OcrAnswer(text=text, lines=lines), _gist(text)))
        return outputs

    @classmethod
    def show(cls, answer: OcrAnswer) -> list[Shown]:
        return [Shown(text=line.text, score=line.score) for line in answer.lines]

    @classmethod
    def summarize(cls, answer: OcrAnswer) -> str:
        return " / ".join(answer.text.splitlines()) or cls.empty

    @classmethod
    def history_values(cls, answer: OcrAnswer) -> dict[str, object]:
        return {"ocr_text": answer.text}
