"""The upload page in a real browser (Debian's Chromium driven by Playwright).

A preview at once, then each model's result; several files; a clear error.

A failing test leaves a screenshot in test-artifacts/ (git-ignored) to show what the page showed.
"""

from __future__ import annotations

import os
import re
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = os.environ.get("LABKIT_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def browser():
    if not os.access(CHROMIUM, os.X_OK):
        if os.environ.get("CI"):
            pytest.fail(f"no Chromium at {CHROMIUM} in CI; .ci/run installs Debian's chromium")
        pytest.skip(f"no Chromium at {CHROMIUM}: `apt-get install chromium`, or set LABKIT_CHROMIUM")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # Playwright's own browser download is not used: it drives the system's Chromium.
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"]
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, web, request):
    with _open_page(browser, web.url, request) as page:
        yield page


@contextmanager
def _open_page(browser, url: str, request):
    """A page on ``url`` once its WebSocket is up; a screenshot in ARTIFACTS if the test failed."""
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(url)
    page.wait_for_selector("text=connected")
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    page.close()


def test_photo_is_shown_at_once_then_its_labels_arrive(page, photos):
    page.set_input_files("#file", str(photos[16]))
    card = page.locator(".card").first
    assert card.locator("img").get_attribute("src").startswith("blob:")  # the preview, before any result
    card.locator(".bars li").first.wait_for(timeout=30_000)
    assert card.locator(".bars li").count() == 5
    assert "%" in card.locator(".bars li").first.inner_text()
    clip = card.locator('.task[data-task="clip"]')
    assert clip.get_attribute("data-state") == "done" and clip.locator(".task-status").inner_text().startswith(
        "Done in"
    )
    assert card.locator(".status").inner_text() == "Done"


def test_several_photos_at_once_each_get_their_own_labels(page, photos):
    page.set_input_files("#file", [str(p) for p in photos[40:43]])
    from playwright.sync_api import expect  # locator waits: the page's CSP forbids wait_for_function's eval

    expect(page.locator(".card .bars li")).to_have_count(15, timeout=30_000)
    names = page.locator(".card h2").all_inner_texts()
    assert sorted(names) == sorted(p.name for p in photos[40:43])


