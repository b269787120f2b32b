"""End to end in Debian's chromium: a curves-only log's healthy verdict says that the configuration
checks could not run and lists them with the settings each reads; uploading the run's printed arguments
beside it runs them. A real CPU run of the tuning data (the extra set): a ResNet whose frozen layers were
never loaded with weights, its log cut into the metrics and the arguments its script printed
(`tests/corpus_runs.py`). A Caffe log that describes its net lists nothing."""

from __future__ import annotations

from pathlib import Path

from browser_helpers import upload, wait_idle
from playwright.sync_api import Browser, expect

from bench.with_settings import arguments, logged_arguments, recipes
from diagnostics import diagnose
from diagnostics.split import CORPUS, EXTRA
from i18n import t
from parsers import load
from present.examples import Example
from tests.corpus_runs import split_run

TIMEOUT = 60_000
NOT_CHECKED = t("ui.unchecked.title", "en", count=0).split("(")[0].strip()  # the list's title, any count
RUN = EXTRA / "runs/resnet_128_frozen_random_backbone"
DESCRIBED = Example(
    "case3_vgg_scaled", "", Path(__file__).resolve().parents[2] / "sample_logs/case3_vgg_scaled"
)


def open_page(browser: Browser, app_url: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    page.goto(app_url)
    wait_idle(page)
    return page


def test_curves_only_log_lists_the_checks_it_could_not_run(browser: Browser, app_url: str, artifacts: Path):
    _, metrics = split_run(RUN)
    files = [("train.log", metrics)]
    d = diagnose(load(files))
    assert d.healthy and "LD310" in d.unchecked
    page = open_page(browser, app_url)
    upload(page, files)
    caption = t("ui.unchecked.healthy", "en", count=len(d.unchecked))
    expect(page.locator(".st-key-verdict-0")).to_contain_text(caption, timeout=TIMEOUT)
    page.get_by_text(t("ui.unchecked.title", "en", count=len(d.unchecked))).click()
    expect(page.get_by_text(t("rules.LD310.title", "en"), exact=True)).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_text(t("rules.LD310.needs", "en"))).to_be_visible()
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-unchecked.png", full_page=True)
    page.close()


def test_the_printed_arguments_beside_it_run_the_checks(browser: Browser, app_url: str, artifacts: Path):
    settings, metrics = split_run(RUN)
    files = [("train.log", metrics), ("args.txt", settings)]
    d = diagnose(load(files))
    assert not d.healthy and d.causes[0].id == "no_pretraining" and not d.unchecked
    page = open_page(browser, app_url)
    upload(page, files)
    verdict = t(f"symptoms.{d.symptom.symptom}.title", "en")
    expect(page.locator(".st-key-verdict-0")).to_contain_text(verdict, timeout=TIMEOUT)
    expect(page.get_by_text(t("causes.no_pretraining.title", "en")).first).to_be_visible()
    expect(page.get_by_text(t("rules.LD310.title", "en")).first).to_be_visible()
    expect(page.get_by_text(NOT_CHECKED)).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-unchecked-with-arguments.png", full_page=True)
    page.close()


def test_log_that_describes_its_net_lists_nothing_unchecked(browser: Browser, app_url: str):
    assert diagnose(load(DESCRIBED.files())).unchecked == []
    page = open_page(browser, app_url)
    upload(page, DESCRIBED.files())
    expect(page.locator(".st-key-verdict-0")).to_be_visible(timeout=TIMEOUT)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    expect(page.get_by_text(NOT_CHECKED)).to_have_count(0)
    page.close()


def test_arguments_logged_into_the_event_files_run_the_checks(
    browser: Browser, app_url: str, artifacts: Path
):
    """A TensorBoard-only run (training split) whose script logged its arguments with `add_text`, as HF's
    Trainer does: the same file upload now names the fault, quoting the logged argument."""
    run = CORPUS / "runs/cnn_061_frozen_random_backbone"
    (events,) = run.glob("events.out.tfevents.*")
    curves = (events.name, events.read_bytes())
    assert diagnose(load([curves])).healthy
    files = [curves, ("events.out.tfevents.args", logged_arguments(arguments(recipes(), run.name)))]
    d = diagnose(load(files))
    assert d.causes[0].id == "no_pretraining" and not d.unchecked
    page = open_page(browser, app_url)
    upload(page, files)
    verdict = t(f"symptoms.{d.symptom.symptom}.title", "en")
    expect(page.locator(".st-key-verdict-0")).to_contain_text(verdict, timeout=TIMEOUT)
    expect(page.get_by_text(t("causes.no_pretraining.title", "en")).first).to_be_visible()
    expect(page.get_by_text("freeze_backbone=True").first).to_be_attached()
    expect(page.get_by_text(NOT_CHECKED)).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-unchecked-logged-arguments.png", full_page=True)
    page.close()
