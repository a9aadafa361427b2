"""Checks for lesson 20: a task of your own, running as one more consumer group on the requests topic."""

from __future__ import annotations

import io
import time
from typing import Any

from PIL import Image

from ..config import Settings
from ..kafka.admin import describe_topics, read_topic
from ..records.serde import RESULTS
from ..records.wire import LabelScore, ScoreResult, record_headers
from ._feedback import require, solved

#: The check's images: solid squares whose dominant colour is not in doubt.
_SQUARES = {"red": (220, 40, 40), "green": (40, 170, 60), "blue": (40, 80, 220)}


def _square(rgb: tuple[int, int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (96, 96), rgb).save(out, "PNG")  # PNG: the colour arrives exactly
    return out.getvalue()


def _results(settings: Settings, ids: set[str]) -> dict[tuple[str, str], ScoreResult]:
    found = {}
    for record in read_topic(settings, settings.results_topic, idle_s=0.3):
        try:
            result = RESULTS.deserialize(record.value(), record_headers(record))
        except Exception:  # noqa: BLE001 — someone else's unreadable record is not the learner's problem
            continue
        if result.request_id in ids:
            found[(result.request_id, result.task)] = result
    return found


def check_colour_group(
    settings: Settings, sender: Any, group_id: str, task: str = "colours", timeout: float = 30
) -> None:
    """The learner's ``task`` processors (group ``group_id``) name the colour of solid squares.

    They commit past them, while the other groups on the topic answer the same uploads.
    """
    sent = {}
    for colour, rgb in _SQUARES.items():
        request, _, acked = sender.send(_square(rgb), f"{colour}.png")
        acked.result(10)
        sent[request.request_id] = colour
    others = [t for t in ("clip", "ocr") if t != task]
    deadline = time.monotonic() + timeout
    while True:
        found = _results(settings, set(sent))
        mine = {i: found[(i, task)] for i in sent if (i, task) in found}
        theirs = all((i, other) in found for i in sent for other in others)
        if (len(mine) == len(sent) and theirs) or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    require(
        mine,
        f"No result from the {task!r} task for the check's three squares within {timeout:.0f} s. Is your processor "
        f"running (`colours.running`, `colours.error`) in group {group_id!r}? Run the exercise cell again.",
    )
    require(
        len(mine) == len(sent),
        f"Your task answered {len(mine)} of the check's {len(sent)} squares within {timeout:.0f} s; is it stuck?",
    )
    for request_id, colour in sent.items():
        result = mine[request_id]
        require(result.status == "ok", f"Your task failed on the {colour} square: {result.error}")
        labels = [LabelScore.model_validate(label) for label in (result.answer or {}).get("labels", [])]
        require(
            labels,
            "Your task answered with no labels: run() must give each image its three largest colour shares "
            "as LabelScore(label=<colour name>, score=<share of pixels>).",
        )
        scores = [label.score for label in labels]
        require(
            all(0 <= s <= 1 for s in scores) and sum(scores) <= 1.0001,
            f"Shares are fractions of the image's pixels, between 0 and 1 and adding up to at most 1; yours: {scores}.",
        )
        require(scores == sorted(scores, reverse=True), f"Put the largest share first; yours are {scores}.")
        require(
            labels[0].label == colour,
            f"For a solid {colour} square your top colour is {labels[0].label!r} ({labels[0].score:.0%}). Assign each "
            "pixel to the palette colour at the smallest distance (sum of squared R, G, B differences).",
        )
    require(
        theirs,
        f"The {', '.join(others)} group(s) did not answer the check's squares within {timeout:.0f} s: are the lesson's "
        "processors still running (clip.running, ocr.running)? Run the cells above again.",
    )
    positions = {(r.partition, r.offset) for r in mine.values()}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        committed = {
            row.partition: row.committed for row in describe_topics(settings, [settings.requests_topic], group_id)
        }
        if all((committed.get(p) or 0) > o for p, o in positions if p is not None and o is not None):
            break
        time.sleep(0.2)
    else:
        require(False, f"Group {group_id} answered but has not committed past the squares ({positions}) after 10 s.")
    solved(
        f"three groups read the same three uploads: {task} named each colour ({', '.join(sent.values())}) and "
        f"committed past it in {group_id}, while {' and '.join(others)} answered them too."
    )