def test_a_file_that_is_not_an_image_gets_a_clear_error(page, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    page.set_input_files("#file", str(notes))
    status = page.locator(".card.error .status")
    status.wait_for(timeout=10_000)
    assert "JPEG, PNG, WebP or GIF" in status.inner_text()
    assert page.locator(".card.error img").is_hidden()


def test_custom_labels_field_is_used(page, photos):
    page.fill("#labels", "pizza, teapot, frog")
    page.set_input_files("#file", str(photos[16]))
    from playwright.sync_api import expect

    expect(page.locator(".card .bars li")).to_have_count(3, timeout=30_000)
    labels = {text.split("\n")[0] for text in page.locator(".card .bars li").all_inner_texts()}
    assert labels == {"pizza", "teapot", "frog"}


# --- the complete page: states, history, paste, keyboard, phone, offline, hostile labels ---------------------


def _b64(path) -> str:
    import base64

    return base64.b64encode(path.read_bytes()).decode()


@pytest.fixture
def watched_page(browser, web, request):
    """A page that records every card's data-state changes (an init script: it runs before the page's own)."""
    context = browser.new_context(viewport={"width": 1000, "height": 800})
    context.add_init_script("""
        window.__states = {};
        new MutationObserver((changes) => {
          for (const change of changes) {
            const card = change.target;
            if (change.attributeName !== "data-state" || !card.classList.contains("card")) continue;
            const key = card.querySelector(".name").textContent;
            (window.__states[key] = window.__states[key] || []).push(card.dataset.state);
          }
        }).observe(document, {subtree: true, attributes: true, attributeFilter: ["data-state"]});
    """)
    page = context.new_page()
    requested = []
    page.on("request", lambda r: requested.append(r.url))
    page.requested = requested
    page.goto(web.url)
    page.wait_for_selector("text=connected")
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    context.close()


def test_cards_go_queued_then_processing_then_done_and_nothing_comes_from_elsewhere(watched_page, web, photos):
    from playwright.sync_api import expect

    chosen = photos[50:56]  # six at once: three upload, three wait for a slot
    watched_page.set_input_files("#file", [str(p) for p in chosen])
    expect(watched_page.locator('.card[data-state="done"]')).to_have_count(6, timeout=60_000)
    states = watched_page.evaluate("window.__states")
    for path in chosen:
        seen = [s for i, s in enumerate(states[path.name]) if i == 0 or s != states[path.name][i - 1]]
        assert seen == ["queued", "processing", "done"], (path.name, states[path.name])
    # Works offline: every request went to this app (no CDN, no fonts, no analytics).
    foreign = [u for u in watched_page.requested if not u.startswith((web.url, "blob:", "data:"))]
    assert not foreign, foreign


def test_the_session_history_survives_a_reload(watched_page, photos):
    from playwright.sync_api import expect

    watched_page.set_input_files("#file", str(photos[60]))
    expect(watched_page.locator('.card[data-state="done"] .bars li')).to_have_count(5, timeout=30_000)
    watched_page.reload()
    card = watched_page.locator(".card").first
    expect(card.locator(".bars li")).to_have_count(5, timeout=10_000)  # from sessionStorage, at once
    assert card.locator(".name").inner_text() == photos[60].name
    assert card.locator("img").get_attribute("src").startswith("data:image/jpeg")  # the kept thumbnail


def test_a_pasted_screenshot_is_uploaded(watched_page, photos):
    from playwright.sync_api import expect

    watched_page.evaluate(
        """([data, name]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const clipboard = new DataTransfer();
        clipboard.items.add(new File([bytes], name, {type: "image/jpeg"}));
        document.dispatchEvent(new ClipboardEvent("paste", {clipboardData: clipboard, bubbles: true}));
    }""",
        [_b64(photos[61]), "pasted.jpg"],
    )
    expect(watched_page.locator('.card[data-state="done"] .bars li')).to_have_count(5, timeout=30_000)
    assert watched_page.locator(".card .name").first.inner_text() == "pasted.jpg"


def test_usable_by_keyboard_alone(browser, web, photos):
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1000, "height": 800})
    try:
        # Listening for file choosers before the page loads: Playwright switches their interception on
        # asynchronously, and the navigation's round trips to the browser come after it.
        page.on("filechooser", lambda chooser: None)
        page.goto(web.url)
        page.wait_for_selector("text=connected")
        for _ in range(5):  # Tab until the drop zone has focus
            page.keyboard.press("Tab")
            if page.locator("#drop:focus").count():
                break
        assert page.locator("#drop:focus").count() == 1
        with page.expect_file_chooser(timeout=5_000) as chooser:  # fails if Enter opens no file chooser
            page.keyboard.press("Enter")
        chooser.value.set_files(str(photos[62]))
        expect(page.locator(".card .bars li")).to_have_count(5, timeout=30_000)
    finally:
        page.close()


def test_fits_a_phone_screen(browser, web, photos):
    from playwright.sync_api import expect

    phone = browser.new_page(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True)
    try:
        phone.goto(web.url)
        phone.wait_for_selector("text=connected")
        phone.set_input_files("#file", str(photos[63]))
        expect(phone.locator(".card .bars li")).to_have_count(5, timeout=30_000)
        width = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        assert width[0] <= width[1], f"the page scrolls sideways on a phone: {width}"
        box = phone.locator(".card").first.bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 375
    finally:
        phone.close()


def test_hostile_labels_and_names_are_shown_as_text(page, photos, tmp_path):
    from playwright.sync_api import expect

    hostile = tmp_path / '<img src=x onerror="document.title=1">.jpg'
    hostile.write_bytes(photos[64].read_bytes())
    page.fill("#labels", '<b>bold</b>, <img src=x onerror="document.title=2">, a cat')
    page.set_input_files("#file", str(hostile))
    expect(page.locator(".card .bars li")).to_have_count(3, timeout=30_000)
    labels = {text.split("\n")[0] for text in page.locator(".card .bars li").all_inner_texts()}
    assert labels == {"<b>bold</b>", '<img src=x onerror="document.title=2">', "a cat"}
    assert page.locator(".card .labels img, .card .labels b, .card h2 img").count() == 0
    assert page.locator(".card h2").inner_text() == hostile.name
    assert page.title() == "labkit · CLIP over Kafka"  # no injected script ran


