"""The page's logic with Streamlit's AppTest: upload, paste, examples, compare, bad input, share links."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from diagnostics import diagnose
from i18n import t
from parsers import ParseError, load
from present import panels
from present.examples import Example, list_examples
from present.limits import MAX_RUN_MB_ENV, MAX_SHARE_MB_ENV, SHARE_DAYS_ENV
from present.safe import md_literal, plot_text
from share.store import DATA_ENV, SharedRun, ShareError, ShareStore, SQLiteStore, open_store, valid_id

TIMEOUT = 60
REAL_LOGS = Path(__file__).resolve().parents[2] / ".." / "shared" / "real_logs"


def candidate_runs() -> list[Example]:
    """The sample runs; then, where the team's real logs are at hand, their smallest Caffe logs."""
    real = sorted((REAL_LOGS / "caffe").glob("*.log"), key=lambda p: p.stat().st_size)[:4]
    return list_examples() + [Example(p.name, "", p) for p in real]


APP = Path(__file__).resolve().parents[2] / "app.py"


@pytest.fixture(autouse=True)
def temporary_store(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "data"))
    st.cache_resource.clear()
    yield
    st.cache_resource.clear()


@pytest.fixture(scope="module")
def sample() -> tuple[list[tuple[str, bytes, str]], str, str]:
    """The files of a sample run (single-file runs first), with the verdict the library gives it in
    English and Chinese: the page must show exactly these."""
    for example in sorted(candidate_runs(), key=lambda e: e.path.is_dir()):
        try:
            diagnosis = diagnose(load(example.files()))
        except ParseError:
            continue
        files = [(name, data, "text/plain") for name, data in example.files()]
        return files, panels.verdict(diagnosis, "en").sentence, panels.verdict(diagnosis, "zh").sentence

    pytest.skip("no parseable sample run in sample_logs/ yet")


def app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def alerts(at: AppTest) -> list[str]:
    return [a.value for kind in (at.error, at.warning, at.success, at.info) for a in kind]


def test_empty_page_invites_an_upload():
    at = app().run()
    assert not at.exception
    assert any("Upload the log" in text for text in alerts(at))


def test_upload_shows_the_library_verdict_and_facts(sample):
    files, verdict_en, _ = sample
    at = app().run()
    at.file_uploader(key="upload").set_value(files).run()
    assert not at.exception
    assert verdict_en in alerts(at)
    assert at.get("plotly_chart")
    assert any(files[0][0] in text.value for text in at.text)


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("weights.bin", bytes(range(256)) * 64),
        ("empty.log", b""),
        ("notes.txt", b"hello\nthis is not a training log\n" * 10),
    ],
)
def test_bad_files_give_a_plain_text_error_and_the_app_keeps_working(name, data, sample):
    at = app().run()
    at.file_uploader(key="upload").set_value((name, data, "application/octet-stream")).run()
    assert not at.exception
    assert any("could not be read as a training log" in text for text in alerts(at))
    assert any(name in block.value for block in at.code)
    at.file_uploader(key="upload").set_value(sample[0]).run()
    assert sample[1] in alerts(at)


def test_pasted_text_is_diagnosed(sample):
    if len(sample[0]) > 1:
        pytest.skip("the sample run has several files; pasting takes one")
    at = app().run()
    at.radio(key="mode_en").set_value("paste").run()
    at.text_area(key="paste").input(sample[0][0][1].decode("utf-8", errors="replace")).run()
    assert not at.exception
    assert sample[1] in alerts(at)


def test_language_switch_renders_the_diagnosis_in_chinese(sample):
    at = app().run()
    at.file_uploader(key="upload").set_value(sample[0]).run()
    at.radio(key="lang").set_value("zh").run()
    assert sample[2] in alerts(at)


def test_share_round_trip_restores_runs_and_settings(sample):
    at = app().run()
    at.file_uploader(key="upload").set_value(sample[0]).run()
    at.radio(key="lang").set_value("zh").run()
    at.slider(key="smoothing").set_value(0.3).run()
    at.button(key="share").click().run()
    share_id = at.query_params["d"]
    share_id = share_id[0] if isinstance(share_id, list) else share_id
    assert valid_id(share_id)
    assert any(share_id in block.value for block in at.code)

    other = app()
    other.query_params["d"] = share_id
    other.run()
    assert not other.exception
    assert sample[2] in alerts(other)
    assert other.slider(key="smoothing").value == 0.3


@pytest.mark.parametrize(("share_id", "words"), [("nope", "malformed"), ("A" * 32, "No shared diagnosis")])
def test_bad_share_ids_get_a_clear_message(share_id, words):
    at = app()
    at.query_params["d"] = share_id
    at.run()
    assert not at.exception
    assert any(words in text for text in alerts(at))


