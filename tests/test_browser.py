"""The upload page in a real browser (Debian's Chromium driven by Playwright): preview at once, then labels; several files; a clear error.

A failing test leaves a screenshot in test-artifacts/ (git-ignored) to show what the page showed.
"""

from __future__ import annotations

import os
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
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, web, request):
    page = browser.new_page(viewport={"width": 1000, "height": 800})
    page.goto(web.url)
    page.wait_for_selector("text=connected")  # the WebSocket is up
    yield page
    if getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / f"{request.node.name}.png", full_page=True)
    page.close()


def test_photo_is_shown_at_once_then_its_labels_arrive(page, photos):
    page.set_input_files("#file", str(photos[16]))
    card = page.locator(".card").first
    assert card.locator("img").get_attribute("src").startswith("blob:")  # the preview, before any result
    card.locator(".labels li").first.wait_for(timeout=30_000)
    assert card.locator(".labels li").count() == 5
    assert "%" in card.locator(".labels li").first.inner_text()
    assert card.locator(".status").inner_text().startswith("Done in")


def test_several_photos_at_once_each_get_their_own_labels(page, photos):
    page.set_input_files("#file", [str(p) for p in photos[40:43]])
    from playwright.sync_api import expect  # locator waits: the page's CSP forbids wait_for_function's eval

    expect(page.locator(".card .labels li")).to_have_count(15, timeout=30_000)
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

    expect(page.locator(".card .labels li")).to_have_count(3, timeout=30_000)
    labels = {text.split("\n")[0] for text in page.locator(".card .labels li").all_inner_texts()}
    assert labels == {"pizza", "teapot", "frog"}
