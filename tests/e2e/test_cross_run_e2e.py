"""In chromium: two real runs that share a data order with corrupted batches (sample_logs/cross_run/,
from sample_logs/generator/cross_runs.py), uploaded together, show LD501 in the compare view with the
shared steps and each run's spike; the clean pair shows the quiet caption instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from browser_helpers import upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics.cross_run import shared_spikes
from i18n import t
from parsers.runs import load_run, split_runs

TIMEOUT = 60_000
RUNS = Path(__file__).resolve().parents[2] / "sample_logs" / "cross_run"
BAD = ("bad_data_seed1_lr1e-3.log", "bad_data_seed2_lr6e-4.log")
CLEAN = ("clean_seed1_lr1e-3.log", "clean_seed2_lr6e-4.log")


def files(names: tuple[str, ...]) -> list[tuple[str, bytes]]:
    if not all((RUNS / name).is_file() for name in names):
        pytest.skip("sample_logs/cross_run is not there")
    return [(name, (RUNS / name).read_bytes()) for name in names]


def test_spikes_at_the_same_steps_show_in_the_compare_view(browser: Browser, app_url: str, artifacts: Path):
    runs = files(BAD)
    # the runs as the page splits and labels the upload
    found = shared_spikes([(label, load_run(list(fs))) for label, fs in split_runs(runs)])
    assert [f.rule for f in found] == ["LD501"]  # the library's finding is what the page must show
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(app_url)
    wait_idle(page)
    upload(page, runs)
    box = page.locator(".st-key-cross-run-LD501")
    expect(box).to_contain_text(t("rules.LD501.title", "en"), timeout=TIMEOUT)
    for evidence in found[0].evidence:
        expect(box).to_contain_text(evidence.text("en"))
    expect(box).to_contain_text(found[0].fixes[0].text("en"))
    wait_idle(page)
    box.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "e2e-cross-run.png", full_page=True)


def test_runs_without_shared_spikes_show_none(browser: Browser, app_url: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    page.goto(app_url)
    wait_idle(page)
    upload(page, files(CLEAN))
    expect(page.get_by_text(t("ui.cross_run.none", "en"))).to_be_visible(timeout=TIMEOUT)
    assert page.locator(".st-key-cross-run-LD501").count() == 0


def test_compare_mode_aligns_runs_of_different_batch_sizes_on_samples(
    browser: Browser, app_url: str, artifacts: Path
):
    """'Compare runs' with one file each: a batch-24 and a batch-48 run meet the corrupted samples at
    iterations 300 and 150; the page names the shared sample positions and each run's own steps."""
    small, large = files(BAD[:1]), files(("bad_data_seed4_batch48.log",))
    page = browser.new_page(viewport={"width": 1500, "height": 2200})
    page.goto(app_url)
    wait_idle(page)
    page.get_by_text(t("ui.input.compare", "en")).click()
    expect(page.get_by_test_id("stFileUploaderDropzone")).to_have_count(2, timeout=TIMEOUT)
    upload(page, small, index=0)
    expect(page.locator(".st-key-verdict-0")).to_be_visible(timeout=TIMEOUT)
    upload(page, large, index=1)
    labels = [f"{t('ui.run_n', 'en', n=n)}: {name}" for n, ((name, _),) in ((1, small), (2, large))]
    found = shared_spikes([(label, load_run(fs)) for label, fs in zip(labels, (small, large), strict=True)])
    (finding,) = found
    assert finding.by_samples
    box = page.locator(".st-key-cross-run-LD501")
    for evidence in finding.evidence:
        expect(box).to_contain_text(evidence.text("en"), timeout=TIMEOUT)
    for fix in finding.fixes:
        expect(box).to_contain_text(fix.text("en"))
    wait_idle(page)
    box.scroll_into_view_if_needed()
    page.screenshot(path=artifacts / "e2e-cross-run-batch-sizes.png", full_page=True)
