"""A load generator for the running pipeline.

Many clients upload over HTTP, wait for each result on their WebSocket, and time the round trip.

Each of ``clients`` simulated users has its own HTTP connection and WebSocket and uploads one
image at a time, like a browser tab: 1 client measures latency at light load, many saturate
the pipeline and measure throughput. A client told ``429``/``503`` with ``Retry-After`` waits
that long and sends the same image again, as a polite client should. Every accepted upload
must come back: one with no result within the timeout is counted as lost, one whose result is
an error as failed (``labkit load`` then exits 1), and any other HTTP error stops the run —
none of them quietly improves the numbers. ``labkit load`` and ``labkit bench`` both use it.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import numpy as np
import websockets

#: Status codes that mean "not now": the client waits for Retry-After and tries again.
BACK_OFF = (429, 503)


def percentile(values: list[float], q: float) -> float:
    """The ``q``-th percentile (0–100) of ``values``.

    Interpolated between the two nearest ranks (NumPy's default, as pandas).
    """
    if not values:
        raise ValueError("no values to take a percentile of")
    return float(np.percentile(values, q))


@dataclass
class LoadResult:
    """One load run: how many uploads, how long it took, each upload's round trip, every HTTP status seen."""

    uploads: int
    seconds: float
    latencies_ms: list[float]
    statuses: Counter = field(default_factory=Counter)  # every HTTP answer, retries included
    accepted: list[str] = field(default_factory=list)  # the request id of every 202
    lost: list[str] = field(default_factory=list)  # accepted request ids with no result within the timeout
    failed: list[str] = field(default_factory=list)  # accepted request ids whose result was an error
    cpu_ms: dict[str, float] | None = None  # CPU ms per image of each part of the pipeline (labkit bench)

    @property
    def img_per_s(self) -> float:
        return self.uploads / self.seconds

    def percentile(self, q: float) -> float:
        """The ``q``-th percentile of the round-trip latencies, in ms."""
        return percentile(self.latencies_ms, q)


def _encoded(images: list[bytes], tasks: tuple[str, ...] | None) -> list[tuple[bytes, str]]:
    """Each image as a finished multipart upload body, with its ``Content-Type`` (its boundary).

    httpx encodes a ``files=`` upload anew for every request; the load generator encodes each image
    once, with httpx, and sends those bytes again and again.
    """
    form = {"tasks": ",".join(tasks)} if tasks else None
    uploads = []
    for i, image in enumerate(images):
        request = httpx.Request("POST", "http://labkit/", files={"file": (f"{i}.jpg", image, "image/jpeg")}, data=form)
        uploads.append((request.read(), request.headers["content-type"]))
    return uploads


async def _client(
    base_url: str,
    uploads: list[tuple[bytes, str]],
    tls: ssl.SSLContext,
    jobs: asyncio.Queue,
    timeout: float,
    out: LoadResult,
    progress,
) -> None:
    loop = asyncio.get_running_loop()
    waiting: dict[str, asyncio.Future] = {}
    unanswered: dict[str, set[str]] = {}  # request id → the tasks whose result has not come yet
    async with (
        websockets.connect(base_url.replace("http", "ws", 1) + "/ws", max_size=2**22) as socket,
        httpx.AsyncClient(base_url=base_url, timeout=timeout, verify=tls) as http,
    ):

        async def read_results() -> None:
            async for raw in socket:
                message = json.loads(raw)
                future = waiting.get(message.get("id"))
                if future is None or future.done() or message.get("type", "result") != "result":
                    continue
                if message.get("status") != "done":
                    future.set_exception(RuntimeError(f"request failed: {message.get('error')}"))
                    continue
                left = unanswered.get(message["id"], set())
                left.discard(message.get("task", "clip"))
                if not left:  # every task the upload went to has answered: that is its round trip
                    future.set_result(loop.time())

        reader = asyncio.create_task(read_results())
        try:
            while not jobs.empty():
                i = jobs.get_nowait()
                started = loop.time()
                while True:
                    body, content_type = uploads[i % len(uploads)]
                    response = await http.post("/api/images", content=body, headers={"content-type": content_type})
                    out.statuses[response.status_code] += 1
                    if response.status_code not in BACK_OFF or "retry-after" not in response.headers:
                        break
                    await asyncio.sleep(float(response.headers["retry-after"]))
                if response.status_code != 202:
                    raise RuntimeError(f"upload {i}: HTTP {response.status_code} {response.text[:200]}")
                accepted = response.json()
                request_id = accepted["id"]
                out.accepted.append(request_id)
                unanswered[request_id] = set(accepted.get("tasks") or [])  # none listed: the first result ends it
                waiting[request_id] = loop.create_future()
                await socket.send(json.dumps({"type": "subscribe", "id": request_id}))
                try:
                    finished = await asyncio.wait_for(waiting[request_id], timeout)
                    out.latencies_ms.append((finished - started) * 1000)
                except asyncio.TimeoutError:
                    out.lost.append(request_id)
                except RuntimeError:
                    out.failed.append(request_id)
                del waiting[request_id], unanswered[request_id]
                if progress:
                    progress.update(1)
        finally:
            reader.cancel()


async def _drive(
    base_url: str,
    images: list[bytes],
    uploads: int,
    clients: int,
    timeout: float,
    progress=None,
    tasks: tuple[str, ...] | None = None,
) -> LoadResult:
    jobs: asyncio.Queue = asyncio.Queue()
    for i in range(uploads):
        jobs.put_nowait(i)
    out = LoadResult(uploads, 0.0, [])
    bodies = _encoded(images, tasks)
    # One TLS context for every client: each httpx.AsyncClient would otherwise load the CA bundle itself
    # (~20 ms of CPU, even for an http:// URL), which at 32 clients is more than 300 small uploads cost.
    tls = ssl.create_default_context()
    started = time.perf_counter()
    await asyncio.gather(
        *(_client(base_url, bodies, tls, jobs, timeout, out, progress) for _ in range(min(clients, uploads)))
    )
    out.seconds = time.perf_counter() - started
    return out


def run_load(
    base_url: str,
    images: list[bytes],
    uploads: int,
    concurrency: int,
    timeout: float = 120,
    progress=None,
    tasks: tuple[str, ...] | None = None,
) -> LoadResult:
    """Send ``uploads`` images, cycling through ``images``, from ``concurrency`` clients; all must succeed.

    ``tasks``: the tasks each upload names (``("ocr",)``); None = every task the pipeline runs.
    An upload's round trip ends when every task its 202 answer lists has sent its result.
    """
    return asyncio.run(_drive(base_url, images, uploads, concurrency, timeout, progress, tasks))


def rss_mb(pid: int, field: str = "VmHWM") -> float:
    """A process's resident memory in MB (Linux ``/proc``): ``VmHWM`` = peak, ``VmRSS`` = now; 0 elsewhere."""
    try:
        match = re.search(rf"{field}:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
        return int(match.group(1)) / 1024 if match else 0.0
    except OSError:
        return 0.0


def load_test(
    settings, images: list[bytes], uploads: int = 1000, clients: int = 50, url: str | None = None, progress=None
) -> dict:
    """``labkit load``: ``uploads`` from ``clients`` against ``url``, or against a stack started here.

    With its own stack (embedded broker, one processor, the web app, each a process) it also
    reports the web app's memory after a warm-up and at the end, to show it stays bounded. That
    stack runs ``settings.task`` alone (CLIP): it loads the web tier, and OCR's own speed is
    ``labkit bench``'s section h. Against ``url``, each upload waits for every task there.
    """
    from .._net import free_port
    from ..kafka.engines import private_broker
    from ..ops.stack import Stack

    if url is not None:
        return _measure(url, None, images, uploads, clients, progress)
    with private_broker(settings) as broker:  # a broker of settings' engine, on ports of its own
        own = {**broker, "web_port": free_port(), "web_host": "127.0.0.1"}
        settings = settings.model_copy(update={**own, "tasks": settings.task})
        stack = Stack(settings, web=True, processors=1, echo=False).start()
        return _measure(f"http://127.0.0.1:{settings.web_port}", stack, images, uploads, clients, progress)


def _measure(url: str, stack, images: list[bytes], uploads: int, clients: int, progress) -> dict:
    """The load run of :func:`load_test`, against ``url``; stops ``stack`` (when given) at the end."""
    try:
        web_pid = next((c.process.pid for c in stack.children if c.name == "web"), None) if stack else None
        run_load(url, images, min(20, uploads), min(4, clients))  # warm-up: connections, caches, first batches
        before = rss_mb(web_pid, "VmRSS") if web_pid else 0.0  # only reported with web_pid
        result = run_load(url, images, uploads, clients, progress=progress)
        report = {
            "uploads": uploads,
            "clients": clients,
            "results": len(result.latencies_ms),
            "lost": len(result.lost),
            "failed": len(result.failed),
            "seconds": round(result.seconds, 1),
            "img_per_s": round(result.img_per_s, 1),
            "http": dict(sorted(result.statuses.items())),
        }
        if result.latencies_ms:
            report |= {f"p{q}_ms": round(result.percentile(q)) for q in (50, 95, 99)}
        if web_pid:
            report |= {
                "web_rss_mb_after_warmup": round(before, 1),
                "web_rss_mb_at_end": round(rss_mb(web_pid, "VmRSS"), 1),
                "web_rss_mb_peak": round(rss_mb(web_pid, "VmHWM"), 1),
            }
        return report
    finally:
        if stack:
            stack.stop()
