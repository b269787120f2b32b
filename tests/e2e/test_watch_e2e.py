"""In chromium: "Watch a running job" follows a log that the test keeps appending to (the status line,
the chart and the verdict update by themselves), and a path outside LOSS_DOCTOR_WATCH_DIRS is refused
(also through `..`), in English and Chinese."""

from __future__ import annotations

import gzip
import os
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import REPO, open_in, running_app, wait_idle
from playwright.sync_api import Page, expect

from i18n import t
from present.watching import WATCH_DIRS_ENV

TIMEOUT = 60_000
# A corpus run (training split) whose loss climbs for 20 steps before it turns NaN at step 95.
RUN = REPO / "sample_logs" / "corpus" / "runs" / "cnn_043_garbage_every17" / "train.log.gz"


@pytest.fixture(scope="module")
def watched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    if not RUN.exists():
        pytest.skip("the corpus is absent")
    tmp = tmp_path_factory.mktemp("watch")
    allowed = tmp / "jobs"
    allowed.mkdir()
    with running_app(tmp, {WATCH_DIRS_ENV: str(allowed)}) as url:
        yield url, allowed


def open_watch_mode(page: Page, url: str, lang: str = "en") -> None:
    open_in(page, url, lang)
    page.get_by_text(t("ui.input.watch", lang)).click()
    wait_idle(page)


def type_path(page: Page, path: str, lang: str = "en") -> None:
    box = page.get_by_label(t("ui.watch.path", lang), exact=True)
    box.fill(path)
    box.press("Enter")


def test_a_growing_log_is_followed(watched, page: Page, artifacts: Path):
    url, allowed = watched
    lines = gzip.decompress(RUN.read_bytes()).splitlines(keepends=True)
    log = allowed / "train.log"
    log.write_bytes(b"".join(lines[:20]))
    stop = threading.Event()

    def append() -> None:  # the job: a few lines every 0.4 s, the last one cut mid-line until the next
        at = 20
        while at < len(lines) and not stop.is_set():
            time.sleep(0.4)
            with log.open("ab") as fh:
                fh.write(b"".join(lines[at : at + 3]))
            at += 3

    page.set_viewport_size({"width": 1400, "height": 1300})
    open_watch_mode(page, url)
    expect(page.get_by_text(str(allowed))).to_be_visible()  # the allowed directory is named
    page.get_by_label(t("ui.watch.interval", "en")).fill("1")
    type_path(page, str(log))
    writer = threading.Thread(target=append, daemon=True)
    writer.start()
    try:
        status = page.locator(".st-key-watch-status")
        expect(status).to_contain_text("Last read at", timeout=TIMEOUT)
        first = status.inner_text()
        # (while a refresh redraws it, the old chart lingers hidden beside the new one)
        expect(page.locator(".js-plotly-plot:visible").first).to_be_visible(timeout=TIMEOUT)
        expect(status).not_to_have_text(first, timeout=TIMEOUT)  # refreshed without any click
        # The loss climbs from step 33 and the log reaches its NaN at step 95: the warning shows first
        # (and stays listed under "Earlier warnings" once the loss came back down).
        expect(page.locator(".st-key-watch-warnings")).to_contain_text("LD403", timeout=TIMEOUT)
        # the chart marks the step of the first warning
        expect(page.locator(".js-plotly-plot:visible").first).to_contain_text("LD403", timeout=TIMEOUT)
        page.screenshot(path=str(artifacts / "watch-warning.png"), full_page=True)
        expect(page.locator(".st-key-verdict-0")).to_contain_text("NaN", timeout=TIMEOUT)
        sizes = re.findall(r"([\d.]+) kB read", status.inner_text())
        assert sizes and float(sizes[0]) > 1.0
        page.screenshot(path=str(artifacts / "watch-nan.png"), full_page=True)
    finally:
        stop.set()
        writer.join(timeout=10)
    page.get_by_text(t("ui.watch.live", "en")).click()  # stop following: the file grows, the page not
    wait_idle(page)
    time.sleep(1.5)  # a refresh already scheduled may still land
    shown = status.inner_text()
    with log.open("ab") as fh:
        fh.write(b"".join(lines[:40]))
    time.sleep(3)
    assert status.inner_text() == shown
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_paths_outside_the_allowed_directories_are_refused(watched, page: Page, lang: str, tmp_path: Path):
    url, allowed = watched
    outside = tmp_path / "secret.log"
    outside.write_bytes(b"iter 1 | loss 2.0\n")
    open_watch_mode(page, url, lang)
    escape = f"{allowed}/{os.path.relpath(outside, allowed)}"  # through `..` out of the allowed folder
    for path in (str(outside), escape, "/etc/passwd"):
        type_path(page, path, lang)
        wait_idle(page)
        alert = page.locator("[data-testid='stAlert']").filter(has_text=os.path.realpath(path))
        expect(alert).to_contain_text({"en": "Refused", "zh": "已拒绝"}[lang], timeout=TIMEOUT)
    expect(page.locator(".js-plotly-plot")).to_have_count(0)