def test_examples_need_no_file_of_ones_own():
    if not list_examples():
        pytest.skip("sample_logs/ is empty")
    at = app().run()
    at.radio(key="mode_en").set_value("example").run()
    assert not at.exception
    assert at.get("plotly_chart") or any("could not be read" in text for text in alerts(at))


def test_compare_mode_overlays_runs_with_one_diagnosis_each(sample):
    files, verdict_en, _ = sample
    at = app().run()
    at.radio(key="mode_en").set_value("compare").run()
    at.file_uploader(key="compare_0").set_value(files).run()
    at.file_uploader(key="compare_1").set_value(
        [("copy-" + name, data, mime) for name, data, mime in files]
    ).run()
    assert not at.exception
    assert alerts(at).count(verdict_en) == 2
    assert len(at.tabs) == 2


def test_log_derived_text_never_reaches_markdown(sample):
    hostile = "**x**<img src=x onerror=alert(1)>.log"
    at = app().run()
    at.file_uploader(key="upload").set_value([(hostile, sample[0][0][1], "text/plain")]).run()
    assert not at.exception
    rendered_as_markdown = [m.value for m in at.markdown] + [c.value for c in at.caption]
    assert not any("onerror" in text for text in rendered_as_markdown)
    assert any(hostile in element.value for element in [*at.text, *at.code])
    assert "unsafe_allow_html" not in APP.read_text()


HOSTILE_NAME = "[x](https://evil.example) ![](https://evil.example/i.png) <img src=x onerror=alert(1)>.log"


def test_a_too_large_run_names_the_file_as_a_literal_code_span(sample, monkeypatch):
    monkeypatch.setenv(MAX_RUN_MB_ENV, "0.0001")  # about 100 bytes: every sample is too large
    at = app().run()
    at.file_uploader(key="upload").set_value([(HOSTILE_NAME, sample[0][0][1], "text/plain")]).run()
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert md_literal(HOSTILE_NAME) in error
    assert error.replace(md_literal(HOSTILE_NAME), "").count("](") == 0


def test_a_chart_that_cannot_be_drawn_leaves_the_diagnosis_and_says_so(sample, monkeypatch):
    import present.figures

    def broken(*args, **kwargs):
        raise IndexError("the downsampler gave up")

    monkeypatch.setattr(present.figures, "build_figure", broken)
    at = app().run()
    at.file_uploader(key="upload").set_value(sample[0]).run()
    assert not at.exception
    assert sample[1] in alerts(at)
    assert t("ui.error.chart", "en") in alerts(at)
    assert not at.get("plotly_chart")
    assert at.dataframe  # the run's facts are still there


def shared_id(at: AppTest) -> str:
    value = at.query_params["d"]
    return value[0] if isinstance(value, list) else value


def test_only_the_analysed_runs_are_stored_in_a_share(sample):
    files = sample[0]
    at = app().run()
    at.radio(key="mode_en").set_value("compare").run()
    at.file_uploader(key="compare_0").set_value(files).run()
    at.file_uploader(key="compare_1").set_value([("weights.bin", bytes(range(256)) * 64, "x")]).run()
    at.button(key="share").click().run()
    assert not at.exception
    share = open_store().load(shared_id(at))
    assert [[name for name, _ in run.files] for run in share.runs] == [[name for name, _, _ in files]]
    at.slider(key="smoothing").set_value(0.2).run()  # same inputs: the link stays
    assert shared_id(at) == share.id


def test_a_share_above_the_cap_gets_a_message_and_no_link(sample, monkeypatch):
    monkeypatch.setenv(MAX_SHARE_MB_ENV, "0.0001")
    at = app().run()
    at.file_uploader(key="upload").set_value(sample[0]).run()
    at.button(key="share").click().run()
    assert not at.exception
    assert any("too large to share" in text for text in alerts(at))
    assert "d" not in at.query_params
    assert sample[1] in alerts(at)


def test_share_then_delete_with_the_owners_link_then_the_link_says_deleted(sample, monkeypatch):
    monkeypatch.setenv(SHARE_DAYS_ENV, "30")
    at = app().run()
    at.file_uploader(key="upload").set_value(sample[0]).run()
    assert "for 30 days" in at.button(key="share").help
    at.button(key="share").click().run()
    share_id = shared_id(at)
    delete_links = [c.value for c in at.code if "&delete=" in c.value]
    assert len(delete_links) == 1 and share_id in delete_links[0]
    token = parse_qs(urlsplit(delete_links[0]).query)["delete"][0]
    assert token != share_id

    viewer = app()
    viewer.query_params["d"] = share_id
    viewer.run()
    assert not any("&delete=" in c.value for c in viewer.code)  # only the owner ever sees it
    assert "delete" not in [b.key for b in viewer.button]

    owner = app()
    owner.query_params["d"] = share_id
    owner.query_params["delete"] = token
    owner.run()
    assert sample[1] in alerts(owner)  # what is about to be deleted is shown
    owner.button(key="delete").click().run()
    assert not owner.exception
    assert t("ui.share.deleted", "en") in alerts(owner)

    later = app()
    later.query_params["d"] = share_id
    later.run()
    assert not later.exception
    assert t("ui.error.share_deleted", "en") in alerts(later)
    assert sample[1] not in alerts(later)


