"""In Debian's chromium: a zip of tracker runs (an MLflow file store and a W&B panel export, from
tests/fixtures/trackers) uploaded in the page becomes one run each, shown in the compare view with the
verdict the library gives each run."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from browser_helpers import REPO, upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics import diagnose
from parsers.runs import load_run, split_runs
from present import panels

TIMEOUT = 60_000
FIXTURES = REPO / "tests" / "fixtures" / "trackers"


def tracker_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for path in sorted((FIXTURES / "mlruns").rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(FIXTURES).as_posix())
        archive.write(FIXTURES / "wandb_export.csv", "wandb_export.csv")
    return buffer.getvalue()


def test_zip_of_tracker_runs_opens_the_compare_view(browser: Browser, app_url: str, artifacts: Path):
    data = tracker_zip()
    runs = split_runs([("runs.zip", data)])
    titles = [panels.verdict(diagnose(load_run(files)), "en").title for _, files in runs]
    assert len(runs) == 4 and "Healthy" in titles and len(set(titles)) == 2
    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    page.goto(app_url)
    wait_idle(page)
    upload(page, [("runs.zip", data)])
    expect(page.get_by_text("This upload holds 4 runs")).to_be_visible(timeout=TIMEOUT)
    tabs = page.get_by_role("tab")
    expect(tabs).to_have_count(4, timeout=TIMEOUT)
    for index, title in enumerate(titles):
        expect(tabs.nth(index)).to_have_text(f"Run {index + 1} · {title}")
    expect(page.get_by_text("Hyper-parameters that differ")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_be_visible(timeout=TIMEOUT)
    tabs.nth(1).click()
    expect(page.get_by_test_id("stTabs").get_by_text(runs[1][0], exact=True)).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-fleet-zip.png", full_page=True)

    page.get_by_role("button", name="Share").click()  # the four runs are shared, and open elsewhere
    expect(page).to_have_url(re.compile(r"\?d=[A-Za-z0-9_-]{32}$"), timeout=TIMEOUT)
    fresh = browser.new_context(viewport={"width": 1500, "height": 1800})
    other = fresh.new_page()
    other.goto(page.url)
    shared_tabs = other.get_by_role("tab")
    expect(shared_tabs).to_have_count(4, timeout=TIMEOUT)
    for index, title in enumerate(titles):
        expect(shared_tabs.nth(index)).to_have_text(f"Run {index + 1} · {title}")
    fresh.close()
    page.close()
