"""Check for notebook 15 (the web API by hand): results pushed on the WebSocket.

One per photo per task, each the one the web app holds.
"""

from __future__ import annotations

from typing import Any

import httpx

from ..config import Settings
from ._feedback import require, solved


def check_results_as_they_arrive(settings: Settings, arrived: Any, expected: int = 3) -> None:
    """``arrived``: the socket's result messages in arrival order, one per photo per task that answers it."""
    require(
        isinstance(arrived, list) and len(arrived) >= expected,
        f"`arrived` should hold the result messages of {expected} photos, one per photo per task; it holds "
        f"{len(arrived) if isinstance(arrived, list) else type(arrived).__name__}. Upload each photo "
        '(POST /api/images), send {"type": "subscribe", "request_id": ...} for each on one socket, then keep '
        'every message the socket pushes until each photo has one from every task its 202 listed ("tasks").',
    )
    require(
        all(isinstance(m, dict) for m in arrived),
        "Keep each message as a dict: json.loads(await socket.recv()).",
    )
    require(
        all(m.get("type") == "result" for m in arrived),
        'These are not messages pushed on the socket (those have "type": "result"); polling GET '
        "/api/images/{request_id} is the other way, compared above. Read them with await socket.recv().",
    )
    pairs = [(m.get("request_id"), m.get("task", "clip")) for m in arrived]
    again = next((pair for i, pair in enumerate(pairs) if pair in pairs[:i]), None)
    require(
        again is None,
        f"The {again and again[1]} result of {again and again[0]} came more than once: upload each photo once, "
        "and keep one message per photo per task (results are delivered at least once).",
    )
    late = _out_of_arrival_order(arrived)
    if late is not None:
        earlier, later, seconds = late
        require(
            False,
            f"These are not in the order they arrived: the {later.get('task')} result of "
            f"{str(later.get('request_id'))[:8]} was produced {seconds:.1f} s before the {earlier.get('task')} result "
            f"of {str(earlier.get('request_id'))[:8]}, yet comes after it. Append each message as the socket delivers "
            "it, and do not sort the list.",
        )
    ids = list(dict.fromkeys(request_id for request_id, _ in pairs))
    require(
        len(ids) == expected,
        f"These are the results of {len(ids)} uploads; upload {expected} photos and keep every photo's results.",
    )
    base = f"http://127.0.0.1:{settings.web_port}"
    for request_id in ids:
        held = httpx.get(f"{base}/api/images/{request_id}", timeout=10)
        require(held.status_code == 200, f"The web app knows no upload {request_id!r} ({held.status_code}).")
        tasks = held.json().get("tasks", {})
        got = sorted(task for i, task in pairs if i == request_id)
        require(
            got == sorted(tasks),
            f"For {request_id[:8]} you kept {', '.join(got)}, but {', '.join(sorted(tasks))} answer it: keep "
            "receiving until every photo has one message from each task its 202 listed.",
        )
        for message in (m for m in arrived if m.get("request_id") == request_id):
            mine = tasks[message.get("task", "clip")]
            require(
                message.get("status") == mine.get("status") != "processing"
                and message.get("answer") == mine.get("answer"),
                f"The {message.get('task')} message for {request_id} does not match what the web app holds for it: "
                "keep the messages exactly as received.",
            )
    solved(
        f"{len(arrived)} results for {expected} photos, one per photo per task, pushed as each model finished, "
        "each matching the web app's own record of it."
    )


#: How far apart two results' ``produced_at_ms`` may be and still arrive either way round: the web app
#: reads each partition of image-results on its own, so results of other partitions may overtake a little.
ARRIVAL_SLACK_MS = 1000


def _out_of_arrival_order(arrived: list[dict]) -> tuple[dict, dict, float] | None:
    """The first (message, message after it, seconds) where the second was produced well before the first."""
    latest: dict | None = None
    for message in arrived:
        produced = message.get("produced_at_ms")
        if not isinstance(produced, int):
            continue
        if latest is not None and produced < latest["produced_at_ms"] - ARRIVAL_SLACK_MS:
            return latest, message, (latest["produced_at_ms"] - produced) / 1000
        if latest is None or produced > latest["produced_at_ms"]:
            latest = message
    return None
