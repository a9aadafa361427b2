"""The processor: a consumer-group member that runs one task on image requests, at least once.

Each task has its own consumer group on the requests topic (``<group_prefix>-<task>``:
``labkit-clip``, ``labkit-ocr``), so every task sees every upload and keeps its own committed
offsets; the processors of one task share its partitions. The task (``labkit.tasks``) is the
only part that knows the model. The loop, and why each step is where it is:

1. **poll** a micro-batch: whatever is waiting, up to ``max_batch_size`` records, waiting at
   most ``max_batch_wait_ms`` for more while busy (big batches use the CPU better; waiting adds
   latency, so a processor whose last batch held one image takes what is there and goes);
2. **decode** each one, on a second thread while the previous batch is being scored; a
   record meant for other tasks only (its ``labkit-tasks`` header) is skipped undecoded; a
   record that cannot be parsed or decoded goes to the dead-letter topic (with the error, its
   origin and this task) and an error result is sent, so one bad image never stops the pipeline;
3. **run the task** on the decoded images (CLIP: one forward pass per label set; OCR: image by image);
4. **produce** one result per request and **wait until the broker has acknowledged** every
   result and dead letter (``flush``);
5. only then **commit** the batch's offsets.

If the process dies anywhere before step 5, the group hands the partitions to another member,
which re-reads from the last committed offset: requests may be scored twice (the web app drops
duplicate results by request id) but are never lost. That is "at-least-once" delivery.

``LABKIT_EXACTLY_ONCE=true`` (Apache Kafka only) makes steps 4 and 5 one Kafka transaction
(``labkit.kafka.transaction``): the batch's results and its offsets are committed together or
not at all, so a ``read_committed`` reader sees exactly one result per request even when a
processor dies mid-batch.

``LABKIT_FAILPOINT`` proves it: ``after-consume:N`` kills the process (SIGKILL, no clean-up)
after its Nth batch is polled and scored but before any result is produced; ``before-commit:N``
after the results are acknowledged but before the commit (so the next owner produces
duplicates). Notebook 11 and ``tests/test_resilience.py`` use both.

The steps live in modules of their own, so each can be read (and tested) alone:
``labkit.batch`` does one batch's work for any task (decode → run → results and dead letters,
no consumer in sight); ``labkit.kafka.checkpoint`` produces it, waits for the acknowledgement and commits — or
rewinds the batch with a fresh producer when Kafka is away. This module is the loop that
composes them: polling, the consumer group's callbacks, and the failpoints.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition

from ._process import crash_at_failpoint, name_os_thread, parse_failpoint, write_json_atomically
from .batch import BatchScorer, Decoded, Rejected, ScoredBatch, Skipped
from .config import Settings
from .errors import LabkitError
from .kafka.admin import engine_of, wait_for_topics
from .kafka.checkpoint import Checkpoint, ResultsNotAcknowledged, rewind
from .kafka.client_config import make_consumer, make_producer
from .kafka.group_errors import raise_if_refused
from .kafka.offsets import seek_back
from .kafka.producer import RenewableProducer
from .kafka.transaction import TRANSACTION_TIMEOUT_MS, Transaction, TransactionalProducer, refuse_on_tansu
from .tasks import Task, build_task

__all__ = ["Processor", "ProcessorStats", "ResultsNotAcknowledged"]

log = logging.getLogger(__name__)

#: The OS name of the thread that decodes the next batch while this one is scored.
DECODE_THREAD = "labkit-decode"


@dataclass
class ProcessorStats:
    """Counters a test or notebook can read while the processor runs."""

    batches: int = 0
    scored: int = 0  # images the task ran on, results committed
    dead_lettered: int = 0
    skipped: int = 0  # records meant for other tasks only, committed past without decoding them
    # CPU seconds this loop's thread spent inside the task's runs (the model's worker threads are the OS's to count)
    run_thread_cpu_s: float = 0.0


class Processor:
    """Consume ``requests_topic`` in the task's group, run the task, produce to ``results_topic``.

    ``task``: the :class:`~labkit.tasks.Task` to run (default: the one ``settings.task`` names);
    the processor joins that task's group whatever ``settings.task`` says. ``model``: that task's
    model, already loaded, to share between processors in one process (a CLIP ``Scorer``, an OCR
    ``TextReader``). ``run()`` blocks until ``stop()`` is called (from another thread or a
    signal handler).
    """

    def __init__(
        self,
        settings: Settings,
        model: Any = None,
        name: str | None = None,
        task: Task | None = None,
        stats_file: Path | None = None,
    ):
        self.task = task or build_task(settings, model)
        self.settings = settings if settings.task == self.task.name else settings.for_task(self.task.name)
        self.name = name or f"processor-{socket.gethostname()}-{os.getpid()}"
        self.stats = ProcessorStats()
        self.stats_file = stats_file  # rewritten with the stats after every batch (``labkit bench`` reads it)
        self.ready = threading.Event()  # set once the group has given us our partitions
        self.assignment: list[int] = []
        self._stop = threading.Event()
        self._consumer: Consumer | None = None  # set by run()
        self._producers: RenewableProducer | None = None  # set by run()
        self._transactions: TransactionalProducer | None = None  # set by run() with LABKIT_EXACTLY_ONCE
        self._work: BatchScorer | None = None  # set by run()
        self._pending: tuple[list[Message], Future] | None = None  # polled, decoding, not yet scored
        self._last_batch = 0  # records in the last batch polled: more than one means "busy, wait for batch-mates"
        self._revoke_failed: ResultsNotAcknowledged | None = None  # from _on_revoke, for the loop to rewind
        self._thread: threading.Thread | None = None  # set by start_in_thread()
        self.error: BaseException | None = None  # what ended a background loop, if anything
        self._failpoint = parse_failpoint(settings.failpoint)

    def stop(self, timeout: float = 15) -> None:
        """Ask the loop to finish its current batch, leave the group and return (waits for a background loop)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while a loop started by :meth:`start_in_thread` is alive."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def member_id(self) -> str | None:
        """This member's id in its consumer group; None while it is in none (not joined yet, or dropped)."""
        return self._consumer.memberid() if self._consumer is not None else None

    def start_in_thread(self, timeout: float = 60, wait: bool = True) -> "Processor":
        """Run the loop on a background thread (notebooks, tests); return once the group gives it partitions.

        Several processors in one process can share one model (``model``): it is loaded once and
        ONNX Runtime releases the GIL while it computes. An error in the loop is kept in ``error``.
        ``wait=False`` returns at once (``ready`` is set later).
        """

        def run() -> None:
            try:
                self.run()
            except BaseException as exc:  # noqa: BLE001 — kept for the caller, who decides what to do
                self.error = exc
                log.error("%s stopped: %s", self.name, exc)

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if wait and not self.ready.wait(timeout):
            raise LabkitError(
                f"{self.name} got no partitions within {timeout:.0f} s "
                f"({self.error or 'is the broker up, and the topic created?'})"
            )
        return self

    # --- the loop ---------------------------------------------------------------------------------

    def run(self) -> None:
        settings = self.settings
        wait_for_topics(
            settings, [settings.requests_topic, settings.results_topic, settings.dead_letter_topic], who=self.name
        )
        task = self.task
        task.load()  # CLIP: loads the model, picks the backend and runs the warm-up batch
        self._work = BatchScorer(task, settings, self.name)
        consumer = self._consumer = make_consumer(settings, settings.group_id, client_id=self.name)
        if settings.exactly_once:
            self._transactions = self._transactional_producer()
        self._producers = RenewableProducer(
            partial(
                make_producer,
                settings,
                client_id=self.name,
                **{"message.timeout.ms": int(self._delivery_timeout_s * 1000)},
            ),
            name=self.name,
        )
        consumer.subscribe([settings.requests_topic], on_assign=self._on_assign, on_revoke=self._on_revoke)
        log.info(
            "%s joining group %r on %s (task %s, model %s, backend %s)",
            self.name,
            settings.group_id,
            settings.requests_topic,
            task.name,
            task.model_id,
            task.backend,
        )
        # Named for the OS too, so `top -H` (and `labkit bench`'s CPU budget) can tell decoding from inference.
        decoder = ThreadPoolExecutor(
            1, thread_name_prefix=f"{self.name}-decode", initializer=name_os_thread, initargs=(DECODE_THREAD,)
        )
        try:
            while not self._stop.is_set():
                # Block for new records only when nothing is waiting to be scored.
                batch, fetched_ms = self._next_batch(consumer, block=self._pending is None)
                decoding = (batch, decoder.submit(self._work.decode, batch, fetched_ms)) if batch else None
                failed, self._revoke_failed = self._revoke_failed, None  # a rebalance inside that poll, Kafka away
                if failed is None:
                    try:
                        self._finish_pending()  # score batch N while batch N+1 decodes
                    except ResultsNotAcknowledged as exc:
                        failed = exc
                if failed is not None:  # Kafka away: redo both batches once it is back
                    self._rewind(failed, failed.batch + batch)
                    decoding = None
                self._pending = decoding
            self._finish_pending()
        finally:
            decoder.shutdown()
            self._producers.flush(10)
            consumer.close()  # leave the group now, so the others take over our partitions at once
            log.info("%s stopped after %d images (%s)", self.name, self.stats.scored, self.task.name)

    @property
    def _delivery_timeout_s(self) -> float:
        """How long a batch's results may take to be acknowledged: well inside ``max.poll.interval.ms``.

        Otherwise the group would throw this member out while it waits.
        """
        return self.settings.max_poll_interval_ms * 0.6 / 1000

    def _transactional_producer(self) -> TransactionalProducer:
        """The transactional producer (exactly-once), after checking that the broker can keep the promise."""
        settings = self.settings
        refuse_on_tansu(engine_of(settings))
        delivery_ms = min(int(self._delivery_timeout_s * 1000), TRANSACTION_TIMEOUT_MS)  # librdkafka insists
        make = partial(
            make_producer,
            settings,
            client_id=self.name,
            **{
                # One id per processor: a restarted one with the same name fences its old self at once.
                "transactional.id": f"{settings.group_id}-{self.name}",
                "transaction.timeout.ms": TRANSACTION_TIMEOUT_MS,
                "message.timeout.ms": delivery_ms,
            },
        )
        return TransactionalProducer(make, self.name, self._delivery_timeout_s + 1)

    def _rewind(self, exc: ResultsNotAcknowledged, messages: list[Message]) -> None:
        """After results were not acknowledged: read these records again, with a fresh producer (in 2 s)."""
        log.warning("%s: %s Re-reading %d record(s) in 2 s.", self.name, exc, len(messages))
        assert self._producers is not None and self._consumer is not None  # set by run(), which calls this
        if self._transactions is not None:
            seek_back(self._consumer, messages)  # the transaction was aborted: nothing to drop in the producer
        else:
            rewind(self._consumer, messages, self._producers)
        self._stop.wait(2)

    def _on_assign(self, consumer, partitions: list[TopicPartition]) -> None:
        self.assignment = sorted(tp.partition for tp in partitions)
        log.info(
            "processor ready: %s — partitions %s of %s (task %s)",
            self.name,
            self.assignment,
            self.settings.requests_topic,
            self.task.name,
        )
        self.ready.set()

    def _on_revoke(self, consumer, partitions: list[TopicPartition]) -> None:
        # Runs inside poll(), on this thread: finish (and commit) the batch in hand while the
        # partitions are still ours, or another member would redo it.
        revoked = sorted(tp.partition for tp in partitions)
        try:
            self._finish_pending()
        except ResultsNotAcknowledged as exc:
            # Kafka went away mid-rebalance. Raised from here, it would leave poll() and end the loop;
            # instead the loop rewinds once poll() returns. Nothing was committed: whoever owns these
            # partitions next (this member again, or another) re-reads them from the last commit.
            log.warning(
                "%s: the batch in hand was not acknowledged while partitions %s were revoked; it will be redone",
                self.name,
                revoked,
            )
            self._revoke_failed = exc
        log.info("%s: partitions %s revoked (rebalance)", self.name, revoked)

    def _next_batch(self, consumer, block: bool = True) -> tuple[list[Message], list[float]]:
        """Up to ``max_batch_size`` records, with when each was handed over.

        The first within 0.5 s (or none if not ``block``), then whatever else is already fetched, and,
        when the last batch held more than one record, whatever else arrives within ``max_batch_wait_ms``.
        A lone image (real-time use) thus never waits for batch-mates that are not coming: that wait
        was 20 ms of every such image's latency (``labkit bench``, section c), while under load the
        batches fill anyway. When each was handed over is in ms since the epoch: a result's ``queued``
        ends there and its ``batch_wait`` begins.
        """
        good: list[Message] = []
        fetched_ms: list[float] = []
        timeout = 0.5 if block else 0
        wait_s = self.settings.max_batch_wait_ms / 1000 if self._last_batch > 1 else 0.0
        deadline = None
        while len(good) < self.settings.max_batch_size:
            message = consumer.poll(timeout)  # one at a time, so each record gets its own fetch time
            if message is None:
                break
            if message.error():
                raise_if_refused([message], self.settings.group_id, self.settings.session_timeout_ms)
                if message.error().code() != KafkaError._PARTITION_EOF:
                    log.warning("%s: consumer error: %s", self.name, message.error())
            else:
                good.append(message)
                fetched_ms.append(time.time() * 1000)
            if deadline is None:
                deadline = time.monotonic() + wait_s
            timeout = max(deadline - time.monotonic(), 0)
        if good:
            self._last_batch = len(good)
        return good, fetched_ms

    def _finish_pending(self) -> None:
        pending, self._pending = self._pending, None
        if pending:
            batch, decoding = pending
            self.process_batch(batch, decoded=decoding.result())

    # --- one batch ---------------------------------------------------------------------------------

    def process_batch(self, batch: list[Message], decoded: list[Decoded | Rejected | Skipped] | None = None) -> None:
        """Decode (unless done), run the task, produce, await the acknowledgement, commit (module docstring)."""
        work, producers = self._work, self._producers
        assert work is not None and producers is not None  # set by run(), which calls this
        scored = work.score(decoded if decoded is not None else work.decode(batch))
        self._maybe_crash("after-consume")
        if self._transactions is not None:
            self._process_in_transaction(batch, scored)
            return
        checkpoint = Checkpoint(batch, producers, self._delivery_timeout_s + 1)
        work.produce(scored, checkpoint)
        self.stats.dead_lettered += len(scored.rejected)
        checkpoint.wait_until_acknowledged()  # raises ResultsNotAcknowledged: nothing committed, batch redone
        self._maybe_crash("before-commit")
        if checkpoint.commit(self._consumer):
            self._count(scored)

    def _process_in_transaction(self, batch: list[Message], scored: ScoredBatch) -> None:
        """Exactly-once: the batch's results, dead letters and offsets in one transaction (module docstring)."""
        assert self._work is not None and self._transactions is not None
        transaction = Transaction(batch, self._transactions, self._delivery_timeout_s + 1)
        self._work.produce(scored, transaction)
        self.stats.dead_lettered += len(scored.rejected)
        self._transactions.flush(self._delivery_timeout_s)  # written to the log, invisible until the commit
        self._maybe_crash("before-commit")
        transaction.commit(self._consumer)  # raises ResultsNotAcknowledged once aborted: the batch is redone
        self._count(scored)

    def _count(self, scored: ScoredBatch) -> None:
        """Count a committed batch (and publish the counts to :attr:`stats_file`, when there is one)."""
        assert self._work is not None  # set by run()
        stats = self.stats
        stats.batches += 1
        stats.scored += scored.size
        stats.skipped += len(scored.skipped)
        stats.run_thread_cpu_s = self._work.run_thread_cpu_s
        if self.stats_file is not None:
            write_json_atomically(self.stats_file, asdict(stats))

    def _maybe_crash(self, step: str) -> None:
        """SIGKILL this whole process if ``LABKIT_FAILPOINT`` names ``step`` of the batch now in hand."""
        crash_at_failpoint(self._failpoint, step, self.stats.batches + 1, self.name)
