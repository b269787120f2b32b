"""End to end in Debian's chromium: a real healthy Caffe LeNet log cut after its first training display
(one loss value, as when a job is killed or an upload is truncated) is shown as uncertain, not as
"Healthy", with LD116 saying why, in English and in Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import open_in, upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics import diagnose
from i18n import t
from parsers import load
from present import panels

TIMEOUT = 60_000
LOG = Path(__file__).resolve().parents[2] / "sample_logs" / "caffe_lenet_step_healthy.log"
FIRST_DISPLAY_LINES = 541  # up to `Iteration 0 ..., loss = 2.26809` and its two detail lines


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_one_loss_value_is_no_verdict(browser: Browser, app_url: str, artifacts: Path, lang: str):
    files = [(LOG.name, b"".join(LOG.read_bytes().splitlines(keepends=True)[:FIRST_DISPLAY_LINES]))]
    d = diagnose(load(files))
    assert d.uncertain and "LD116" in {f.rule for f in d.findings}
    sentence = panels.verdict(d, lang).sentence
    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    open_in(page, app_url, lang)
    upload(page, files)
    expect(page.locator(".st-key-verdict-0")).to_contain_text(sentence, timeout=TIMEOUT)
    expect(page.locator(".st-key-verdict-0")).to_contain_text(
        t("ui.uncertain.one", lang).split("—")[0].strip()
    )
    finding = page.get_by_text(t("rules.LD116.title", lang)).first
    expect(finding).to_be_visible()
    finding.click()
    said = t("evidence.single_loss_value", lang, loss="2.268", step=0)
    expect(page.get_by_text(said).first).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)  # the one point is drawn
    wait_idle(page)
    page.screenshot(path=artifacts / f"e2e-single-loss-value-{lang}.png", full_page=True)
    page.close()