def test_dropped_files_are_uploaded(watched_page, photos):
    from playwright.sync_api import expect

    watched_page.evaluate(
        """([data, name]) => {
        const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
        const dropped = new DataTransfer();
        dropped.items.add(new File([bytes], name, {type: "image/jpeg"}));
        const zone = document.getElementById("drop");
        zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: dropped, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent("drop", {dataTransfer: dropped, bubbles: true, cancelable: true}));
    }""",
        [_b64(photos[65]), "dropped.jpg"],
    )
    expect(watched_page.locator('.card[data-state="done"] .bars li')).to_have_count(5, timeout=30_000)
    assert watched_page.locator(".card .name").first.inner_text() == "dropped.jpg"


def test_a_result_that_arrives_while_the_socket_is_down_still_shows(watched_page, web, start_processor, photos):
    from playwright.sync_api import expect
    from test_resilience import _wait_done

    web.processor.stop()  # nothing is scored until the socket is down: no race with a fast processor
    watched_page.set_input_files("#file", str(photos[66]))
    card = watched_page.locator('.card[data-state="processing"]')
    expect(card).to_have_count(1, timeout=30_000)  # Kafka has it (202)
    request_id = card.get_attribute("data-request-id")
    # The network goes away (offline blocks new connections; the open socket is closed as a
    # dropped connection would be), then the result is produced, unheard.
    watched_page.context.set_offline(True)
    # Once close() is called the socket is CLOSING, and a browser drops every message that arrives
    # on a socket that is not OPEN (WebSocket spec, "a message has been received"): from here on the
    # page cannot hear the result. (Its close *event* needs the closing handshake, which cannot
    # finish while offline, so it may come much later: not something to wait for.)
    state = watched_page.evaluate("() => { socket.close(); return socket.readyState; }")
    assert state in (2, 3), f"socket.readyState {state} after close(): expected CLOSING (2) or CLOSED (3)"
    start_processor()
    assert _wait_done(web.url, request_id)["status"] == "done"  # the server has it; the page cannot hear it
    assert watched_page.locator('.card[data-state="done"]').count() == 0
    watched_page.context.set_offline(False)
    # Back online: the socket reconnects and re-subscribes (or the REST fallback asks): the labels show.
    expect(watched_page.locator('.card[data-state="done"] .bars li')).to_have_count(5, timeout=30_000)
    expect(watched_page.locator("#connection")).to_have_text(re.compile("^connected"), timeout=15_000)


