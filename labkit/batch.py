"""One micro-batch of image requests: decode each record, score the images together, produce results and dead letters.

No consumer here, and no commit: the processor's loop (``labkit.processor``) polls the records
and hands the output to a :class:`labkit.checkpoint.Checkpoint` (or any ``sink`` with the same
``produce``), which decides when the batch counts as done.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any, Protocol

from confluent_kafka import Message

from .clip import Scorer
from .config import Settings
from .errors import LabkitError
from .images import load_rgb
from .wire import (
    ImageRequest,
    LabelScore,
    ScoreResult,
    Timings,
    dead_letter_headers,
    now_ms,
    record_headers,
    record_position,
)

log = logging.getLogger(__name__)


class Sink(Protocol):
    """Where a batch's output goes (a :class:`labkit.checkpoint.Checkpoint`)."""

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers=None) -> None: ...


@dataclass
class Decoded:
    """A record decoded into the scorer's input."""

    message: Message
    request: ImageRequest
    pixels: Any  # the scorer's preprocessed 3×H×W input
    started_ms: int
    decode_ms: float


@dataclass
class Rejected:
    """A record that cannot be scored, and why: it becomes a dead letter (and an error result)."""

    message: Message
    reason: str


@dataclass
class ScoredBatch:
    """A batch after its CLIP forward passes, before anything is produced."""

    rejected: list[Rejected] = field(default_factory=list)
    #: (decoded request, its top labels, inference ms per image) in scoring order
    scored: list[tuple[Decoded, list[LabelScore], float]] = field(default_factory=list)

    @property
    def size(self) -> int:
        """Images scored (the ``batch_size`` each result reports)."""
        return len(self.scored)


def request_id_of(message: Message) -> str | None:
    """The request id in a record's key, if the key looks like one (for error results)."""
    key = message.key()
    try:
        text = key.decode("ascii") if key else ""
    except UnicodeDecodeError:
        return None
    return text if 0 < len(text) <= 64 and text.isprintable() else None


class BatchScorer:
    """The processor's work on one batch, without its Kafka plumbing: :meth:`decode`, :meth:`score`, :meth:`produce`."""

    def __init__(self, scorer: Scorer, settings: Settings, processor: str):
        self.scorer = scorer
        self.settings = settings
        self.processor = processor  # the name each result carries

    def decode(self, messages: list[Message]) -> list[Decoded | Rejected]:
        """Each record decoded to model input, or rejected with the reason (one bad record is its own problem only)."""
        side = self.scorer.input_size
        out: list[Decoded | Rejected] = []
        for message in messages:
            started_ms, t0 = now_ms(), time.perf_counter()
            try:
                request = ImageRequest.from_record(message.key(), message.value(), record_headers(message))
                image = load_rgb(request.image, self.settings.max_image_pixels, draft_side=side)
                pixels = self.scorer.preprocess(image)
            except Exception as exc:  # any failure of *one record* is that record's problem only
                reason = str(exc) if isinstance(exc, LabkitError) else f"{type(exc).__name__}: {exc}"
                out.append(Rejected(message, reason))
                continue
            out.append(Decoded(message, request, pixels, started_ms, (time.perf_counter() - t0) * 1000))
        return out

    def score(self, decoded: list[Decoded | Rejected]) -> ScoredBatch:
        """Score the decoded images: one forward pass per set of candidate labels (usually one for all)."""
        batch = ScoredBatch(rejected=[item for item in decoded if isinstance(item, Rejected)])
        by_labels: dict[tuple[str, ...] | None, list[Decoded]] = {}
        for item in decoded:
            if isinstance(item, Decoded):
                by_labels.setdefault(item.request.labels, []).append(item)
        for labels, group in by_labels.items():
            t0 = time.perf_counter()
            top = self.scorer.score_pixels([d.pixels for d in group], labels)
            inference_ms = (time.perf_counter() - t0) * 1000 / len(group)
            batch.scored += [(item, scores, inference_ms) for item, scores in zip(group, top)]
        return batch

    def produce(self, batch: ScoredBatch, sink: Sink) -> None:
        """Produce the batch's dead letters (with an error result each, when the sender is known) and results."""
        for rejected in batch.rejected:
            self._dead_letter(rejected, sink)
        for item, labels, inference_ms in batch.scored:
            self._result(item, labels, inference_ms, batch.size, sink)

    def _result(
        self, item: Decoded, labels: list[LabelScore], inference_ms: float, batch_size: int, sink: Sink
    ) -> None:
        done_ms = now_ms()
        result = ScoreResult(
            id=item.request.id,
            status="ok",
            labels=labels,
            model=self.scorer.model_id,
            batch_size=batch_size,
            processor=self.processor,
            timings_ms=Timings(
                queued=max(item.started_ms - item.request.sent_at_ms, 0),
                decode=round(item.decode_ms, 2),
                inference=round(inference_ms, 2),
                total=max(done_ms - item.request.sent_at_ms, 0),
            ),
        )
        sink.produce(self.settings.results_topic, key=result.id.encode(), value=result.to_json())
        t = result.timings_ms
        log.info(
            "scored %s (p%d@%d) → %s %.1f%% | queued %.0f ms, decode %.1f ms, inference %.1f ms, "
            "total %.0f ms, batch %d",
            result.id,
            item.message.partition(),
            item.message.offset(),
            labels[0].label,
            labels[0].score * 100,
            t.queued,
            t.decode,
            t.inference,
            t.total,
            batch_size,
        )

    def _dead_letter(self, rejected: Rejected, sink: Sink) -> None:
        """Park a bad record in the dead-letter topic and tell its sender (if we know who) it failed."""
        message, reason = rejected.message, rejected.reason
        log.warning("dead-lettered %s[%d]@%d: %s", message.topic(), message.partition(), message.offset(), reason)
        sink.produce(
            self.settings.dead_letter_topic,
            key=message.key(),
            value=message.value(),
            headers=dead_letter_headers(record_headers(message), reason, *record_position(message)),
        )
        request_id = request_id_of(message)
        if request_id:
            error = ScoreResult(
                id=request_id, status="error", error=reason, model=self.scorer.model_id, processor=self.processor
            )
            sink.produce(self.settings.results_topic, key=error.id.encode(), value=error.to_json())
