"""One micro-batch of image requests for one task.

Decode each record, run the task on the images, produce results and dead letters.

No consumer here, and no commit: the processor's loop (``labkit.processor``) polls the records
and hands the output to a :class:`labkit.kafka.checkpoint.Checkpoint` (or any ``Outbox`` with the same
``produce``), which decides when the batch counts as done. No model either: the task
(``labkit.tasks``) prepares and runs the images; this module is the same for every task.

A task that makes an image embedding (CLIP) has it produced to the embeddings topic just before
the result, through the same checkpoint: it is acknowledged before the batch commits, like the
result (``labkit.records.embeddings`` says why it has a topic of its own).

Every task reads the whole requests topic in its own consumer group, so each decides alone:

* a record whose ``labkit-tasks`` header leaves this task out is **skipped** before its image is
  decoded — nothing is produced for it, and the batch's commit moves past it;
* a record this task cannot use (bad headers, not an image, the model failing on it) is
  **dead-lettered by this task**, with ``labkit-dlq-task`` saying which task failed it, and
  its sender gets an error result from this task. A record bad for every task is therefore
  dead-lettered once per task: each task's answer stands alone (a page waiting for the OCR text
  learns that OCR failed, whatever CLIP did), and a dead letter can be replayed to the one task
  that failed it (send it again with ``labkit-tasks: ["<task>"]``).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

from confluent_kafka import Message

from .config import Settings
from .errors import LabkitError
from .images import load_rgb
from .records.dead_letters import H_DLQ_TASK, dead_letter_headers
from .records.embeddings import encode_embedding
from .records.serde import RESULTS
from .records.wire import (
    H_TASKS,
    ImageRequest,
    ScoreResult,
    Timings,
    now_ms,
    record_headers,
    record_position,
    validate_tasks,
)
from .tasks import Output, Task

log = logging.getLogger(__name__)


class Outbox(Protocol):
    """Where a batch's output goes (a :class:`labkit.kafka.checkpoint.Checkpoint`)."""

    def produce(self, topic: str, key: bytes | None, value: bytes | None, headers=None) -> None: ...


@dataclass
class Decoded:
    """A record decoded into the task's input."""

    message: Message
    request: ImageRequest
    prepared: Any  # what the task's prepare() made of the image
    fetched_ms: float  # when the processor's poll handed the record over (ms since the epoch)
    decode_ms: float


@dataclass
class Rejected:
    """A record the task cannot use, and why: it becomes a dead letter (and an error result)."""

    message: Message
    reason: str


@dataclass
class Skipped:
    """A record meant for other tasks only (its ``labkit-tasks`` header): not decoded, nothing produced."""

    message: Message
    tasks: tuple[str, ...]


class Scored(NamedTuple):
    """One image the task ran on: its output, its share of the run, and how long batching kept it waiting."""

    decoded: Decoded
    output: Output
    inference_ms: float
    batch_wait_ms: float  # fetched → its run began, less its own decode


@dataclass
class ScoredBatch:
    """A batch after the task ran, before anything is produced."""

    rejected: list[Rejected] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    scored: list[Scored] = field(default_factory=list)  # in running order

    @property
    def size(self) -> int:
        """Images the task ran on (the ``batch_size`` each result reports)."""
        return len(self.scored)


def request_id_of(message: Message) -> str | None:
    """The request id in a record's key, if the key looks like one (for error results)."""
    key = message.key()
    try:
        text = key.decode("ascii") if key else ""
    except UnicodeDecodeError:
        return None
    return text if 0 < len(text) <= 64 and text.isprintable() else None


def addressed_tasks(message: Message) -> tuple[str, ...] | None:
    """The tasks a record's ``labkit-tasks`` header names; None if none (every task) or it cannot be read.

    Read from the header alone, before anything else: a task skips a record meant for others
    without judging the rest of it. An unreadable header is the full parse's to report.
    """
    value = next((v for k, v in record_headers(message) or () if k == H_TASKS and v is not None), None)
    if value is None:
        return None
    try:
        return validate_tasks(json.loads(value.decode("utf-8", "replace")))
    except (ValueError, LabkitError):
        return None


