"""ResultsListener: read every results partition from "now" on, outside any consumer group.

ResultStore keeps the results by request id and task.

Every web replica and notebook therefore sees every result and keeps the ones its own clients
asked for. That is how a result finds the right browser when several web replicas run: no
replica needs to know which one received the upload.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable

from confluent_kafka import Consumer, TopicPartition

from ._loop import ThreadLoop
from .config import Settings
from .kafka.admin import wait_for_topics
from .kafka.client_config import make_consumer
from .records.serde import RESULTS
from .records.wire import ScoreResult, now_ms, record_headers
from .tasks import answer_of

log = logging.getLogger(__name__)


class ResultStore:
    """Latest results by request id and task (up to ``capacity`` ids), dropping at-least-once duplicates.

    One upload gets one result per task (``clip``, ``ocr``…); a redelivered result for the same
    request id and task is a duplicate.
    """

    def __init__(self, capacity: int = 10_000):
        self.capacity = capacity
        self._results: OrderedDict[str, dict[str, ScoreResult]] = OrderedDict()  # request id → task → result
        self._count = 0
        self._lock = threading.Lock()

    def add(self, result: ScoreResult) -> bool:
        """Keep ``result``; False if this request id already had one from this task (a duplicate from a retry)."""
        with self._lock:
            tasks = self._results.setdefault(result.request_id, {})
            if result.task in tasks:
                return False
            tasks[result.task] = result
            self._count += 1
            while len(self._results) > self.capacity:
                _, evicted = self._results.popitem(last=False)
                self._count -= len(evicted)
            return True

    def get(self, request_id: str, task: str = "clip") -> ScoreResult | None:
        """``request_id``'s result from ``task``, or None (not arrived, or evicted)."""
        with self._lock:
            return self._results.get(request_id, {}).get(task)

    def of(self, request_id: str) -> dict[str, ScoreResult]:
        """Every result ``request_id`` has so far, by task, in arrival order."""
        with self._lock:
            return dict(self._results.get(request_id, {}))

    def all(self) -> list[ScoreResult]:
        """Every result kept, request by request (oldest first), each request's in arrival order."""
        with self._lock:
            return [result for tasks in self._results.values() for result in tasks.values()]

    def __len__(self) -> int:
        """How many results are kept (an upload scored by two tasks counts twice)."""
        return self._count


class ResultsListener:
    """Calls ``on_result`` (from a background thread) for each result produced after ``start()``."""

    def __init__(
        self,
        settings: Settings,
        on_result: Callable[[ScoreResult], None],
        client_id: str = "labkit-results-listener",
        replay_s: float = 0,
    ):
        self.settings = settings
        self.on_result = on_result
        self.client_id = client_id
        self.replay_s = replay_s
        self._loop: ThreadLoop | None = None
        self.consumer: Consumer | None = None  # set by start()

    def start(self) -> "ResultsListener":
        """Assign every results partition at its current end (or ``replay_s`` s back); return once positioned.

        ``assign`` (not ``subscribe``): no consumer group, so no rebalance wait and no
        committed offsets; each listener independently reads everything new. A web replica
        replays the last minutes on start: results that arrived while it was restarting are
        read again, so a browser asking for them afterwards still gets them.
        """
        topic = self.settings.results_topic
        metadata = wait_for_topics(self.settings, [topic], who=self.client_id)
        partitions = sorted(metadata.topics[topic].partitions)
        consumer = self.consumer = make_consumer(self.settings, client_id=self.client_id)
        timeout = self.settings.connect_timeout_s
        ends = {p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)[1] for p in partitions}
        start = {p: TopicPartition(topic, p, end) for p, end in ends.items()}
        if self.replay_s > 0:
            since = now_ms() - int(self.replay_s * 1000)  # offsets_for_times: the first record at or after `since`
            for found in consumer.offsets_for_times([TopicPartition(topic, p, since) for p in partitions], timeout):
                if found.offset >= 0:  # -1: nothing that recent in this partition
                    start[found.partition] = TopicPartition(topic, found.partition, found.offset)
        consumer.assign(list(start.values()))
        # The consumer is closed on the loop's own thread once it stops (never while it polls).
        self._loop = ThreadLoop(
            self.client_id,
            self._poll_once,
            on_exit=consumer.close,
            what_failed="results listener failed one poll; it carries on",
        ).start()
        return self

    def _poll_once(self) -> None:
        assert self.consumer is not None  # set by start(), which starts the loop that calls this
        message = self.consumer.poll(0.2)
        if message is None:
            return
        if message.error():
            log.warning("results listener: %s", message.error())
            return
        try:
            result = RESULTS.deserialize(message.value(), record_headers(message), message.topic() or "")
            answer_of(result)  # the task's own model checks its answer: a field it does not declare is refused
        except Exception as exc:  # a record this reader cannot read (bad JSON, another major, a bad answer) is skipped
            log.warning(
                "ignoring unreadable result at %s[%d]@%d: %s",
                message.topic(),
                message.partition(),
                message.offset(),
                exc,
            )
            return
        try:
            self.on_result(result)
        except Exception:
            log.exception("result callback failed for %s", result.request_id)

    @property
    def alive(self) -> bool:
        """True while the listening thread runs."""
        return self._loop is not None and self._loop.alive

    def stop(self, timeout: float = 5) -> None:
        if self._loop:
            self._loop.stop(timeout)