def test_behind_the_scenes_shows_where_the_request_sat_and_the_strip_shows_the_pipeline(page, web, settings, photos):
    from playwright.sync_api import expect

    with page.expect_response("**/api/images") as answer:
        page.set_input_files("#file", str(photos[17]))
    accepted = answer.value.json()
    card = page.locator(".card").first
    expect(card.locator(".bars li")).to_have_count(5, timeout=30_000)
    behind = card.locator(".behind")
    assert behind.get_attribute("open") is None  # closed until asked for
    card.locator(".behind summary").focus()
    page.keyboard.press("Enter")  # a <details>: the keyboard opens it
    expect(behind).to_have_attribute("open", "")
    assert behind.locator(".partition").inner_text() == str(accepted["partition"])  # where the 202 said it went
    assert behind.locator(".offset").inner_text() == str(accepted["offset"])
    assert behind.locator(".processor").inner_text() == web.processor.name
    assert behind.locator(".batch-size").inner_text().startswith("1 ")
    rows = behind.locator(".waterfall li")
    expect(rows).to_have_count(6)
    segments = [rows.nth(i).get_attribute("data-segment") for i in range(6)]
    assert segments == ["upload", "queued", "batch_wait", "decode", "inference", "delivery"]
    ms = {s: float(rows.nth(i).get_attribute("data-ms")) for i, s in enumerate(segments)}
    assert all(v >= 0 for v in ms.values()) and ms["upload"] > 0 and ms["inference"] > 0, ms
    left = 0.0
    for i in range(6):  # a waterfall: each bar starts where the one before it ended, inside its track
        track, bar = rows.nth(i).locator(".track").bounding_box(), rows.nth(i).locator(".track span").bounding_box()
        assert bar["width"] >= 0 and bar["x"] >= track["x"] + left - 1.5, (segments[i], bar, track, left)
        assert bar["x"] + bar["width"] <= track["x"] + track["width"] + 1.5
        left = bar["x"] - track["x"] + (bar["width"] if ms[segments[i]] else 0)
    assert "approximate" in behind.locator(".note").inner_text()

    strip = page.locator("#pipeline")
    ends = " / ".join("1" if p == accepted["partition"] else "0" for p in range(settings.partitions))
    requests = strip.locator(f'[data-topic="{settings.requests_topic}"]')
    expect(requests.locator(".ends")).to_have_text(f" · end offsets {ends}", timeout=15_000)
    assert requests.locator(".partitions").inner_text() == f"{settings.partitions} partitions"
    expect(strip.locator(".lag")).to_have_attribute("data-records", "0", timeout=15_000)  # once processed
    assert settings.group_id in strip.locator(".group").inner_text()

    # Kafka not answering: the strip keeps its numbers, greyed, says so, and recovers by itself.
    page.route("**/api/pipeline", lambda route: route.fulfill(status=503, json={"detail": "Kafka did not say"}))
    expect(strip).to_have_class(re.compile(r"\bstale\b"), timeout=10_000)
    expect(strip.locator(".age")).to_contain_text("not answering")
    page.unroute("**/api/pipeline")
    expect(strip).not_to_have_class(re.compile(r"\bstale\b"), timeout=10_000)


# --- several models: checkboxes, each task's own state and result -------------------------------------------------


@pytest.fixture
def both_tasks(browser, settings, start_processor, request):
    """A page on a web app whose pipeline runs CLIP and OCR: CLIP scores for real, OCR's results are made by hand."""
    from conftest import WebServer

    both = settings.model_copy(update={"tasks": "clip,ocr"})
    start_processor()
    with WebServer(both) as web, _open_page(browser, web.url, request) as page:
        page.on("filechooser", lambda chooser: None)  # see test_usable_by_keyboard_alone
        page.settings = both
        yield page


def test_each_model_shows_its_own_state_and_result_and_a_failed_one_holds_back_no_other(both_tasks, photos):
    from playwright.sync_api import expect
    from test_web import _ocr_result, _produce_result

    from labkit.records.wire import ScoreResult

    page = both_tasks
    expect(page.locator('#tasks input[name="task"]:checked')).to_have_count(2)  # every model, at first
    page.set_input_files("#file", [str(photos[20]), str(photos[21])])
    for card in (page.locator(".card").nth(0), page.locator(".card").nth(1)):  # CLIP's labels come, OCR still waits
        expect(card.locator('.task[data-task="clip"] .bars li')).to_have_count(5, timeout=30_000)
        expect(card.locator('.task[data-task="ocr"]')).to_have_attribute("data-state", "processing")
        expect(card).to_have_attribute("data-state", "processing")
    reads, fails = page.locator(".card").nth(1), page.locator(".card").nth(0)  # the newest card comes first
    _produce_result(page.settings, _ocr_result(reads.get_attribute("data-request-id")))
    error = ScoreResult(
        request_id=fails.get_attribute("data-request-id"), status="error", task="ocr", error="could not read it"
    )
    _produce_result(page.settings, error)

    ocr = reads.locator('.task[data-task="ocr"]')
    expect(ocr).to_have_attribute("data-state", "done", timeout=15_000)
    assert ocr.locator(".lines .words").all_inner_texts() == ["KAFKA STREAMS 2026", "Photo of a cat: 89.5%"]
    assert (
        ocr.locator(".task-status").inner_text().startswith("Done in") and reads.get_attribute("data-state") == "done"
    )
    expect(fails.locator('.task[data-task="ocr"]')).to_have_attribute("data-state", "failed", timeout=15_000)
    assert "could not read it" in fails.locator('.task[data-task="ocr"] .task-status').inner_text()
    assert fails.locator('.task[data-task="clip"]').get_attribute("data-state") == "done"
    assert (
        fails.get_attribute("data-state") == "done"
        and fails.locator(".status").inner_text() == "Done, except Text (OCR)"
    )
    # Behind the scenes: one block per task, each with its own processor.
    behind = reads.locator(".behind-task")
    expect(behind).to_have_count(2)
    assert reads.locator('.behind-task[data-task="ocr"] .processor').text_content() == "ocr-by-hand"  # (closed)
    assert reads.locator('.behind-task[data-task="clip"] .waterfall li').count() == 6
    reads_id = reads.get_attribute(
        "data-request-id"
    )  # before the reload: `reads` is "the second card", whichever it is then
    page.reload()  # the session's history keeps each task's result
    again = page.locator(f'.card[data-request-id="{reads_id}"]')
    expect(again.locator('.task[data-task="ocr"] .lines .words')).to_have_count(2, timeout=10_000)
    assert again.get_attribute("data-state") == "done"