def _reason(exc: Exception) -> str:
    return str(exc) if isinstance(exc, LabkitError) else f"{type(exc).__name__}: {exc}"


class BatchScorer:
    """A processor's work on one batch for its task, without the Kafka plumbing.

    Three steps: :meth:`decode`, :meth:`score`, :meth:`produce`.
    """

    def __init__(self, task: Task, settings: Settings, processor: str):
        self.task = task
        self.settings = settings
        self.processor = processor  # the name each result carries
        # CPU seconds the calling thread spent inside the task's runs. The model's own worker threads
        # (ONNX Runtime's, PyTorch's) are not in it: `labkit bench` reads those from the OS.
        self.run_thread_cpu_s = 0.0

    def decode(
        self, messages: list[Message], fetched_ms: Sequence[float] | None = None
    ) -> list[Decoded | Rejected | Skipped]:
        """Each record decoded to the task's input, skipped (for other tasks) or rejected with the reason.

        ``fetched_ms`` says when the poll handed over each record (the processor stamps them);
        without it a record counts as fetched when its decode starts. One bad record is its own
        problem only.
        """
        task = self.task
        out: list[Decoded | Rejected | Skipped] = []
        for i, message in enumerate(messages):
            tasks = addressed_tasks(message)
            if tasks is not None and task.name not in tasks:
                out.append(Skipped(message, tasks))
                continue
            started_ms, t0 = time.time() * 1000, time.perf_counter()
            try:
                request = ImageRequest.from_record(message.key(), message.value(), record_headers(message))
                image = load_rgb(request.image, self.settings.max_image_pixels, draft_side=task.draft_side)
                prepared = task.prepare(image, request)
            except Exception as exc:  # any failure of *one record* is that record's problem only
                out.append(Rejected(message, _reason(exc)))
                continue
            fetched = fetched_ms[i] if fetched_ms is not None else started_ms
            out.append(Decoded(message, request, prepared, fetched, (time.perf_counter() - t0) * 1000))
        return out

    def score(self, decoded: list[Decoded | Rejected | Skipped]) -> ScoredBatch:
        """Run the task on the decoded images, one run per group (CLIP: per label set; OCR: per image)."""
        batch = ScoredBatch(
            rejected=[item for item in decoded if isinstance(item, Rejected)],
            skipped=[item for item in decoded if isinstance(item, Skipped)],
        )
        groups: dict[Hashable, list[Decoded]] = {}
        for item in decoded:
            if isinstance(item, Decoded):
                groups.setdefault(self.task.group(item.request), []).append(item)
        for group in groups.values():
            self._run(group, batch)
        return batch

    def _run(self, group: list[Decoded], batch: ScoredBatch) -> None:
        """One run of the task; if it fails, each image again alone, so the image that fails it fails alone."""
        began_ms, t0, cpu0 = time.time() * 1000, time.perf_counter(), time.thread_time()
        try:
            try:
                outputs = self.task.run([d.prepared for d in group], [d.request for d in group])
            finally:
                self.run_thread_cpu_s += time.thread_time() - cpu0
            for output in outputs:
                if not isinstance(output.answer, self.task.answer_model):
                    raise LabkitError(
                        f"the {self.task.name} task answered with a {type(output.answer).__name__}, not its "
                        f"{self.task.answer_model.__name__}: make its run() return "
                        f"Output({self.task.answer_model.__name__}(...))"
                    )
        except Exception as exc:  # the model failed on this input: never on the whole batch's account
            if len(group) > 1:
                for item in group:
                    self._run([item], batch)
                return
            log.warning("%s failed on %s: %s", self.task.name, group[0].request.request_id, _reason(exc), exc_info=exc)
            batch.rejected.append(Rejected(group[0].message, f"the {self.task.name} task failed: {_reason(exc)}"))
            return
        inference_ms = (time.perf_counter() - t0) * 1000 / len(group)
        batch.scored += [
            Scored(item, output, inference_ms, max(began_ms - item.fetched_ms - item.decode_ms, 0.0))
            for item, output in zip(group, outputs, strict=True)
        ]

    def produce(self, batch: ScoredBatch, outbox: Outbox) -> None:
        """Produce the batch's dead letters (with an error result each, when the sender is known) and results."""
        for skipped in batch.skipped:
            log.info(
                "skipped %s (p%d@%d): meant for %s, not %s",
                request_id_of(skipped.message) or "a request",
                *record_position(skipped.message)[1:],
                ", ".join(skipped.tasks),
                self.task.name,
            )
        for rejected in batch.rejected:
            self._dead_letter(rejected, outbox)
        for scored in batch.scored:
            self._result(scored, batch.size, outbox)

    def produce_embeddings(self, batch: ScoredBatch, outbox: Outbox) -> int:
        """Produce the batch's image embeddings only — no result, no dead letter — and return how many.

        For re-embedding after a model change (``labkit.history.reembed``): the history needs the
        new model's vectors, while the answers each upload was given stay those it was shown.
        """
        return sum(self._embedding(scored, outbox) for scored in batch.scored)

    def _embedding(self, scored: Scored, outbox: Outbox) -> bool:
        """Produce ``scored``'s image embedding, if its task made one, keyed by its request id; whether it did."""
        if scored.output.embedding is None:
            return False
        vector, headers = encode_embedding(scored.output.embedding, self.task.model_id)
        # The request record's key is its request id: the embedding's key too, so the sink joins them.
        outbox.produce(self.settings.embeddings_topic, key=scored.decoded.message.key(), value=vector, headers=headers)
        return True

    def _result(self, scored: Scored, batch_size: int, outbox: Outbox) -> None:
        item = scored.decoded
        position = record_position(item.message)
        done_ms = now_ms()
        result = ScoreResult(
            request_id=item.request.request_id,
            status="ok",
            task=self.task.name,
            model=self.task.model_id,
            batch_size=batch_size,
            processor=self.processor,
            partition=position.partition,
            offset=position.offset,
            produced_at_ms=done_ms,
            timings_ms=Timings(
                queued=round(max(item.fetched_ms - item.request.sent_at_ms, 0), 2),
                batch_wait=round(scored.batch_wait_ms, 2),
                decode=round(item.decode_ms, 2),
                inference=round(scored.inference_ms, 2),
                total=max(done_ms - item.request.sent_at_ms, 0),
            ),
            answer=scored.output.answer.model_dump(mode="json"),
        )
        self._embedding(scored, outbox)  # before the result: whoever sees the result may look for it
        value, headers = RESULTS.serialize(result, self.settings.results_topic)
        outbox.produce(self.settings.results_topic, key=result.request_id.encode(), value=value, headers=headers)
        t = result.timings_ms
        log.info(
            "scored %s (p%d@%d) with %s → %s | queued %.0f ms, batch wait %.1f ms, decode %.1f ms, "
            "inference %.1f ms, total %.0f ms, batch %d",
            result.request_id,
            position.partition,
            position.offset,
            self.task.name,
            scored.output.summary,
            t.queued,
            t.batch_wait,
            t.decode,
            t.inference,
            t.total,
            batch_size,
        )

    def _dead_letter(self, rejected: Rejected, outbox: Outbox) -> None:
        """Park a record this task cannot use in the dead-letter topic.

        Also tell its sender (if we know who) that it failed.
        """
        message, reason = rejected.message, rejected.reason
        position = record_position(message)
        log.warning("dead-lettered %s[%d]@%d for %s: %s", *position, self.task.name, reason)
        headers = dead_letter_headers(record_headers(message), reason, *position)
        outbox.produce(
            self.settings.dead_letter_topic,
            key=message.key(),
            value=message.value(),
            headers=[*headers, (H_DLQ_TASK, self.task.name.encode())],
        )
        request_id = request_id_of(message)
        if request_id:
            error = ScoreResult(
                request_id=request_id,
                status="error",
                error=reason,
                task=self.task.name,
                model=self.task.model_id,
                processor=self.processor,
                partition=position.partition,
                offset=position.offset,
                produced_at_ms=now_ms(),
            )
            value, result_headers = RESULTS.serialize(error, self.settings.results_topic)
            outbox.produce(
                self.settings.results_topic, key=error.request_id.encode(), value=value, headers=result_headers
            )
