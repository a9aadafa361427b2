"""Batch versus real time, small enough for a notebook: one in-process processor per batch limit, throughput and latency of each.

A processor that scores up to ``max_batch_size`` images per forward pass uses the CPU better
(throughput up) but an image may wait for its batch-mates (latency up). For each batch limit
this measures both, the way a learner would see them:

* **saturated**: a backlog of ``backlog`` requests is produced at once; throughput is backlog
  ÷ the time until the last result, and the latencies are those of the backlog;
* **light**: ``light`` requests sent one after another, each waiting for its result (the
  real-time case: what one user uploading one photo feels).

``labkit bench`` section d measures the same trade-off end to end, over HTTP with separate
processes; this version runs inside one Python process (notebook 07) and takes seconds.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from ..admin import create_topics
from ..clip import Scorer
from ..config import Settings
from ..lab_client import LabClient
from ..processor import Processor
from .load import percentile


def batch_vs_realtime(
    settings: Settings,
    scorer: Scorer,
    batch_sizes: list[int],
    images: list[bytes | Path],
    backlog: int = 64,
    light: int = 8,
) -> list[dict]:
    """One row per batch limit: saturated img/s with p50/p95 latency, and light-load p50 latency (ms).

    Every run gets topics and a consumer group of its own, so runs never see each other's records.
    """
    rows = []
    for max_batch in batch_sizes:
        tag = f"batching-{max_batch}-{uuid.uuid4().hex[:6]}"
        run = settings.model_copy(
            update={
                "max_batch_size": max_batch,
                "group_id": tag,
                "requests_topic": f"{tag}-requests",
                "results_topic": f"{tag}-results",
                "dead_letter_topic": f"{tag}-dlq",
            }
        )
        create_topics(run)
        processor = Processor(run, scorer, name=f"processor-batch-{max_batch}")
        with LabClient(run) as lab:
            processor.start_in_thread()
            try:
                started = time.perf_counter()
                ids = lab.submit_many([images[i % len(images)] for i in range(backlog)])
                saturated = [lab.wait(request_id).timings_ms.total for request_id in ids]
                seconds = time.perf_counter() - started
                one_at_a_time = [lab.classify(images[i % len(images)]).timings_ms.total for i in range(light)]
            finally:
                processor.stop()
        rows.append(
            {
                "max_batch": max_batch,
                "img_per_s": round(backlog / seconds, 1),
                "p50_ms": percentile(saturated, 50),
                "p95_ms": percentile(saturated, 95),
                "light_p50_ms": percentile(one_at_a_time, 50),
            }
        )
    return rows
