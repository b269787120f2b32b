"""End to end in Debian's chromium: a curves-only log's healthy verdict says that the configuration
checks could not run, and lists them with the settings each reads; a Caffe log that describes its net
lists none."""

from __future__ import annotations

from pathlib import Path

from browser_helpers import upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics import diagnose
from i18n import t
from parsers import load
from present.examples import Example

TIMEOUT = 60_000
SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"
CURVES_ONLY = Example("tb_resnet_cosine_healthy", "", SAMPLES / "tb_resnet_cosine_healthy")
DESCRIBED = Example("case3_vgg_scaled", "", SAMPLES / "case3_vgg_scaled")


def test_curves_only_log_lists_the_checks_it_could_not_run(browser: Browser, app_url: str, artifacts: Path):
    d = diagnose(load(CURVES_ONLY.files()))
    assert d.healthy and "LD310" in d.unchecked
    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    page.goto(app_url)
    wait_idle(page)
    upload(page, CURVES_ONLY.files())
    caption = t("ui.unchecked.healthy", "en", count=len(d.unchecked))
    expect(page.locator(".st-key-verdict-0")).to_contain_text(caption, timeout=TIMEOUT)
    title = t("ui.unchecked.title", "en", count=len(d.unchecked))
    page.get_by_text(title).click()
    expect(page.get_by_text(t("rules.LD310.title", "en"), exact=True)).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text(t("rules.LD310.needs", "en"))).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-unchecked.png", full_page=True)
    page.close()


def test_log_that_describes_its_net_lists_nothing_unchecked(browser: Browser, app_url: str):
    assert diagnose(load(DESCRIBED.files())).unchecked == []
    page = browser.new_page(viewport={"width": 1500, "height": 1600})
    page.goto(app_url)
    wait_idle(page)
    upload(page, DESCRIBED.files())
    expect(page.locator(".st-key-verdict-0")).to_be_visible(timeout=TIMEOUT)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    expect(page.get_by_text("Not checked: settings this log does not show")).to_have_count(0)
    page.close()
