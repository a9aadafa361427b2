"""The web app's Prometheus metrics (``GET /metrics``).

Uploads, results and latency per task, batch sizes, pending uploads and each task's group lag on
the request topic.

Each app gets its own registry (several apps in one test process do not collide). Counters
only go up; rate() in Prometheus turns them into per-second figures. The pending gauge and
the lag are read when Prometheus scrapes: pending uploads from the hub that owns them (see
:mod:`labkit.web.hub`), lag from Kafka, so both are as fresh as the scrape.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily

from ..config import Settings
from ..records.wire import ScoreResult

log = logging.getLogger(__name__)

#: Seconds; CLIP results take ~0.05 s alone and seconds when the pipeline is saturated.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _RequestLag:
    """A collector that asks Kafka, at scrape time, how far each task's group lags on the request topic."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self):
        from ..ops.monitor import partition_lag, task_groups

        records = GaugeMetricFamily(
            "labkit_request_lag",
            "Image requests a task's processors have not committed yet (group = the task's consumer group)",
            labels=["group", "partition"],
        )
        seconds = GaugeMetricFamily(
            "labkit_request_lag_seconds",
            "How long the oldest image request a task's processors have not committed has waited",
            labels=["group", "partition"],
        )
        for group in task_groups(self.settings):
            try:
                rows = partition_lag(self.settings, self.settings.requests_topic, group)
            except Exception as exc:  # noqa: BLE001 — a scrape must not fail because Kafka is slow to answer
                log.debug("lag of %s not available: %s", group, exc)
                continue
            for row in rows:
                records.add_metric([group, str(row.partition)], row.lag_records)
                if row.lag_seconds is not None:
                    seconds.add_metric([group, str(row.partition)], row.lag_seconds)
        yield records
        yield seconds


class WebMetrics:
    """What the web app counts; ``render()`` is the /metrics body."""

    def __init__(self, settings: Settings):
        self.registry = CollectorRegistry()
        self.uploads = Counter("labkit_uploads", "Uploads by outcome", ["outcome"], registry=self.registry)
        self.results = Counter(
            "labkit_results",
            "Results delivered to this replica's clients, one per task per upload",
            ["task", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "labkit_upload_to_result_seconds",
            "From upload accepted to a task's result received here",
            ["task"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.processing = Histogram(
            "labkit_pipeline_seconds",
            "From request sent to a task's result produced (processor's view)",
            ["task"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "labkit_batch_size",
            "Images per processor batch, per result",
            buckets=(1, 2, 4, 8, 16, 32, 64),
            registry=self.registry,
        )
        self.pending = Gauge(
            "labkit_pending_uploads",
            "Uploads accepted here and still waiting for a task's result",
            registry=self.registry,
        )
        self.registry.register(_RequestLag(settings))

    def count_pending(self, pending: Callable[[], int]) -> None:
        """Read the pending-uploads gauge from ``pending()`` at every scrape (the hub owns that number)."""
        self.pending.set_function(pending)

    def accepted(self) -> None:
        self.uploads.labels("accepted").inc()

    def rejected(self, reason: str) -> None:
        self.uploads.labels(reason).inc()

    def result(self, result: ScoreResult, waited_s: float | None) -> None:
        """A new result; ``waited_s`` since its upload when that upload is pending here, else None."""
        if waited_s is None:
            return  # another replica's upload (counted there), or one given up on here
        self.results.labels(result.task, result.status).inc()
        self.latency.labels(result.task).observe(waited_s)
        if result.status == "ok":
            self.processing.labels(result.task).observe(result.timings_ms.total / 1000)
            self.batch_size.observe(result.batch_size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
