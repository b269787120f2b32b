"""End to end in Debian's chromium: a real FCN run (TensorBoard events, curves only) whose plateau never
changed an answer gets LD206's lost-signal reading first, with its evidence and the fixes for the three
ways to lose the signal, in English and in Chinese."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import open_in, upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics import diagnose
from i18n import t
from parsers import load

TIMEOUT = 60_000
RUN = Path(__file__).resolve().parents[2] / "sample_logs" / "corpus" / "runs" / "fcn_064_gaussian001_depth10"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_plateau_that_never_changed_an_answer(browser: Browser, app_url: str, artifacts: Path, lang: str):
    files = [(p.name, p.read_bytes()) for p in sorted(RUN.iterdir())]
    d = diagnose(load(files))
    cause = d.causes[0]
    assert cause.id == "depth_init" and cause.evidence[0].key == "evidence.prior_only"
    page = browser.new_page(viewport={"width": 1500, "height": 2600})
    open_in(page, app_url, lang)
    upload(page, files)
    expect(page.locator(".st-key-verdict-0")).to_contain_text(
        t("symptoms.plateau.title", lang), timeout=TIMEOUT
    )
    expect(page.get_by_text(t("causes.depth_init.title", lang)).first).to_be_visible()
    said = cause.evidence[0].text(lang)
    expect(page.get_by_text(said[:60]).first).to_be_visible()
    for fix in cause.fixes[2:]:
        expect(page.get_by_text(fix.text(lang)[:40]).first).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    page.screenshot(path=artifacts / f"e2e-prior-only-{lang}.png", full_page=True)
    page.close()