def test_models_are_chosen_by_keyboard_and_an_upload_waits_for_those_alone(both_tasks, photos):
    from playwright.sync_api import expect

    page = both_tasks
    ocr = page.locator('#tasks input[value="ocr"]')
    expect(ocr).to_be_checked()
    for _ in range(6):  # Tab to the OCR checkbox
        page.keyboard.press("Tab")
        if page.locator('#tasks input[value="ocr"]:focus').count():
            break
    page.keyboard.press("Space")
    expect(ocr).not_to_be_checked()
    with page.expect_response("**/api/images") as answer:
        page.set_input_files("#file", str(photos[22]))
    assert answer.value.json()["tasks"] == ["clip"]
    card = page.locator(".card").first
    expect(card).to_have_attribute("data-state", "done", timeout=30_000)  # OCR was not asked: nothing to wait for
    assert [s.get_attribute("data-task") for s in card.locator(".task").all()] == ["clip"]
    page.locator('#tasks input[value="clip"]').uncheck()
    page.set_input_files("#file", str(photos[23]))
    refused = page.locator(".card").first
    expect(refused).to_have_attribute("data-state", "failed")
    assert "choose at least one model" in refused.locator(".status").inner_text()


# --- the history the sink keeps: search and "find similar" ---------------------------------------------------


@pytest.fixture
def history_page(browser, embedded_history, start_processor, request):
    """A page whose web app reads a fresh history, kept by a sink running on a thread."""
    from conftest import WebServer, sink_on_a_thread

    start_processor()
    with sink_on_a_thread(embedded_history), WebServer(embedded_history) as web:
        with _open_page(browser, web.url, request) as page:
            yield page


