"""OCR throughput: the text images the bench reads, and how fast the OCR task reads them.

The OCR task is measured on those cards and on photos, with nothing else running.

OCR's cost depends on what is in the image: the detector runs on every image, the recogniser
once per line it finds, so a card with text costs more than a photo without any. Both are
measured. Every rendered card's text is known, so the bench also counts how many were read back
exactly (spaces and case aside): a fast run that reads nothing must not look like a fast run.
"""

from __future__ import annotations

import io
import statistics
import time

from PIL import Image, ImageDraw, ImageFont

from ..config import Settings

#: Words the rendered cards are made of (the pipeline's own vocabulary, and a few numbers per card).
WORDS = ("KAFKA", "STREAMS", "TOPIC", "PARTITION", "OFFSET", "BROKER", "CONSUMER", "GROUP", "RESULT", "IMAGE")


def text_images(count: int, size: tuple[int, int] = (640, 240)) -> list[tuple[bytes, str]]:
    """``count`` JPEG cards with two lines of dark text on light grounds, and each card's text.

    A card's text has its lines joined by newlines.

    Drawn with the font Pillow bundles (no system fonts needed), at a few sizes, so every
    machine measures the same images.
    """
    cards = []
    for i in range(count):
        lines = [
            f"{WORDS[i % len(WORDS)]} {WORDS[(3 * i + 1) % len(WORDS)]} {2020 + i}",
            f"Order {1000 + 7 * i}: {(37 * i) % 100}.{i % 10} EUR",
        ]
        font = ImageFont.load_default(size=(36, 30, 42)[i % 3])
        image = Image.new("RGB", size, (250, 248, 240 - 10 * (i % 4)))
        draw = ImageDraw.Draw(image)
        for n, line in enumerate(lines):
            draw.text((24, 40 + n * 80), line, fill=(20, 20, 30), font=font)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        cards.append((buffer.getvalue(), "\n".join(lines)))
    return cards


def same_text(read: str, expected: str) -> bool:
    """Whether OCR read ``expected``: case and spaces do not count (the recogniser may drop a space)."""
    return "".join(read.split()).lower() == "".join(expected.split()).lower()


def ocr_alone(settings: Settings, sets: dict[str, list[bytes]], texts: list[str], runs: int = 3) -> list[dict]:
    """``{images, img_per_s, read_ok, ...}`` rows: the OCR task alone on each image set, in this process.

    ``sets`` maps a name to its images (JPEG/PNG bytes); the set named ``"text"`` has the
    cards whose texts are ``texts``, and its row says how many were read exactly. Images are
    decoded and prepared once, outside the timing, as a processor does on its decode thread;
    the median of ``runs`` passes counts.
    """
    from ..images import load_rgb
    from ..records.wire import ImageRequest
    from ..tasks import OcrAnswer, build_task

    task = build_task(settings.for_task("ocr"))
    started = time.perf_counter()
    task.load()
    load_s = time.perf_counter() - started
    rows = []
    for name, images in sets.items():
        requests = [ImageRequest(f"bench-{n}", data, "image/jpeg") for n, data in enumerate(images)]
        prepared = [
            task.prepare(load_rgb(data, draft_side=task.draft_side), request) for data, request in zip(images, requests)
        ]
        task.run(prepared[:1], requests[:1])  # warm-up: ONNX Runtime sizes its buffers on the first call
        times, outputs = [], []
        for _ in range(runs):
            started = time.perf_counter()
            outputs = task.run(prepared, requests)
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        answers = [OcrAnswer.model_validate(output.answer.model_dump()) for output in outputs]
        row = {
            "images": name,
            "count": len(images),
            "img_per_s": round(len(images) / seconds, 2),
            "ms_per_image": round(1000 * seconds / len(images), 1),
            "lines_found": sum(len(answer.lines) for answer in answers),
            "load_s": round(load_s, 2),
        }
        if name == "text":
            row["read_ok"] = sum(same_text(answer.text, t) for answer, t in zip(answers, texts))
        rows.append(row)
    return rows
