"""End to end in Debian's chromium: a verdict under the confidence floor is shown as "uncertain" with
its two leading readings, not as one word. The page runs with an operator floor
(LOSS_DOCTOR_UNCERTAIN_BELOW) so that the test does not hang on whether the fitted calibration happens
to leave a tuning run under the fitted floor."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import running_app, upload, wait_idle
from playwright.sync_api import Browser, expect

from diagnostics import diagnose
from diagnostics.fitted import UNCERTAIN_BELOW_ENV
from diagnostics.split import CORPUS, paths_of
from parsers import load
from present import panels
from present.examples import Example

TIMEOUT = 60_000
FLOOR = 0.9  # an operator who wants a verdict shown as one word only when it is right 9 times in 10


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("app")
    with running_app(tmp, {UNCERTAIN_BELOW_ENV: str(FLOOR)}) as url:
        yield url


def pick_uncertain(monkeypatch: pytest.MonkeyPatch) -> tuple[Example, str]:
    """The first run of the corpus's training split (held-out runs are not looked at, and the screenshot
    is) whose calibrated verdict falls under FLOOR and has a runner-up, with the sentence the page must show."""
    monkeypatch.setenv(UNCERTAIN_BELOW_ENV, str(FLOOR))
    for rel in sorted(paths_of("train")):
        example = Example(Path(rel).name, "", CORPUS / rel)
        diagnosis = diagnose(load(example.files()))
        if diagnosis.uncertain and diagnosis.runner_up is not None:
            return example, panels.verdict(diagnosis, "en").sentence
    raise AssertionError(f"no training run's verdict is under {FLOOR}: is the calibration broken?")


def test_uncertain_verdict_shows_two_readings(
    browser: Browser, app_url: str, artifacts: Path, monkeypatch: pytest.MonkeyPatch
):
    example, sentence = pick_uncertain(monkeypatch)
    assert sentence.startswith("Uncertain") and " or " in sentence
    page = browser.new_page(viewport={"width": 1500, "height": 1600})
    page.goto(app_url)
    wait_idle(page)
    upload(page, example.files())
    expect(page.locator(".st-key-verdict-0")).to_contain_text(sentence, timeout=TIMEOUT)
    expect(page.locator("[data-testid='stException']")).to_have_count(0)
    page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)  # the screenshot is looked at: chart drawn
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-uncertain.png", full_page=True)
    page.close()
