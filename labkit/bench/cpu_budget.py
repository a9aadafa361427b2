"""Where a saturated run's CPU goes: milliseconds per image for each pipeline process, from the OS.

On a machine with few cores, the load generator, the web app, the broker, the sink and its database share the
cores with the processor. Every millisecond of CPU they spend on an image is a millisecond the model does
not get. That is why the pipeline's ratio to the image tower alone (bench section b) is a *budget*. This module
says where the budget goes, part by part:

``load generator``
    this process (``labkit bench`` itself): the simulated clients' HTTP uploads and WebSockets;
``web app``, ``sink``
    those children of the bench's stack;
``broker``
    every node of the cluster (Tansu's one process, or each Apache Kafka JVM);
``database``
    the embedded PostgreSQL the sink writes to: its server and every backend process, ended ones included;
``processor: decode``
    the processor's decode thread (``labkit-decode``): parsing the record and decoding the image;
``processor: inference``
    the model's own worker threads (ONNX Runtime's or PyTorch's) and the loop thread's time inside the
    task's runs (from the processor's stats file: the OS cannot tell that part of one thread from the rest);
``processor: Kafka client``
    librdkafka's threads (named ``rdk:main``, ``rdk:broker…``): fetching, producing, the group's heartbeats;
``processor: loop``
    the rest of the loop thread: polling, building results, serialising them, produce calls, commits.

Processes are read with psutil (user + system time); a processor's threads by their name and CPU time in
``/proc/PID/task/TID/{comm,schedstat}``. On an OS without ``/proc`` every processor thread counts as inference.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from pathlib import Path

import psutil

from ..errors import LabkitError
from ..ops.stack import Stack
from ..processor import DECODE_THREAD

#: The parts of a processor, in the order the report shows them.
PROCESSOR_PARTS = ("processor: decode", "processor: inference", "processor: Kafka client", "processor: loop")
#: Every part, in the order the report shows them.
PARTS = ("load generator", "web app", "broker", *PROCESSOR_PARTS, "sink", "database")

CpuSeconds = dict[str, float]


def _seconds(times) -> float:
    return float(times.user + times.system)


def _process_seconds(pid: int) -> float:
    try:
        return _seconds(psutil.Process(pid).cpu_times())
    except psutil.NoSuchProcess:
        return 0.0


def _tree_seconds(pid: int) -> float:
    """CPU seconds of a process, its live descendants and reaped children (a PostgreSQL server's backends)."""
    try:
        root = psutil.Process(pid)
        times = root.cpu_times()
        total = _seconds(times) + times.children_user + times.children_system
        for child in root.children(recursive=True):
            try:
                total += _seconds(child.cpu_times())
            except psutil.NoSuchProcess:  # ended between the listing and the reading: in children_* next time
                pass
        return total
    except psutil.NoSuchProcess:
        return 0.0


def _threads(pid: int) -> list[tuple[int, str, float]]:
    """Each thread of ``pid``: its id, its name and its CPU seconds so far.

    Read from ``/proc/PID/task/TID/schedstat`` (nanoseconds: the clock ``time.thread_time()`` reads,
    which the processor's own count of its time in runs comes from), else from psutil (10 ms ticks).
    """
    threads = []
    try:
        for thread in psutil.Process(pid).threads():
            folder = Path(f"/proc/{pid}/task/{thread.id}")
            try:
                name = (folder / "comm").read_text().strip()
                seconds = int((folder / "schedstat").read_text().split()[0]) / 1e9
            except (OSError, ValueError, IndexError):  # ended since the listing, or no /proc: ticks will do
                name, seconds = "", thread.user_time + thread.system_time
            threads.append((thread.id, name, seconds))
    except psutil.NoSuchProcess:
        pass
    return threads


def processor_seconds(pid: int, stats_file: Path) -> CpuSeconds:
    """One processor's CPU seconds so far, split into :data:`PROCESSOR_PARTS`."""
    parts = dict.fromkeys(PROCESSOR_PARTS, 0.0)
    loop = 0.0
    for tid, name, seconds in _threads(pid):
        if tid == pid:
            loop += seconds
        elif name == DECODE_THREAD:
            parts["processor: decode"] += seconds
        elif name.startswith("rdk:"):
            parts["processor: Kafka client"] += seconds
        else:  # the model's worker threads (they take the name of the thread that made them)
            parts["processor: inference"] += seconds
    try:
        in_runs = float(json.loads(stats_file.read_text())["run_thread_cpu_s"])
    except (OSError, ValueError, KeyError):  # no batch committed yet
        in_runs = 0.0
    parts["processor: inference"] += in_runs
    parts["processor: loop"] = loop - in_runs
    return parts


def _count(stack: Stack, child: str, counter: str) -> int:
    """One counter from the stats file of ``stack``'s child called ``child`` (0 before its first batch)."""
    try:
        return int(json.loads(stack.stats_file(child).read_text())[counter])
    except (OSError, ValueError, KeyError):
        return 0


def scored(stack: Stack) -> int:
    """Images the stack's processors have scored and committed, from their stats files."""
    return sum(_count(stack, child.name, "scored") for child in stack.children)


def written(base: Stack) -> int:
    """Records the base stack's sink has written to the history and committed, from its stats file."""
    return _count(base, "sink", "written")


def read_cpu(base: Stack, processors: Stack) -> CpuSeconds:
    """CPU seconds so far per part of the pipeline: ``base`` (broker, web app, sink) and ``processors``."""
    parts: CpuSeconds = defaultdict(float)
    parts["load generator"] = _process_seconds(os.getpid())
    if base.broker is not None:
        parts["broker"] = sum(_process_seconds(pid) for pid in base.broker.pids())
    for child in base.children:
        if child.name in ("web", "sink"):
            parts["web app" if child.name == "web" else "sink"] += _process_seconds(child.process.pid)
    if base.want_sink and base.settings.database_url is None:  # the embedded server (a server elsewhere: not ours)
        from ..history.embedded import postmaster

        if (server := postmaster(base.settings.history_dir / "postgres")) is not None:
            parts["database"] = _tree_seconds(server.pid)
    for child in processors.children:
        for part, seconds in processor_seconds(child.process.pid, processors.stats_file(child.name)).items():
            parts[part] += seconds
    return {part: parts.get(part, 0.0) for part in PARTS}


def wait_until_settled(base: Stack, processors: Stack, images: int, scored_before: int, written_before: int) -> None:
    """Wait until the processors committed the run's ``images`` and the sink has written what they made.

    The load generator has every result by then, but a processor commits a moment after its results
    are acknowledged and the sink writes them a moment later: their CPU belongs to the run. The sink
    is done once it has written each image's request and result (and the embedding, if any: it is
    then left alone for half a second). Its committed offsets cannot say so: with exactly-once
    processors a transaction's commit marker takes the offset after its last record, and a consumer
    that commits the offset after the last record it read stays one behind it (librdkafka issue 3917).
    """
    deadline = time.monotonic() + 60.0
    while scored(processors) < scored_before + images:
        if time.monotonic() > deadline:
            raise LabkitError(
                f"The processors committed {scored(processors) - scored_before} of {images} images within 60 s of "
                "the last result: look at their log above."
            )
        time.sleep(0.05)
    if not base.want_sink:
        return
    last, quiet_since = written(base), time.monotonic()
    while last < written_before + 2 * images or time.monotonic() - quiet_since < 0.5:
        if time.monotonic() > deadline:
            raise LabkitError(
                f"The sink wrote {last - written_before} records for {images} images within 60 s: look at its log "
                "above."
            )
        time.sleep(0.05)
        if (now := written(base)) != last:
            last, quiet_since = now, time.monotonic()


def per_image_ms(before: CpuSeconds, after: CpuSeconds, images: int) -> dict[str, float]:
    """Milliseconds of CPU per image of each part between two readings, and their ``total``."""
    spent = {part: round((after[part] - before[part]) * 1000 / images, 2) for part in PARTS}
    return {**spent, "total": round(sum(spent.values()), 2)}
