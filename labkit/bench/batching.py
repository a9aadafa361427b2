"""Batch versus real time, small enough for a notebook.

One in-process processor per batch limit, and the throughput and latency of each.

A processor that scores up to ``max_batch_size`` images per forward pass uses the CPU better
(throughput up) but an image may wait for its batch-mates (latency up). For each batch limit
this measures both, the way a learner would see them:

* **saturated**: a backlog of ``backlog`` requests is produced at once; throughput is backlog
  ÷ the time until the last result, and the latencies are those of the backlog;
* **light**: ``light`` requests sent one after another, each waiting for its result (the
  real-time case: what one user uploading one photo feels).

``labkit bench`` section d measures the same trade-off end to end, over HTTP with separate
processes; this version runs inside one Python process (notebook 12) and takes seconds.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from ..clip import Scorer
from ..config import Settings
from ..kafka.admin import create_topics
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

    Every batch limit gets topics and a consumer group of its own, so runs never see each other's
    records. The processors start and join their groups together (a join takes seconds), then are
    measured one after another, each beside the same idle others.
    """
    runs = []
    for max_batch in batch_sizes:
        tag = f"batching-{max_batch}-{uuid.uuid4().hex[:6]}"
        run = settings.model_copy(
            update={
                "max_batch_size": max_batch,
                "group_prefix": tag,
                "requests_topic": f"{tag}-requests",
                "results_topic": f"{tag}-results",
                "dead_letter_topic": f"{tag}-dlq",
                "embeddings_topic": f"{tag}-embeddings",
            }
        )
        create_topics(run)
        runs.append((run, Processor(run, scorer, name=f"processor-batch-{max_batch}")))
    rows = []
    try:
        for _, processor in runs:  # joining a group takes seconds: the processors join together
            processor.start_in_thread(wait=False)
        for _, processor in runs:
            if not processor.ready.wait(60):
                raise TimeoutError(
                    f"{processor.name} got no partitions within 60 s; check that the broker answers "
                    "(`labkit topics list`) and run the cell again."
                )
        for run, _ in runs:  # and are measured one after another, each beside the same idle others
            with LabClient(run) as lab:
                started = time.perf_counter()
                ids = lab.submit_many([images[i % len(images)] for i in range(backlog)])
                saturated = [lab.wait(request_id).timings_ms.total for request_id in ids]
                seconds = time.perf_counter() - started
                one_at_a_time = [lab.classify(images[i % len(images)]).timings_ms.total for i in range(light)]
            rows.append(
                {
                    "max_batch": run.max_batch_size,
                    "img_per_s": round(backlog / seconds, 1),
                    "p50_ms": percentile(saturated, 50),
                    "p95_ms": percentile(saturated, 95),
                    "light_p50_ms": percentile(one_at_a_time, 50),
                }
            )
    finally:
        for _, processor in runs:
            processor.stop(timeout=0)  # all leave at once
        for _, processor in runs:
            processor.stop()
    return rows
