"""In chromium, against a server with a small run cap: hostile file names and metric names are shown
literally (no link, image or script from them in the DOM), also on the shared page; and the owner's
delete link deletes a share, after which its link says so."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import running_app, upload, wait_idle
from playwright.sync_api import Browser, Page, expect

from i18n import t
from present.limits import MAX_RUN_MB_ENV

TIMEOUT = 60_000
SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"
CAFFE, KERAS = SAMPLES / "caffe_lenet_lr_nan.log", SAMPLES / "keras_dense_overfitting.csv"
RUN_CAP_MB = 0.15  # the samples above fit, the padded file below does not
LINK_NAME = "[x](https://evil.example) ![](https://evil.example/i.png) run.log"
IMG_NAME = "<img src=x onerror=window.pwned=1> <b>bold</b> :red[red] $x$.csv"
LONG_NAME = "[" + "very-long-name-" * 20 + "](https://evil.example) <img src=x onerror=window.pwned=1>.log"
METRIC = "<img src=x onerror=window.pwned=2>"


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not (CAFFE.is_file() and KERAS.is_file()):
        pytest.skip("the Caffe and Keras samples are not in sample_logs/")
    tmp = tmp_path_factory.mktemp("app")
    with running_app(tmp, {MAX_RUN_MB_ENV: str(RUN_CAP_MB)}) as url:
        yield url


def keras_with_hostile_metric() -> bytes:
    """The Keras sample with one more column, named like an HTML image with an onerror handler."""
    header, *rows = KERAS.read_bytes().decode().splitlines()
    return "\n".join([f"{header},{METRIC}"] + [f"{row},0.5" for row in rows]).encode() + b"\n"


def legend(page: Page) -> list[str]:
    page.wait_for_selector(".js-plotly-plot .legendtext", timeout=TIMEOUT)
    return page.evaluate("() => [...document.querySelectorAll('.legendtext')].map(e => e.textContent)")


def assert_inert(page: Page) -> None:
    """Nothing the names asked for exists: no link or image to evil.example, no <img src=x>, no script ran."""
    assert page.locator("a[href*='evil.example']").count() == 0
    assert page.locator("img[src*='evil.example'], img[src='x']").count() == 0
    assert page.locator("[data-testid='stMain'] b").count() == 0
    assert page.evaluate("() => window.pwned") is None
    expect(page.locator("[data-testid='stException']")).to_have_count(0)


def test_hostile_names_are_shown_literally_also_on_the_shared_page(
    browser: Browser, app_url: str, artifacts: Path
):
    page = browser.new_page(viewport={"width": 1500, "height": 1800})
    page.goto(app_url)
    wait_idle(page)
    upload(page, [(LONG_NAME, CAFFE.read_bytes() + b"\n" * int(RUN_CAP_MB * 1024**2))])
    error = page.locator("[data-testid='stAlert']").filter(has_text="the limit is")
    expect(error).to_contain_text(LONG_NAME, timeout=TIMEOUT)
    assert_inert(page)
    page.screenshot(path=artifacts / "e2e-hostile-too-large.png", full_page=True)

    page.get_by_text(t("ui.input.compare", "en")).click()
    # The rerun has come and the upload-mode file input is gone: the two inputs are the runs' own.
    expect(page.locator(".st-key-compare_1")).to_be_visible(timeout=TIMEOUT)
    expect(page.get_by_test_id("stFileUploaderDropzone")).to_have_count(2, timeout=TIMEOUT)
    upload(page, [(LINK_NAME, CAFFE.read_bytes())], index=0)
    expect(page.locator(".st-key-verdict-0")).to_be_visible(timeout=TIMEOUT)  # one run is shown alone
    upload(page, [(IMG_NAME, keras_with_hostile_metric())], index=1)
    expect(page.locator(".st-key-verdict-1")).to_be_attached(timeout=TIMEOUT)  # in the second tab
    wait_idle(page)
    labels = legend(page)
    assert any(LINK_NAME in text for text in labels) and any(IMG_NAME in text for text in labels)
    assert any(re.search(r"<img.src=x.onerror=window.pwned=2>", text) for text in labels)
    for name in (LINK_NAME, IMG_NAME):
        expect(page.get_by_text(name).first).to_be_visible(timeout=TIMEOUT)
    assert_inert(page)
    page.screenshot(path=artifacts / "e2e-hostile-compare.png", full_page=True)

    page.get_by_role("button", name="Share").click()
    expect(page).to_have_url(re.compile(r"\?d=[A-Za-z0-9_-]{32}$"), timeout=TIMEOUT)
    link = page.locator(".st-key-share-link code").inner_text().strip()
    fresh = browser.new_context(viewport={"width": 1500, "height": 1800})
    other = fresh.new_page()
    other.goto(link)
    expect(other.locator(".st-key-verdict-1")).to_be_attached(timeout=TIMEOUT)
    wait_idle(other)
    assert legend(other) == labels
    assert_inert(other)
    other.screenshot(path=artifacts / "e2e-hostile-shared.png", full_page=True)
    fresh.close()
    page.close()


def test_share_then_delete_with_the_owners_link_then_the_link_says_deleted(
    browser: Browser, app_url: str, artifacts: Path
):
    page = browser.new_page(viewport={"width": 1500, "height": 1400})
    page.goto(app_url)
    wait_idle(page)
    upload(page, [(CAFFE.name, CAFFE.read_bytes())])
    expect(page.locator(".st-key-verdict-0")).to_be_visible(timeout=TIMEOUT)
    page.get_by_role("button", name="Share").click()
    expect(page.locator(".st-key-delete-link code")).to_be_visible(timeout=TIMEOUT)
    link = page.locator(".st-key-share-link code").inner_text().strip()
    delete_link = page.locator(".st-key-delete-link code").inner_text().strip()
    assert delete_link.startswith(link + "&delete=")
    expect(page.get_by_text("shown only now")).to_be_visible(timeout=TIMEOUT)
    wait_idle(page)
    page.screenshot(path=artifacts / "e2e-share-delete-link.png", full_page=True)

    owner = browser.new_context(viewport={"width": 1500, "height": 1400})
    tab = owner.new_page()
    tab.goto(delete_link)
    expect(tab.locator(".st-key-verdict-0")).to_be_visible(timeout=TIMEOUT)  # what is about to go
    wait_idle(tab)
    tab.screenshot(path=artifacts / "e2e-delete-prompt.png", full_page=True)
    tab.get_by_role("button", name=t("ui.share.delete_button", "en")).click()
    expect(tab.get_by_text(t("ui.share.deleted", "en"))).to_be_visible(timeout=TIMEOUT)
    assert "delete=" not in tab.url

    viewer = browser.new_context().new_page()
    viewer.goto(link)
    wait_idle(viewer)
    expect(viewer.get_by_text("was deleted by the person who shared it")).to_be_visible(timeout=TIMEOUT)
    expect(viewer.locator(".st-key-verdict-0")).to_have_count(0)
    viewer.screenshot(path=artifacts / "e2e-deleted-link.png", full_page=True)
    owner.close()
    viewer.context.close()
    page.close()
