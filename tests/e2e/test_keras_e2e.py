"""End to end in Debian's chromium: the console output of a real Keras 3 run at lr 5 (`model.summary()`
then `fit()`, its backspaces and colour codes kept; `tests/fixtures/keras3/sgd_lr5/fit.log`). The page
calls it flat, quotes the class count the summary gave, and shows its fixes as Keras code, in English
and in Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import open_in, upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics import diagnose
from i18n import t
from parsers import load

TIMEOUT = 60_000
RUN = Path(__file__).resolve().parents[1] / "fixtures" / "keras3" / "sgd_lr5" / "fit.log"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_keras_run_gets_keras_fixes(browser: Browser, app_url: str, artifacts: Path, lang: str):
    files = [("fit.log", RUN.read_bytes())]
    d = diagnose(load(files))
    assert d.symptom.symptom == "flat" and d.causes
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    open_in(page, app_url, lang)
    upload(page, files)
    verdict = page.locator(".st-key-verdict-0")
    expect(verdict).to_contain_text(t("symptoms.flat.title", lang), timeout=TIMEOUT)
    expect(page.get_by_text("ln(3) = 1.0986").first).to_be_visible()  # C = 3, from the summary
    codes = page.locator("[data-testid='stCode']")
    expect(codes.filter(has_text="keras.layers.Normalization()").first).to_be_visible()
    expect(codes.filter(has_text="clipnorm=1.0").first).to_be_visible()
    expect(codes.filter(has_text=t("snippet.first_layer", lang)).first).to_be_visible()
    expect(codes.filter(has_text="torch")).to_have_count(0)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    page.screenshot(path=artifacts / f"e2e-keras-{lang}.png", full_page=True)
    page.close()
