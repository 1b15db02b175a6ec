"""The results page in headless Chromium (Debian's, driven by Playwright): live bars and
total, reconnecting by itself after a gateway restart, the FINAL badge, a phone screen."""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from devkit.console.demo import OPTIONS
from tests.gateway.sse import cast, close, gateway_url
from tests.harness import Deployment, wait_until
from voting.v1 import command_service_pb2 as cmd
from voting.v1 import poll_pb2

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
]
PROJECT = Path(__file__).resolve().parents[2]
ARTIFACTS = PROJECT / "test-artifacts" / "gateway"
# Committed and embedded in the README: written when missing, or on purpose with
# VOTING_UPDATE_SCREENSHOTS=1, so a test run does not dirty the work tree.
README_SCREENSHOT = PROJECT / "docs" / "screenshots" / "results-page.png"

pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make system-deps)"
)


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def bars(page: Page) -> dict[str, int]:
    pairs = page.eval_on_selector_all(
        "[data-option-id]", "items => items.map(i => [i.dataset.optionId, i.dataset.votes])"
    )
    return {option: int(votes) for option, votes in pairs}


def settle(page: Page) -> None:
    page.wait_for_timeout(700)  # the bars' width transition


def test_the_page_follows_a_poll_live_until_the_final_badge(
    running: Deployment, browser: Browser
) -> None:
    poll_id = f"page-{uuid.uuid4().hex[:8]}"
    running.commands.CreatePoll(
        cmd.CreatePollRequest(
            request_id=f"create-{poll_id}",
            poll_id=poll_id,
            title="Which log would you run 250k votes/s on?",
            options=[poll_pb2.PollOption(option_id=o, label=label) for o, label in OPTIONS],
        ),
        timeout=30,
    )
    wait_until(
        lambda: running.redis.exists(running.keys.poll(poll_id)), timeout_s=30, what="the poll"
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = browser.new_page(viewport={"width": 860, "height": 620}, device_scale_factor=2)
    event_requests: list[float] = []
    page.on(
        "request",
        lambda r: event_requests.append(time.monotonic()) if r.url.endswith("/events") else None,
    )
    page.goto(gateway_url(running, f"/polls/{poll_id}"))

    expect(page.locator("#title")).to_have_text("Which log would you run 250k votes/s on?")
    expect(page.locator("[data-option-id]")).to_have_count(4)
    expect(page.locator("#total")).to_have_attribute("data-total", "0")
    expect(page.locator("#final-badge")).to_be_hidden()

    first = {"kafka": 340, "pulsar": 220, "redpanda": 280, "kinesis": 160}
    cast(running, poll_id, first)
    expect(page.locator("#total")).to_have_attribute("data-total", "1000", timeout=30_000)
    assert bars(page) == first
    expect(page.locator("#freshness")).to_have_attribute("data-state", "fresh")
    expect(page.locator('[data-option-id="kafka"]')).to_have_class(re.compile(r"\bleader\b"))
    settle(page)
    page.screenshot(path=ARTIFACTS / "results-live.png", full_page=True)

    # The gateway restarts: the page's EventSource reconnects by itself and resumes.
    running.restart("gateway")
    more = {"kafka": 1203, "pulsar": 808, "redpanda": 997, "kinesis": 546}
    cast(running, poll_id, more)
    expect(page.locator("#total")).to_have_attribute("data-total", "4554", timeout=30_000)
    assert bars(page) == {o: first[o] + more[o] for o in first}
    assert len(event_requests) >= 2, "the page reconnected"

    close(running, poll_id)
    expect(page.locator("#final-badge")).to_be_visible(timeout=60_000)
    expect(page.locator("#freshness")).to_have_attribute("data-state", "final")
    expect(page.locator("#recount")).to_contain_text("matched")
    assert page.locator("body").get_attribute("data-connection") == "done"
    assert bars(page) == {"kafka": 1543, "pulsar": 1028, "redpanda": 1277, "kinesis": 706}
    settle(page)
    page.screenshot(path=ARTIFACTS / "results-final.png", full_page=True)
    if not README_SCREENSHOT.exists() or os.environ.get("VOTING_UPDATE_SCREENSHOTS") == "1":
        README_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=README_SCREENSHOT, full_page=True)

    # A FINAL poll does not loop reconnecting (EventSource retries after ~3 s).
    requests_at_final = len(event_requests)
    page.wait_for_timeout(4000)
    assert len(event_requests) == requests_at_final

    # A phone screen: nothing wider than the viewport, every bar still readable.
    page.set_viewport_size({"width": 390, "height": 844})
    settle(page)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    expect(page.locator('[data-option-id="kinesis"] .votes')).to_be_visible()
    page.screenshot(path=ARTIFACTS / "results-phone.png", full_page=True)
    page.close()
