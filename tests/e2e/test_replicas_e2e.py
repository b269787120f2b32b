"""Two app replicas behind one PostgreSQL server (LOSS_DOCTOR_DATABASE_URL), as behind a load
balancer, in chromium: a link made on one opens on the other; while the database is down the shared
page says so, and once it is back the same link opens again (the pool reconnects); the owner's delete
link used on the second replica deletes the share for the first."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from browser_helpers import start_app, upload, wait_idle
from playwright.sync_api import Browser, Page, expect

from diagnostics import diagnose
from i18n import t
from parsers import load
from present import panels
from share.store import DATABASE_URL_ENV, DB_NAME
from tests.postgres_server import PostgresServer, start_server

TIMEOUT = 60_000
CAFFE = Path(__file__).resolve().parents[2] / "sample_logs" / "caffe_lenet_lr_nan.log"


@pytest.fixture(scope="module")
def database() -> Iterator[PostgresServer]:
    server = start_server()
    yield server
    server.close()


@pytest.fixture(scope="module")
def replicas(database: PostgresServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The base URLs of two apps on their own ports and data folders, sharing one database."""
    if not CAFFE.is_file():
        pytest.skip(f"{CAFFE.name} is not in sample_logs/")
    tmp = tmp_path_factory.mktemp("replicas")
    url = database.schema_url()
    started = []
    try:
        for name in ("a", "b"):
            started.append(start_app(tmp / name, tmp / f"{name}.log", {DATABASE_URL_ENV: url}))
        yield [app for _, app in started]
    finally:
        for process, _ in started:
            process.terminate()
            process.wait(timeout=20)
    assert not list(tmp.rglob(DB_NAME))  # no replica fell back to a SQLite file of its own


def open_page(browser: Browser, url: str) -> Page:
    page = browser.new_context(viewport={"width": 1500, "height": 1400}).new_page()
    page.goto(url)
    wait_idle(page)
    return page


def test_a_link_made_on_one_replica_opens_on_the_other(
    browser: Browser, replicas: list[str], database: PostgresServer, artifacts: Path
):
    first, second = replicas
    owner = open_page(browser, first)
    upload(owner, [(CAFFE.name, CAFFE.read_bytes())])
    sentence = panels.verdict(diagnose(load([(CAFFE.name, CAFFE.read_bytes())])), "en").sentence
    expect(owner.locator(".st-key-verdict-0")).to_contain_text(sentence, timeout=TIMEOUT)
    owner.get_by_role("button", name="Share").click()
    expect(owner.locator(".st-key-delete-link code")).to_be_visible(timeout=TIMEOUT)
    link = owner.locator(".st-key-share-link code").inner_text().strip()
    delete_link = owner.locator(".st-key-delete-link code").inner_text().strip()
    assert link.startswith(first + "/?d=")
    on_second = link.replace(first, second, 1)

    viewer = open_page(browser, on_second)
    expect(viewer.locator(".st-key-verdict-0")).to_contain_text(sentence, timeout=TIMEOUT)
    viewer.screenshot(path=artifacts / "e2e-replica-link.png", full_page=True)

    database.stop()
    down = open_page(browser, on_second)
    expect(down.get_by_text(t("ui.error.share_unavailable", "en"))).to_be_visible(timeout=TIMEOUT)
    expect(down.locator(".st-key-verdict-0")).to_have_count(0)
    wait_idle(down)
    down.screenshot(path=artifacts / "e2e-replica-database-down.png", full_page=True)
    database.start()
    back = open_page(browser, on_second)
    expect(back.locator(".st-key-verdict-0")).to_contain_text(sentence, timeout=TIMEOUT)

    deleter = open_page(browser, delete_link.replace(first, second, 1))
    deleter.get_by_role("button", name=t("ui.share.delete_button", "en")).click()
    expect(deleter.get_by_text(t("ui.share.deleted", "en"))).to_be_visible(timeout=TIMEOUT)
    gone = open_page(browser, link)
    expect(gone.get_by_text(t("ui.error.share_deleted", "en"))).to_be_visible(timeout=TIMEOUT)
    expect(gone.locator(".st-key-verdict-0")).to_have_count(0)
    for page in (owner, viewer, down, back, deleter, gone):
        page.context.close()
