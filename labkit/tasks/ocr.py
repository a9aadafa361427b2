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

#: The detector's input: the image with its longest side at most this many pixels, never enlarged.
#: Uploads are at most ``max_image_side`` (640 px); the detector finds where the lines are, and the
#: recogniser reads each line from the full-size image, so a smaller detector input costs no exact
#: reads: measured on the bench's 640×240 cards, 544 px read all 24 exactly (as did 480) and was
#: ~1.2× faster than 640 px (2.46× vs 2.04× today's figure, both without spinning). RapidOCR's own
#: ``det_limit_type="max"`` cannot do this: it raises any ``det_limit_side_len`` under 960 to 960
#: (1,500 or 2,000 for larger images), and its default (``"min"``, 736) enlarges a 640×360 upload
#: 4× in pixels, for no better reads at a quarter of the speed.
DETECTOR_SIDE = 544


def _session(path: str, threads: int) -> Any:
    """An ONNX Runtime CPU session as RapidOCR builds it, except that its idle worker threads sleep.

    ONNX Runtime's intra-op threads busy-wait between parallel sections by default (see
    :func:`labkit.clip.onnx_scorer.onnx_session`). OCR runs many small ops per line, so they spin
    often, and on 2 cores shared with other work two spinning threads read slower than one: measured on
    the bench's 24 cards (one run), 6.8 img/s spinning, 9.0 with one thread, 13.9 with two that sleep
    (2.05×). The 224 px photos (no text, ~8 ms each) lost ~10 % (124 → 113 img/s): waking a sleeping
    thread costs more than their tiny detector ops save.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = False  # as RapidOCR: input shapes change with every image and line
    if threads > 0:
        options.intra_op_num_threads = threads
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


class OcrAnswer(Answer):
    """OCR's answer: the text read (lines joined by newlines, ``""`` for none) and each line with its box."""

    text: str
    lines: list[TextLine] = []


class TextReader:
    """One RapidOCR engine (its three ONNX sessions), safe to share between processor threads."""

    def __init__(self, threads: int = 0):
        """``threads``: ONNX Runtime threads per session (0: ONNX Runtime's default, one per core)."""
        try:
            from rapidocr_onnxruntime import RapidOCR  # imported here: `import labkit` stays light
        except ImportError as exc:
            raise ModelUnavailable(
                f"The ocr task needs rapidocr-onnxruntime ({exc}): `pip install rapidocr-onnxruntime`, "
                "or run another task (LABKIT_TASK=clip)."
            ) from None
        from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess
        from rapidocr_onnxruntime.main import DEFAULT_CFG_PATH
        from rapidocr_onnxruntime.utils import read_yaml, update_model_path

        threads = min(threads, os.cpu_count() or 1)
        # Kept from RapidOCR's defaults, measured (24 cards, same run): the angle classifier (``use_cls``)
        # costs ~2 % (4 ms of ~200 per card) and turns crops that come out upside down: without it, a card
        # rotated 90° (tests/test_ocr.py's) or 180° read nothing or "Z dnoud jawnsuon", so it stays.
        # ``rec_batch_num`` (6 lines per recogniser call) already holds a card's lines; recognising the
        # lines of many images in one call (batches of 8 or 16) read no faster once the threads stopped
        # spinning (0.93×, 0.82×). Dynamic int8 models (onnxruntime.quantization.quantize_dynamic, after
        # quant_pre_process turns their Constant weights into initializers) were slower (ConvInteger:
        # 0.45× with the int8 recogniser, 0.65× with the int8 detector) and the int8 recogniser read 0 of
        # 24 cards; int8 on the recogniser's MatMuls alone read them all, no faster (1.02×).
        self._engine = RapidOCR()
        models = update_model_path(read_yaml(DEFAULT_CFG_PATH))
        # RapidOCR 1.4 builds its SessionOptions itself and takes no config entries: its three sessions are
        # rebuilt, from the same files, with spinning off (this loads each small model twice at start-up).
        for holder, part in (
            (self._engine.text_det.infer, "Det"),
            (self._engine.text_cls.infer, "Cls"),
            (self._engine.text_rec.session, "Rec"),
        ):
            holder.session = _session(models[part]["model_path"], threads)
        detector = self._engine.text_det
        sized = DetPreProcess(DETECTOR_SIDE, "max", detector.mean, detector.std)
        detector.get_preprocess = lambda longest_side: sized  # see DETECTOR_SIDE
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
