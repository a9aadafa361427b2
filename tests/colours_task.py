"""A third task, written the way a learner would add one: dominant colours, in one module and one registry line.

Nothing else in labkit knows it: the processor runs it, the result carries its answer in its own
model, the web API, the WebSocket and the page show it, and the history keeps it — each because
it reads what this module declares. ``tests/test_new_task.py`` registers it and follows one upload.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from PIL import Image

from labkit.records.wire import ImageRequest
from labkit.tasks import Answer, Output, Shown, Task


class Colour(Answer):
    """One dominant colour and the share of the image's pixels closest to it."""

    hex: str
    share: float


class ColoursAnswer(Answer):
    """The image's dominant colours, the largest share first."""

    colours: list[Colour]


class Palette:
    """The "model": PIL's median-cut quantizer, reducing an image to a few colours."""

    def __init__(self, colours: int = 4):
        self.colours = colours

    def dominant(self, image: Image.Image) -> list[Colour]:
        small = image.convert("RGB").resize((64, 64))
        quantized = small.quantize(colors=self.colours, method=Image.Quantize.MEDIANCUT)
        palette = quantized.getpalette() or []
        counts = sorted(quantized.getcolors() or [], reverse=True)
        total = sum(count for count, _ in counts) or 1
        return [
            Colour(hex="#{:02x}{:02x}{:02x}".format(*palette[3 * index : 3 * index + 3]), share=round(count / total, 4))
            for count, index in counts
        ]


class ColoursTask(Task):
    """The few colours an image is mostly made of."""

    name = "colours"
    model_method = "dominant"
    answer_model = ColoursAnswer
    title = "Dominant colours"
    layout = "bars"
    empty = "no colours"

    def load_model(self) -> Palette:
        return Palette()

    @property
    def model_id(self) -> str:
        return "PIL median cut (4 colours)"

    def group(self, request: ImageRequest) -> Any:
        return request.request_id  # one image per run

    def prepare(self, image: Image.Image, request: ImageRequest) -> Any:
        return image

    def run(self, prepared: Sequence[Any], requests: Sequence[ImageRequest]) -> list[Output]:
        outputs = []
        for image in prepared:
            colours = self.model.dominant(image)
            outputs.append(Output(ColoursAnswer(colours=colours), ", ".join(c.hex for c in colours)))
        return outputs

    @classmethod
    def show(cls, answer: ColoursAnswer) -> list[Shown]:
        return [Shown(text=colour.hex, score=colour.share, swatch=colour.hex) for colour in answer.colours]
