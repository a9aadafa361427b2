"""A third task is one module plus one registry line.

Dominant colours through Kafka, the API, the WebSocket, the page and the history.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from colours_task import ColoursAnswer, ColoursTask
from test_browser import _open_page, browser  # noqa: F401  (browser: the module's Chromium fixture)
from websockets.sync.client import connect

import labkit
from conftest import WebServer
from labkit.history.database import open_database
from labkit.history.sink import Sink
from labkit.tasks import TASKS
from labkit.tasks import check_tasks as check_enabled_tasks


def test_labkit_tasks_naming_an_unknown_task_is_an_error_at_start_up(settings):
    unknown = settings.model_copy(update={"tasks": "clip,colours"})
    with pytest.raises(labkit.LabkitError, match="no task 'colours'.*one of clip, ocr"):
        check_enabled_tasks(unknown)
    with pytest.raises(labkit.LabkitError, match="no task 'colours'"):
        labkit.Stack(unknown)
    with pytest.raises(labkit.LabkitError, match="no task 'colours'"):
        WebServer(unknown)


def test_a_third_task_goes_through_kafka_the_web_api_the_page_and_the_history(
    settings,
    embedded_history,
    start_processor,
    browser,  # noqa: F811
    photos,
    request,
    monkeypatch,
):
    monkeypatch.setitem(TASKS, ColoursTask.name, ColoursTask)  # the one registry line
    colours = embedded_history.model_copy(update={"tasks": "colours"})
    start_processor(task="colours")  # its own consumer group, <group_prefix>-colours, on image-requests

    with WebServer(colours) as web, _open_page(browser, web.url, request) as page:
        from playwright.sync_api import expect

        # The page asks over HTTP too when a result is late (app.js's pollFallback, after 5 s): close that
        # way for this page, so the only way its result can reach it is the WebSocket.
        asked: list[str] = []
        page.route("**/api/images/*", lambda route: asked.append(route.request.url) or route.abort())
        page.set_input_files("#file", str(photos[5]))
        card = page.locator(".card").first
        section = card.locator('.task[data-task="colours"]')
        expect(section).to_have_attribute("data-state", "done", timeout=30_000)  # pushed over the WebSocket
        expect(section.locator(".task-name")).to_have_text("Dominant colours")
        request_id = card.get_attribute("data-request-id")
        assert all(url.endswith(f"/api/images/{request_id}") for url in asked), asked  # only the refused polls

        held = httpx.get(f"{web.url}/api/images/{request_id}").json()  # the REST API holds the same result
        result = held["tasks"]["colours"]
        with connect(f"ws://127.0.0.1:{web.port}/ws") as socket:  # any client, as the README's example does
            socket.send(json.dumps({"type": "subscribe", "request_id": request_id}))
            pushed = json.loads(socket.recv(timeout=10))  # a result that exists already comes at once
        assert (pushed["type"], pushed["task"], pushed["answer"]) == ("result", "colours", result["answer"]), pushed
        answer = ColoursAnswer.model_validate(result["answer"])
        assert result["status"] == "done" and held["status"] == "done" and result["model"].startswith("PIL")
        assert 1 <= len(answer.colours) <= 4 and sum(c.share for c in answer.colours) == pytest.approx(1, abs=1e-3)
        assert "labels" not in result["answer"] and result["labels"] == [] and result["text"] is None
        shown_rows = result["shown"]["rows"]
        assert [row["swatch"] for row in shown_rows] == [colour.hex for colour in answer.colours]
        swatches = section.locator(".answer li .swatch")
        expect(swatches).to_have_count(len(answer.colours))
        assert section.locator(".answer li .words").all_inner_texts() == [c.hex for c in answer.colours]

        sink = Sink(colours, open_database(colours))  # the history's own consumer group reads it from Kafka
        try:
            sink.drain()
        finally:
            sink.close()
        listed = httpx.get(f"{web.url}/api/history").json()["images"]  # what the web app makes of the history
        kept = next(hit for hit in listed if hit["request_id"] == request_id)
        assert kept["filename"] == Path(photos[5]).name and list(kept["tasks"]) == ["colours"]
        assert kept["tasks"]["colours"] == {
            "status": "done",
            "title": "Dominant colours",
            "summary": ColoursTask.summarize(answer),  # the task's own one line, e.g. "#6b5a3c 41%, …"
            "shown": result["shown"],  # the rows the card drew, swatches and all
            "error": None,
        }
        page.reload()  # the history list draws it at once (it refreshes every 5 s otherwise)
        line = page.locator(f'#history-list .hit[data-request-id="{request_id}"] .hit-task[data-task="colours"]')
        expect(line).to_contain_text(f"Dominant colours: {ColoursTask.summarize(answer)}")
        expect(line.locator(".swatch")).to_have_count(len(answer.colours))


def test_the_new_task_is_named_nowhere_in_labkit():
    """Nothing in the pipeline's code names the new task: everything it did above came from its own module."""
    pipeline = Path(labkit.__file__).parent
    naming = [
        path
        for path in pipeline.rglob("*")
        if path.suffix in {".py", ".js", ".html", ".css"} and "exercises" not in path.parts
        if "colours" in path.read_text(encoding="utf-8").lower() or "ColoursTask" in path.read_text(encoding="utf-8")
    ]
    assert naming == []
