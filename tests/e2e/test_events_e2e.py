"""Events in the page (Debian chromium): the fp16 Megatron sample's scaler overflows are markers on the
loss chart and rows of the Events table, the log line shown as text. Its fixes are Megatron flags (the
warm-up 5 % of the 500 planned iterations), in English and Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import open_in, upload, wait_idle
from playwright.sync_api import Browser, expect

from i18n import t

TIMEOUT = 60_000
SAMPLE = Path(__file__).resolve().parents[2] / "sample_logs" / "llm" / "megatron_fp16_loss_scale_collapse.log"
HOSTILE = "<img src=x onerror=alert(1)>"


def test_events_show_on_the_chart_and_in_their_table(browser: Browser, app_url: str, artifacts: Path):
    if not SAMPLE.exists():
        pytest.skip("sample_logs/llm not there")
    text = SAMPLE.read_text() + f"saving checkpoint at iteration 400 to /ckpt {HOSTILE}\n"
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    page.goto(app_url)
    wait_idle(page)
    upload(page, [(SAMPLE.name, text.encode())])
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    names = page.evaluate("() => document.querySelector('.js-plotly-plot').data.map(t => t.name)")
    assert {"overflow, step skipped", "fatal error", "checkpoint saved"} <= set(names)
    expander = page.get_by_text("Events (40)")
    expect(expander).to_be_visible(timeout=TIMEOUT)
    expander.click()
    expect(page.get_by_text("22 × overflow, step skipped", exact=False)).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("img[src='x']")).to_have_count(0)
    page.screenshot(path=artifacts / "e2e-events.png", full_page=True)
    page.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_megatron_run_gets_megatron_flags(browser: Browser, app_url: str, artifacts: Path, lang: str):
    if not SAMPLE.exists():
        pytest.skip("sample_logs/llm not there")
    page = browser.new_page(viewport={"width": 1500, "height": 2400})
    open_in(page, app_url, lang)
    upload(page, [(SAMPLE.name, SAMPLE.read_bytes())])
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    codes = page.locator("[data-testid='stCode']")
    expect(codes.filter(has_text="--lr-warmup-iters 25").first).to_be_visible(timeout=TIMEOUT)
    expect(codes.filter(has_text="--lr 0.03").first).to_be_visible()
    # no optimiser or scheduler line: the data check's `torch.autograd` hook is the one PyTorch snippet
    expect(codes.filter(has_text="torch.optim")).to_have_count(0)
    warmup = t("fixes.warmup", lang, steps=25, share="5")
    expect(page.get_by_text(warmup[:30], exact=False).first).to_be_visible()
    if lang == "en":  # one spike, counted in the singular
        expect(page.get_by_text("1 isolated spike: ", exact=False).first).to_be_visible()
    wait_idle(page)
    page.screenshot(path=artifacts / f"e2e-megatron-flags-{lang}.png", full_page=True)
    page.close()
