"""In chromium, two people upload two different large Caffe logs to one server at the same moment:
each page shows its own run. Logs over 4 MiB are read by forked workers, which once read a
module-global buffer, so that one upload got the other's rows (and the app cached them by content).
The two parses here usually overlap, but that race was a matter of milliseconds: the thread test in
tests/parsers/test_caffe_glog.py is what catches it every time; this one proves the whole path."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import running_app, wait_idle
from playwright.sync_api import Browser, expect

from bench.make_caffe_log import write_log
from diagnostics import diagnose
from i18n import t
from parsers import load
from parsers.formats.caffe_glog import CHUNK_BYTES
from present import panels

TIMEOUT = 120_000  # two large parses at once on two busy cores
NAN_FROM = 60_000  # the diverged run's loss is NaN from this iteration on


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("app")
    # Two workers whatever the machine's cores: a log of two chunks or more is read by forked workers.
    with running_app(tmp, {"LOSS_DOCTOR_WORKERS": "2"}) as url:
        yield url


def two_large_logs(tmp: Path) -> list[Path]:
    """A healthy run, and a longer run with another seed whose loss turns NaN at NAN_FROM."""
    healthy, diverged = tmp / "healthy_lenet.log", tmp / "diverged_lenet.log"
    write_log(healthy, 4.6, seed=1)
    write_log(diverged, 5.4, seed=2)
    text = diverged.read_bytes()
    cut = text.index(f"Iteration {NAN_FROM} ".encode())
    diverged.write_bytes(text[:cut] + re.sub(rb"loss = [0-9.e+-]+", b"loss = nan", text[cut:]))
    assert min(path.stat().st_size for path in (healthy, diverged)) > CHUNK_BYTES  # two chunks or more
    return [healthy, diverged]


def shown_alone(name: str, data: bytes) -> tuple[str, str]:
    """The verdict sentence and the values-read caption of one log parsed on its own, in this
    process: what its page must show."""
    log = load([(name, data)])
    sentence = panels.verdict(diagnose(log), "en").sentence
    return sentence, t("ui.progress.done", "en", rows=f"{len(log.metrics):,}", files=1)


def test_two_large_caffe_uploads_at_once_each_page_shows_its_own_run(
    browser: Browser, app_url: str, artifacts: Path, tmp_path: Path
):
    paths = two_large_logs(tmp_path)
    expected = [shown_alone(path.name, path.read_bytes()) for path in paths]
    # The two runs differ in everything the assertions below read: a swap or a mix would show.
    assert expected[0][0] != expected[1][0] and expected[0][1] != expected[1][1]
    assert f"from step {NAN_FROM}" in expected[1][0]

    contexts = [browser.new_context(viewport={"width": 1500, "height": 1800}) for _ in paths]
    pages = [context.new_page() for context in contexts]
    for page in pages:
        page.goto(app_url)
        wait_idle(page)
    # Both file choosers open first, then both files are set by path (no copy through the driver),
    # back to back: the two uploads reach the server within a fraction of a second of each other.
    choosers = []
    for page in pages:
        with page.expect_file_chooser() as chooser:
            page.get_by_test_id("stFileUploaderDropzone").click()
        choosers.append(chooser.value)
    for chooser, path in zip(choosers, paths, strict=True):
        chooser.set_files(path)

    for page, path, (sentence, caption), other in zip(
        pages, paths, expected, reversed(expected), strict=True
    ):
        expect(page.locator(".st-key-verdict-0")).to_contain_text(sentence, timeout=TIMEOUT)
        expect(page.get_by_text(caption)).to_be_visible(timeout=TIMEOUT)
        wait_idle(page, TIMEOUT)
        page.wait_for_selector(".js-plotly-plot", timeout=TIMEOUT)
        expect(page.locator(".st-key-verdict-0")).not_to_contain_text(other[0])
        expect(page.get_by_text(other[1])).to_have_count(0)
        expect(page.get_by_text(path.name, exact=True).first).to_be_visible()
        expect(page.locator("[data-testid='stException']")).to_have_count(0)
        page.screenshot(path=artifacts / f"e2e-concurrent-{path.stem}.png", full_page=True)
    for context in contexts:
        context.close()