def test_a_wrong_delete_token_deletes_nothing(sample):
    at = app().run()
    at.file_uploader(key="upload").set_value(sample[0]).run()
    at.button(key="share").click().run()
    share_id = shared_id(at)
    other = app()
    other.query_params["d"] = share_id
    other.query_params["delete"] = "A" * 32
    other.run()
    other.button(key="delete").click().run()
    assert t("ui.error.share_bad_token", "en") in alerts(other)
    assert open_store().load(share_id).runs


def test_an_expired_link_says_expired(sample):
    files = [(name, data) for name, data, _ in sample[0]]
    saved = SQLiteStore(lifetime=0.0).save([SharedRun("old run", files)], {})
    at = app()
    at.query_params["d"] = saved.id
    at.run()
    assert not at.exception
    assert t("ui.error.share_expired", "en") in alerts(at)


def test_a_store_error_while_reading_a_shared_run_is_a_message(sample, monkeypatch):
    files = [(name, data) for name, data, _ in sample[0]]
    share_id = open_store().save([SharedRun("run", files)], {}).id
    real_load, calls = ShareStore.load, []

    def load_then_busy(self, sid):
        calls.append(sid)
        if len(calls) > 1:  # the header is read, then the files: the store is busy by then
            raise ShareError("busy")
        return real_load(self, sid)

    monkeypatch.setattr(ShareStore, "load", load_then_busy)
    at = app()
    at.query_params["d"] = share_id
    at.run()
    assert not at.exception
    assert t("ui.error.share_busy", "en") in alerts(at)


def markdown_sources(at: AppTest) -> list[str]:
    """Every string the page hands to Streamlit's Markdown renderer."""
    blocks = [*at.markdown, *at.caption, *at.error, *at.warning, *at.info, *at.success]
    return [b.value for b in blocks] + [e.label for e in at.expander] + [tab.label for tab in at.tabs]


def test_no_file_or_metric_name_reaches_markdown_or_plotly_unescaped(sample, monkeypatch):
    keras = Path(__file__).resolve().parents[2] / "sample_logs" / "keras_dense_overfitting.csv"
    if not keras.is_file():
        pytest.skip("the Keras sample is not in sample_logs/")
    header, *rows = keras.read_text().splitlines()
    metric = "<img src=x onerror=alert(1)> [m](https://evil.example)"
    csv = "\n".join([f"{header},{metric}"] + [f"{row},0.5" for row in rows]).encode()
    monkeypatch.setenv(MAX_RUN_MB_ENV, str(2 * len(csv) / 1024**2))  # the sample run below is too large
    at = app().run()
    at.radio(key="mode_en").set_value("compare").run()
    at.number_input(key="compare_n").set_value(3).run()
    at.file_uploader(key="compare_0").set_value([(HOSTILE_NAME, csv, "text/csv")]).run()
    at.file_uploader(key="compare_1").set_value([("2" + HOSTILE_NAME, csv + b"\n", "text/csv")]).run()
    big = sample[0][0][1] * (1 + 2 * len(csv) // len(sample[0][0][1]))
    at.file_uploader(key="compare_2").set_value([("3" + HOSTILE_NAME, big, "text/plain")]).run()
    assert not at.exception
    sources = markdown_sources(at)
    assert any(md_literal(f"{t('ui.run_n', 'en', n=3)}: 3{HOSTILE_NAME}") in text for text in sources)
    for text in sources:
        for n in (1, 2, 3):
            text = text.replace(
                md_literal(f"{t('ui.run_n', 'en', n=n)}: {'' if n == 1 else n}{HOSTILE_NAME}"), ""
            )
        assert "evil.example" not in text and "onerror" not in text, text
    (chart,) = at.get("plotly_chart")
    names = [trace.get("name", "") for trace in json.loads(chart.proto.spec)["data"]]
    assert any(name.startswith(plot_text(f"{t('ui.run_n', 'en', n=1)}: {HOSTILE_NAME}")) for name in names)
    assert any("&lt;img_src=x_onerror=alert(1)&gt;" in name for name in names)  # the metric, as parsed
    assert not any("<img" in name for name in names)
