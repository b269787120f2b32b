"""End to end in Debian's chromium: a real FCN run whose loss was summed over pixels (the corpus's
`fcn_028_sum_reduction`, HF Trainer's `trainer_state.json.gz`, no class count, a pixel accuracy): its
first loss 10,681 is above any untrained classifier's, so beside the too-high lr the page offers a
summed loss, quotes the bound, and asks to check the reduction, in English and in Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import open_in, upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics import diagnose, fitted
from i18n import t
from parsers import load

TIMEOUT = 60_000
RUN = Path(__file__).resolve().parents[2] / "sample_logs" / "corpus" / "runs" / "fcn_028_sum_reduction"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_first_loss_above_any_classifier_offers_a_summed_loss(
    browser: Browser, app_url: str, artifacts: Path, lang: str
):
    files = [(p.name, p.read_bytes()) for p in sorted(RUN.iterdir())]
    d = diagnose(load(files))
    assert d.symptom.symptom == "nan" and "loss_normalization" in [c.id for c in d.causes[:2]]
    page = browser.new_page(viewport={"width": 1500, "height": 2400})
    open_in(page, app_url, lang)
    upload(page, files)
    verdict = page.locator(".st-key-verdict-0")
    expect(verdict).to_contain_text(t("symptoms.nan.title", lang), timeout=TIMEOUT)
    expect(page.get_by_text(t("causes.loss_normalization.title", lang)).first).to_be_visible()
    bound = fitted.PARAMS.ld110_max_classes
    expect(page.get_by_text(f"ln({bound})").first).to_be_visible()
    check = t("fixes.reduction_mean_check", lang)
    expect(page.get_by_text(check[:40]).first).to_be_visible()
    codes = page.locator("[data-testid='stCode']")
    expect(codes.filter(has_text="reduction='mean'").first).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    page.screenshot(path=artifacts / f"e2e-summed-loss-{lang}.png", full_page=True)
    page.close()
