"""Check for notebook 10 (the web API by hand): results pushed on the WebSocket, each the one the web app holds for its upload."""

from __future__ import annotations

from typing import Any

import httpx

from ..config import Settings
from ._feedback import require, solved


def check_results_as_they_arrive(settings: Settings, arrived: Any, expected: int = 3) -> None:
    """``arrived``: the socket's result messages, in arrival order, one per uploaded photo."""
    require(
        isinstance(arrived, list) and len(arrived) == expected,
        f"`arrived` should hold {expected} result messages, one per photo; it holds "
        f"{len(arrived) if isinstance(arrived, list) else type(arrived).__name__}. Upload each photo "
        '(POST /api/images), send {"type": "subscribe", "id": ...} for each on one socket, then keep '
        "every message the socket pushes until you have one per photo.",
    )
    require(
        all(isinstance(m, dict) for m in arrived),
        "Keep each message as a dict: json.loads(await socket.recv()).",
    )
    require(
        all(m.get("type") == "result" for m in arrived),
        'These are not messages pushed on the socket (those have "type": "result"); polling GET '
        "/api/images/{id} is the other way, compared above. Read them with await socket.recv().",
    )
    ids = [m.get("id") for m in arrived]
    require(len(set(ids)) == expected, f"The same upload came more than once ({ids}): upload each photo once.")
    base = f"http://127.0.0.1:{settings.web_port}"
    for message in arrived:
        held = httpx.get(f"{base}/api/images/{message['id']}", timeout=10)
        require(held.status_code == 200, f"The web app knows no upload {message['id']!r} ({held.status_code}).")
        require(
            held.json().get("labels") == message.get("labels") and message.get("status") == "done",
            f"The message for {message['id']} does not match what the web app holds for it: keep the messages "
            "exactly as received.",
        )
    solved(f"{expected} results pushed as they were scored, each matching the web app's own record of it.")
