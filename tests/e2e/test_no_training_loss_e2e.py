"""End to end in Debian's chromium: real logs with their training-loss columns left out (an
evaluation-only export). A healthy Lightning run is shown as uncertain with LD117 saying why, in English
and in Chinese; a Keras run whose validation loss turns NaN is still shown as NaN."""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path

import pytest
from browser_helpers import open_in, upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics import diagnose
from i18n import t
from parsers import load
from present import panels

TIMEOUT = 60_000
SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"
HEALTHY = SAMPLES / "lightning_warmup_cosine_healthy" / "metrics.csv"
NAN_RUN = SAMPLES / "corpus/runs/cnn_067_nan_pixels_batch/training.csv.gz"


def without_columns(text: str, dropped: set[str]) -> bytes:
    rows = list(csv.DictReader(io.StringIO(text)))
    out = io.StringIO()
    writer = csv.DictWriter(out, [c for c in rows[0] if c not in dropped], extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


def show(browser: Browser, app_url: str, files: list[tuple[str, bytes]], lang: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    open_in(page, app_url, lang)
    upload(page, files)
    return page


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_a_validation_only_log_is_no_verdict(browser: Browser, app_url: str, artifacts: Path, lang: str):
    dropped = {"train_loss_epoch", "train_loss_step"}
    files = [("metrics.csv", without_columns(HEALTHY.read_text(), dropped))]
    d = diagnose(load(files))
    assert d.uncertain and d.symptom.symptom == "healthy"
    page = show(browser, app_url, files, lang)
    verdict = page.locator(".st-key-verdict-0")
    expect(verdict).to_contain_text(panels.verdict(d, lang).sentence, timeout=TIMEOUT)
    expect(verdict).to_contain_text(t("ui.uncertain.one", lang).split("—")[0].strip())
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)  # the validation curve is drawn
    finding = page.get_by_text(t("rules.LD117.title", lang)).first
    expect(finding).to_be_visible()
    finding.click()
    said = t("evidence.no_training_loss", lang, metrics="train/lr, val/accuracy, val/loss")
    expect(page.get_by_text(said).first).to_be_visible(timeout=TIMEOUT)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    # Not "healthy as far as the curves show": no curve rule read this log.
    assert d.unchecked
    expect(page.get_by_text(t("ui.unchecked.healthy", lang, count=len(d.unchecked)))).to_have_count(0)
    wait_idle(page)
    page.screenshot(path=artifacts / f"e2e-no-training-loss-{lang}.png", full_page=True)
    page.close()


def test_a_nan_in_the_validation_loss_is_the_verdict(browser: Browser, app_url: str, artifacts: Path):
    text = gzip.decompress(NAN_RUN.read_bytes()).decode()
    files = [("training.csv", without_columns(text, {"loss", "accuracy"}))]
    d = diagnose(load(files))
    assert d.symptom.symptom == "nan" and not d.uncertain
    page = show(browser, app_url, files, "en")
    expect(page.locator(".st-key-verdict-0")).to_contain_text(
        panels.verdict(d, "en").sentence, timeout=TIMEOUT
    )
    expect(page.get_by_text(t("rules.LD117.title", "en")).first).to_be_visible()
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)  # the finite validation points are drawn
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-no-training-loss-nan.png", full_page=True)
    page.close()