def test_the_history_lists_uploads_with_thumbnails_and_search_and_find_similar_work_by_keyboard(history_page, photos):
    from playwright.sync_api import expect

    page = history_page
    page.set_input_files("#file", [str(photos[60]), str(photos[61])])
    expect(page.locator('.card[data-state="done"]')).to_have_count(2, timeout=30_000)
    hits = page.locator("#history-list .hit")
    expect(hits).to_have_count(2, timeout=20_000)  # refreshed every 5 s: the sink wrote both
    expect(hits.locator("img")).to_have_count(2)
    hits.last.scroll_into_view_if_needed()  # thumbnails load lazily, as they come into view
    for n in range(2):
        expect(hits.nth(n).locator("img")).to_have_js_property("complete", True, timeout=10_000)
    widths = hits.locator("img").evaluate_all("images => images.map(i => i.naturalWidth)")
    assert all(0 < width <= 160 for width in widths), widths  # real thumbnails, from the history
    assert sorted(hits.locator(".hit-label").all_inner_texts()) == [photos[60].name, photos[61].name]
    clip = hits.locator('.hit-task[data-task="clip"]')  # each with CLIP's result, as the task sums it up
    expect(clip).to_have_count(2, timeout=20_000)
    assert all(re.match(r"CLIP labels: \S.* \d+%", line) for line in clip.all_inner_texts()), clip.all_inner_texts()

    page.locator("#query").focus()  # keyboard only from here: type, Enter, Tab to "Find similar", Enter
    page.keyboard.type("a photo of a mushroom")
    page.keyboard.press("Enter")
    status = page.locator("#found-status")
    expect(status).to_contain_text("look like", timeout=120_000)  # the first search loads the text tower
    expect(status).to_contain_text("random")  # the test model says its scores mean nothing
    page.locator("#history-list .similar").first.focus()
    page.keyboard.press("Enter")
    expect(status).to_have_text(re.compile(r"^1 photo like "), timeout=20_000)  # the one other photo, itself left out
    expect(page.locator("#found .hit")).to_have_count(1)
    assert "score" in page.locator("#found .hit-score").first.inner_text()

    page.set_viewport_size({"width": 375, "height": 740})  # a phone: the history and search fit its width
    assert page.evaluate("document.documentElement.scrollWidth") <= 375


def test_the_learners_room_shows_the_notebooks_no_answers_and_no_news_prompt(browser, tmp_path, request):
    """JupyterLab as `labkit lab` starts it, in Chromium: the lessons listed, no answers in view, no news prompt."""
    import secrets
    import subprocess

    import httpx
    from playwright.sync_api import expect

    from labkit import free_port, load_settings
    from labkit.ops.jupyter import FIRST_LESSON, jupyter_command, jupyter_env, write_config

    notebooks = Path(__file__).resolve().parents[1] / "notebooks"
    settings = load_settings(jupyter_port=free_port(), web_host="127.0.0.1")
    token = secrets.token_hex(16)
    command = [*jupyter_command(settings, notebooks), f"--IdentityProvider.token={token}", "--no-browser"]
    env = {**os.environ, **jupyter_env(write_config(tmp_path / "config")), "JUPYTER_RUNTIME_DIR": str(tmp_path)}
    jupyter = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{settings.jupyter_port}"
    try:
        _wait_until_serving(f"{base}/api", jupyter)
        listed = httpx.get(f"{base}/api/contents?token={token}").json()["content"]
        names = {item["name"] for item in listed}
        assert FIRST_LESSON in names and not names & {"solutions", "lessons", "build.py"}, names
        assert (notebooks / "solutions").is_dir()  # still on disk, for whoever goes looking

        with _open_jupyterlab(browser, f"{base}/lab?token={token}", request) as page:
            items = page.locator(".jp-DirListing-item .jp-DirListing-itemText")
            expect(items.filter(has_text=FIRST_LESSON)).to_have_count(1, timeout=60_000)
            shown = set(items.all_inner_texts())
            assert not shown & {"solutions", "lessons", "build.py"}, shown
            assert ANNOUNCEMENTS_DISABLED.search(page.content())  # labkit's page config reached the page
            page.wait_for_timeout(2000)  # when enabled, the news prompt shows within a second of the app's start
            assert page.get_by_text("official Jupyter news").count() == 0
    finally:
        jupyter.terminate()
        jupyter.wait(20)


#: The page config JupyterLab embeds: labkit's disables the announcements (news and updates) plugin.
ANNOUNCEMENTS_DISABLED = re.compile(r'"disabledExtensions": \[[^\]]*"@jupyterlab/apputils-extension:announcements"')


@contextmanager
def _open_jupyterlab(browser, url: str, request):
    """A page on JupyterLab at ``url``; a screenshot in ARTIFACTS if what runs in the block fails."""
    page = browser.new_page(viewport={"width": 1200, "height": 800})
    try:
        page.goto(url)
        yield page
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
        raise
    finally:
        page.close()


def _wait_until_serving(url: str, process) -> None:
    import time

    import httpx

    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None, f"JupyterLab exited with {process.returncode}"
        assert time.monotonic() < deadline, "JupyterLab did not answer within 120 s"
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
