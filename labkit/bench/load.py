"""A load generator for the running pipeline: upload over HTTP, wait for each result on the WebSocket, time the round trip.

``concurrency`` uploads are in flight at once: 1 measures latency at light load, a large
number saturates the pipeline and measures throughput. Every upload must come back: a lost
or failed result makes the run fail rather than quietly improve the numbers.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

import httpx
import websockets


@dataclass
class LoadResult:
    uploads: int
    seconds: float
    latencies_ms: list[float]

    @property
    def img_per_s(self) -> float:
        return self.uploads / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


async def _drive(base_url: str, images: list[bytes], uploads: int, concurrency: int, timeout: float,
                 progress=None) -> LoadResult:
    done: dict[str, asyncio.Future] = {}
    loop = asyncio.get_running_loop()
    ws_url = base_url.replace("http", "ws", 1) + "/ws"
    async with websockets.connect(ws_url, max_size=2**22) as socket, \
            httpx.AsyncClient(base_url=base_url, timeout=timeout) as client:

        async def read_results() -> None:
            async for raw in socket:
                message = json.loads(raw)
                future = done.get(message.get("id"))
                if future is not None and not future.done():
                    if message.get("status") == "done":
                        future.set_result(loop.time())
                    else:
                        future.set_exception(RuntimeError(f"request failed: {message.get('error')}"))

        reader = asyncio.create_task(read_results())
        gate = asyncio.Semaphore(concurrency)
        latencies: list[float] = []

        async def one(i: int) -> None:
            async with gate:
                started = loop.time()
                response = await client.post("/api/images", files={"file": (f"{i}.jpg", images[i % len(images)],
                                                                            "image/jpeg")})
                if response.status_code != 202:
                    raise RuntimeError(f"upload {i}: HTTP {response.status_code} {response.text[:200]}")
                request_id = response.json()["id"]
                done[request_id] = loop.create_future()
                await socket.send(json.dumps({"type": "subscribe", "id": request_id}))
                finished = await asyncio.wait_for(done[request_id], timeout)
                latencies.append((finished - started) * 1000)
                if progress:
                    progress.update(1)

        started = time.perf_counter()
        try:
            await asyncio.gather(*(one(i) for i in range(uploads)))
        finally:
            reader.cancel()
        return LoadResult(uploads, time.perf_counter() - started, latencies)


def run_load(base_url: str, images: list[bytes], uploads: int, concurrency: int, timeout: float = 120,
             progress=None) -> LoadResult:
    """Send ``uploads`` images (cycling through ``images``) with ``concurrency`` in flight; all must succeed."""
    return asyncio.run(_drive(base_url, images, uploads, concurrency, timeout, progress))
