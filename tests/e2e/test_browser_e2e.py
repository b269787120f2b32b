"""End to end in Debian's chromium: upload a sample log, see the verdict and the chart, share the link,
open it in a fresh browser context, and get a clear message for a binary file and a bad link."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser_helpers import upload, wait_idle
from playwright.sync_api import Browser, Page, expect

from diagnostics import diagnose
from parsers import ParseError, load
from present import panels
from present.examples import Example, list_examples

TIMEOUT = 60_000
REAL_LOGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "real_logs"


def candidate_runs() -> list[Example]:
    """The sample runs; then, where the team's real logs are at hand, their smallest Caffe logs."""
    real = sorted((REAL_LOGS / "caffe").glob("*.log"), key=lambda p: p.stat().st_size)[:4]
    return list_examples() + [Example(p.name, "", p) for p in real]


def pick_sample() -> tuple[Example, str]:
    """A sample run with a non-healthy verdict (single-file and Caffe first), and that verdict's
    sentence as the library computes it: the page must show exactly this."""
    candidates = []
    for example in candidate_runs():
        try:
            diagnosis = diagnose(load(example.files()))
        except ParseError:
            continue
        sentence = panels.verdict(diagnosis, "en").sentence
        rank = (diagnosis.healthy, example.path.is_dir(), diagnosis.framework != "caffe", example.name)
        candidates.append((rank, example, sentence))
    if not candidates:
        pytest.skip("no parseable sample run in sample_logs/ yet")
    _, example, sentence = min(candidates, key=lambda c: c[0])
    return example, sentence


def chart_traces(page: Page) -> int:
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    return page.evaluate("() => document.querySelector('.js-plotly-plot').data.length")


def test_upload_verdict_chart_share_and_reopen(browser: Browser, app_url: str, artifacts: Path):
    example, sentence = pick_sample()
    page = browser.new_page(viewport={"width": 1500, "height": 2000})
    page.goto(app_url)
    wait_idle(page)
    upload(page, example.files())
    verdict = page.locator(".st-key-verdict-0")
    expect(verdict).to_contain_text(sentence, timeout=TIMEOUT)
    assert chart_traces(page) >= 1
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-upload.png", full_page=True)

    page.get_by_role("button", name="Share").click()
    expect(page).to_have_url(re.compile(r"\?d=[A-Za-z0-9_-]{32}$"), timeout=TIMEOUT)
    link = page.locator(".st-key-share-link code").inner_text().strip()
    assert link == page.url
    page.screenshot(path=artifacts / "e2e-shared.png", full_page=True)

    fresh = browser.new_context(viewport={"width": 1500, "height": 2000})
    other = fresh.new_page()
    other.goto(link)
    expect(other.locator(".st-key-verdict-0")).to_contain_text(sentence, timeout=TIMEOUT)
    assert chart_traces(other) == chart_traces(page)
    wait_idle(other)
    other.screenshot(path=artifacts / "e2e-share-link.png", full_page=True)

    with other.expect_download() as download:
        other.get_by_role("button", name="Report (HTML, offline)").click()
    report = artifacts / "e2e-report.html"
    download.value.save_as(report)
    offline = fresh.new_page()
    offline.route("http*://**", lambda route: route.abort())  # it must open with no network at all
    offline.goto(report.as_uri())
    expect(offline.locator(".verdict")).to_contain_text(sentence)
    assert chart_traces(offline) == chart_traces(page)
    offline.screenshot(path=artifacts / "e2e-report.png", full_page=True)
    fresh.close()
    page.close()


def test_binary_upload_shows_a_clear_error(browser: Browser, app_url: str, artifacts: Path):
    page = browser.new_page(viewport={"width": 1500, "height": 900})
    page.goto(app_url)
    wait_idle(page)
    upload(page, [("weights.bin", bytes(range(256)) * 64)])
    expect(page.get_by_text("could not be read as a training log")).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("[data-testid='stCode']").first).to_contain_text("weights.bin")
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.screenshot(path=artifacts / "e2e-binary.png", full_page=True)
    page.close()


def test_bad_share_link_gets_a_message(browser: Browser, app_url: str):
    page = browser.new_page()
    for bad, words in (("not-an-id", "malformed"), ("A" * 32, "No shared diagnosis")):
        page.goto(f"{app_url}/?d={bad}")
        wait_idle(page)
        expect(page.get_by_text(words)).to_be_visible(timeout=TIMEOUT)
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.close()
