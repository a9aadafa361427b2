"""The web app's Prometheus metrics (``GET /metrics``): uploads, results, errors, latency, batch sizes, pending uploads and the request topic's lag.

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

from ..admin import describe_topics
from ..config import Settings
from ..wire import ScoreResult

log = logging.getLogger(__name__)

#: Seconds; CLIP results take ~0.05 s alone and seconds when the pipeline is saturated.
LATENCY_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


class _RequestLag:
    """A collector that asks Kafka for the processors' lag on the request topic at scrape time."""

    def __init__(self, settings: Settings):
        self.settings = settings

    def collect(self):
        family = GaugeMetricFamily(
            "labkit_request_lag", "Image requests the processors have not committed yet", labels=["partition"]
        )
        try:
            for row in describe_topics(self.settings, [self.settings.requests_topic]):
                if row.lag is not None:
                    family.add_metric([str(row.partition)], row.lag)
        except Exception as exc:  # noqa: BLE001 — a scrape must not fail because Kafka is slow to answer
            log.debug("lag not available: %s", exc)
        yield family


class WebMetrics:
    """What the web app counts; ``render()`` is the /metrics body."""

    def __init__(self, settings: Settings):
        self.registry = CollectorRegistry()
        self.uploads = Counter("labkit_uploads", "Uploads by outcome", ["outcome"], registry=self.registry)
        self.results = Counter(
            "labkit_results", "Results delivered to this replica's clients", ["status"], registry=self.registry
        )
        self.latency = Histogram(
            "labkit_upload_to_result_seconds",
            "From upload accepted to result received here",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.processing = Histogram(
            "labkit_pipeline_seconds",
            "From request sent to result produced (processor's view)",
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
            "labkit_pending_uploads", "Uploads accepted here and still waiting for a result", registry=self.registry
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
        self.results.labels(result.status).inc()
        self.latency.observe(waited_s)
        if result.status == "ok":
            self.processing.observe(result.timings_ms.total / 1000)
            self.batch_size.observe(result.batch_size)

    def render(self) -> bytes:
        return generate_latest(self.registry)
