"""Loss Doctor: the Streamlit page. Thin: widgets over parsers.load, diagnostics.diagnose, present/, share/.

Log-derived text is only ever shown with st.text / st.code / st.dataframe, or inside Markdown and
plotly labels through present.safe (never raw Markdown or HTML).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from functools import partial

import pandas as pd
import streamlit as st

from diagnostics import corrections, diagnose
from diagnostics.cross_run import CrossRunFinding
from diagnostics.model import Diagnosis
from diagnostics.watch import Watcher
from i18n import LANGUAGES, t
from parsers import ParseError, TrainingLog
from parsers.runs import load_run, split_runs
from present import events, panels, safe, watching
from present.examples import list_examples
from present.figures import ChartSettings, RunView, build_figure
from present.limits import max_run_bytes, share_seconds
from present.report_html import across_runs, build_report, json_report
from share.store import SharedRun, ShareError, ShareStore, open_store, share_link

Files = tuple[tuple[str, bytes], ...]
Analysis = tuple[TrainingLog, Diagnosis | None, str | None, list[corrections.Offer]]
st.set_page_config(page_title="Loss Doctor", page_icon="🩺", layout="wide")


@st.cache_resource
def store() -> ShareStore:
    return open_store()


@st.cache_data(max_entries=64, show_spinner=False)
def share_header(share_id: str) -> tuple[list[tuple[str, int]], dict]:
    """(label, size) of each shared run and the view settings; raises ShareError. Callers check
    first that the share is still live (store().check): this is cached."""
    share = store().load(share_id)
    return [(run.label, sum(len(d) for _, d in run.files)) for run in share.runs], share.settings


@st.cache_data(max_entries=12, show_spinner=False)
def analyse_shared(share_id: str, index: int) -> Analysis:
    """Keyed on the id, so that opening a link does not hash the run's bytes again."""
    return analyse(tuple(store().load(share_id).runs[index].files))


@st.cache_data(max_entries=8, show_spinner=False)
def analyse(files: Files) -> Analysis:
    """Parse + diagnose one run, keyed on its bytes. A failing rule must not hide the curves."""
    log = load_run(list(files))
    try:
        diagnosis = diagnose(log)
    except Exception as err:
        return log, None, f"{type(err).__name__}: {err}", []
    try:
        return log, diagnosis, None, corrections.offers(files, diagnosis)
    except Exception as err:  # no corrected file is offered; the diagnosis still shows
        return log, diagnosis, f"{type(err).__name__}: {err}", []


def fingerprint(runs: list[tuple[str, Files]]) -> tuple:
    """Cheap identity of the inputs (names, sizes, ends): has the shared content changed since?"""
    return tuple((n, len(d), hash(d[:4096]), hash(d[-4096:])) for _, fs in runs for n, d in fs)


def shared_runs(lang: str) -> tuple[list[tuple[str, int]], str | None, str | None]:
    """(label, size) of the runs of the share link in the URL (settings applied once), the share id,
    and an error message."""
    share_id = st.query_params.get("d")
    if not share_id or share_id == st.session_state.get("own_share"):
        return [], None, None
    try:
        store().check(share_id)
        runs, settings = share_header(share_id)
    except ShareError as err:
        return [], None, panels.share_error(err, lang)
    if st.session_state.get("applied_share") != share_id:
        st.session_state.applied_share = share_id
        st.session_state.update(
            {k: v for k, v in settings.items() if k in ("lang", "smoothing", "log_scale", "ignore_outliers")}
        )
    return runs, share_id, None


def uploaded(files: list | None) -> list[tuple[str, Files]]:
    """The uploaded files as runs: one run, or several when they hold several (a zip, a tracker)."""
    if not files:
        return []
    runs = split_upload(tuple((f.name, f.getvalue()) for f in files))
    if len(runs) > 1:
        return runs
    return [(files[0].name + (f" +{len(files) - 1}" if len(files) > 1 else ""), runs[0][1])]


@st.cache_data(max_entries=2, show_spinner=False)  # holds a zip's files decompressed: few entries
def split_upload(files: Files) -> list[tuple[str, Files]]:
    return split_runs(files) or [(files[0][0], files)]


def collect_input(lang: str) -> list[tuple[str, Files]]:
    modes = ["upload", "paste", "example", "compare", "watch"]
    # Keyed per language: relabelled options would otherwise show no selection in the browser.
    index = modes.index(st.session_state.get("input_mode", "upload"))
    mode = st.radio(t("ui.input.mode", lang), modes, index, lambda m: t(f"ui.input.{m}", lang),
                    key=f"mode_{lang}", horizontal=True)  # fmt: skip
    st.session_state.input_mode = mode
    if mode == "upload":
        label = t("ui.upload.label", lang)
        runs = uploaded(st.file_uploader(label, accept_multiple_files=True, key="upload"))
        if len(runs) > 1:
            st.caption(t("ui.upload.runs", lang, count=len(runs)))
        return runs
    if mode == "paste":
        text = st.text_area(t("ui.paste.label", lang), height=180, key="paste")
        return [("pasted.log", (("pasted.log", text.encode("utf-8")),))] if text.strip() else []
    if mode == "watch":
        return []  # drawn by watch_job (a fragment that refreshes itself)
    if mode == "example":
        examples = {e.name: e for e in list_examples()}
        if not examples:
            st.info(t("ui.example.empty", lang))
            return []
        names, describe = list(examples), lambda n: " — ".join(filter(None, [n, examples[n].description]))
        picked = st.multiselect(t("ui.example.label", lang), names, names[:1], describe, key="examples")
        return [(name, tuple(examples[name].files())) for name in picked]
    count = st.number_input(t("ui.compare.count", lang), min_value=2, max_value=6, value=2, key="compare_n")
    columns = st.columns(int(count))
    runs = []
    for i, column in enumerate(columns):
        with column:
            files = st.file_uploader(
                t("ui.compare.run_files", lang, n=i + 1), accept_multiple_files=True, key=f"compare_{i}"
            )
            runs += [(f"{t('ui.run_n', lang, n=i + 1)}: {label}", fs) for label, fs in uploaded(files)]
    return runs


def analyse_runs(
    jobs: list[tuple[str, int, Callable[[], Analysis]]], lang: str
) -> tuple[list[RunView], list[int]]:
    """Run each (label, size in bytes, analysis) job with a progress spinner; errors shown as text.
    Returns the views and the indices of the jobs they came from (only those runs can be shared)."""
    views, analysed = [], []
    for index, (label, size, run_analysis) in enumerate(jobs):
        if size > max_run_bytes():
            limit, size_text = panels.human_size(max_run_bytes()), panels.human_size(size)
            st.error(t("ui.error.too_large", lang, name=safe.md_literal(label), size=size_text, limit=limit))
            continue
        try:
            with st.spinner(t("ui.progress.parsing", lang, size=panels.human_size(size)), show_time=True):
                log, diagnosis, failure, offers = run_analysis()
        except ParseError as err:
            st.error(t("ui.error.parse", lang), icon=":material/block:")
            st.code(str(err), language=None, wrap_lines=True)
            continue
        except ShareError as err:  # a shared run's files could not be read (store busy, just deleted)
            st.error(panels.share_error(err, lang))
            continue
        if failure:
            st.warning(t("ui.error.internal", lang))
            st.code(failure, language=None, wrap_lines=True)
        views.append(RunView(label, log, diagnosis, offers))
        analysed.append(index)
    return views, analysed


def show_evidence(items: list[panels.EvidenceView]) -> None:
    for e in items:
        st.text(f"• {e.text}")
        if e.line:  # the quoted log line, verbatim and as plain text
            st.code(f"{e.source}:{e.line}  {e.quote or ''}".rstrip(), language=None, wrap_lines=True)


def show_diagnosis(view: RunView, lang: str, index: int) -> None:
    d = view.diagnosis
    if d is None:
        return
    v = panels.verdict(d, lang)
    with st.container(key=f"verdict-{index}"):
        getattr(st, v.level)(v.sentence, icon=panels.LEVEL_ICON[v.level])
        if v.summary:
            st.caption(v.summary)
        if d.healthy_on_the_curves and d.unchecked:
            st.caption(t("ui.unchecked.healthy", lang, count=len(d.unchecked)))
    if d.secondary:
        st.caption(t("ui.secondary", lang, symptoms=", ".join(panels.secondary_symptoms(d, lang))))
    st.markdown(f"##### {t('ui.causes', lang)}")
    causes = panels.causes(d, lang)
    if not causes:
        st.caption(t("ui.no_causes", lang))
    for i, cause in enumerate(causes, 1):
        with st.container(border=True):
            st.markdown(f"**{i}. {cause.title}** " + " ".join(f":gray-badge[{r}]" for r in cause.rules))
            pct = round(100 * cause.confidence)
            st.progress(min(max(pct, 0), 100), text=t("ui.confidence", lang, pct=pct))
            show_evidence(cause.evidence)
            for fix in cause.fixes:
                st.text(f"→ {fix.text}")
                if fix.snippet:
                    st.code(fix.snippet, language=panels.HIGHLIGHT.get(fix.language or ""), wrap_lines=True)
            show_offers([o for o in view.offers if o.cause == cause.id], lang, f"{index}-{i}")
    findings = panels.findings(d, lang)
    if findings:
        st.markdown(f"##### {t('ui.findings', lang)}")
    for f in findings:
        with st.expander(f":{panels.BADGE_COLOUR.get(f.severity, 'gray')}-badge[{f.rule}] {f.title}"):
            show_evidence(f.evidence)
            for heading, text in panels.rule_doc(f.rule, lang):
                st.markdown(f"**{heading}** — {text}")
    show_unchecked(panels.unchecked(d, lang), lang)


def show_unchecked(items: list[panels.UncheckedView], lang: str) -> None:
    """The checks a curves-only log gave no settings for, and what to upload to run them."""
    if not items:
        return
    with st.expander(t("ui.unchecked.title", lang, count=len(items)), icon=":material/visibility_off:"):
        st.caption(t("ui.unchecked.intro", lang))
        for item in items:
            st.markdown(f":gray-badge[{item.rule}] **{item.title}**")
            st.caption(f"{t('ui.rule_part.needs', lang)}: {item.needs}")


def show_offers(offers: list[corrections.Offer], lang: str, key: str) -> None:
    """Corrected config files of one cause: the edits, why, and the downloads."""
    if offers:
        st.markdown(f"**{t('ui.corrected_files', lang)}**")
    for offer in offers:
        if len(offers) > 1:
            st.caption(t("ui.correction_option", lang, number=offer.number))
        for line in corrections.summaries(offer.result.edits, lang):
            st.text(line)
        for command in offer.result.commands:
            st.caption(panels.command_caption(command, lang))
            st.code(command, language="bash", wrap_lines=True)
        for name, log_name in offer.result.rebuilt.items():
            st.caption(
                t("ui.rebuilt_from_log", lang, file=safe.md_literal(name), log=safe.md_literal(log_name))
            )
        for name, text in offer.result.files.items():
            label = t("ui.download_corrected", lang, file=safe.md_literal(name))
            data, button_key = corrections.encode(text), f"fixed-{key}-{offer.number}-{name}"
            st.download_button(label, data, name, "text/plain", key=button_key, icon=":material/download:")
        if offer.result.files:
            label, data = t("ui.download_patch", lang), corrections.encode(offer.patch)
            patch_key = f"patch-{key}-{offer.number}"
            st.download_button(
                label, data, offer.patch_name, "text/x-diff", key=patch_key, icon=":material/difference:"
            )


def show_facts(view: RunView, lang: str) -> None:
    rows = panels.facts(view.log, lang)
    values = len(view.log.metrics)
    st.caption(t("ui.progress.done", lang, rows=f"{values:,}", files=len(view.log.sources)))
    st.text(", ".join(view.log.sources))
    if rows:
        frame = pd.DataFrame(rows, columns=[t("ui.fact_name", lang), t("ui.fact_value", lang)])
        st.dataframe(frame, hide_index=True, width="stretch")
    if view.log.meta.hyperparams:
        with st.expander(t("ui.hyperparams", lang, count=len(view.log.meta.hyperparams))):
            st.dataframe(pd.Series(view.log.meta.hyperparams, name=t("ui.fact_value", lang)), width="stretch")
    warnings = panels.warnings(view.log, lang, diagnosis=view.diagnosis)
    if warnings:
        with st.expander(f"{t('ui.warnings.title', lang)} ({len(warnings)})"):
            st.code("\n".join(warnings), language=None, wrap_lines=True)
    show_events(view, lang)


def show_events(view: RunView, lang: str) -> None:
    """Loss-scaler overflows, skipped steps, checkpoints, restarts and fatal errors (parsers/events.py)."""
    count = len(view.log.events)
    if not count:
        return
    with st.expander(f"{t('ui.events.title', lang)} ({count})"):
        st.text(events.summary(view.log, lang))
        if count > events.MAX_ROWS:
            st.caption(t("ui.events.more", lang, shown=events.MAX_ROWS, count=count))
        st.dataframe(events.table(view.log, lang), hide_index=True, width="stretch")


def share_and_download(
    runs: list[tuple[str, Files]],
    views: list[RunView],
    across: list[CrossRunFinding],
    settings: ChartSettings,
    inputs: tuple,
) -> None:
    """The Share and download buttons; Share stores `runs` (the analysed ones) and remembers the
    fingerprint of all the `inputs`, so that the link is dropped when they change."""
    lang = settings.lang
    bar = st.container(horizontal=True, gap="small")
    if runs and bar.button(
        t("ui.share.button", lang),
        icon=":material/share:",
        type="primary",
        key="share",
        help=t("ui.share.help", lang, days=f"{share_seconds() / 86400:g}"),
    ):
        prefs = {
            "lang": lang,
            "smoothing": settings.smoothing,
            "log_scale": settings.log_scale,
            "ignore_outliers": settings.ignore_outliers,
        }
        try:
            saved = store().save([SharedRun(label, list(files)) for label, files in runs], prefs)
        except ShareError as err:
            st.error(panels.share_error(err, lang), icon=":material/error:")
        else:
            st.session_state.update(own_share=saved.id, own_saved=saved, own_fingerprint=inputs)
            st.query_params["d"] = saved.id
    report = json.dumps(json_report(views, across, lang), indent=2, ensure_ascii=False)
    downloads = {
        "json": (report, "diagnosis.json", "application/json"),
        "html": (lambda: build_report(views, settings, across), "loss-doctor-report.html", "text/html"),
    }
    for kind, (data, name, mime) in downloads.items():
        bar.download_button(t(f"ui.download.{kind}", lang), data, name, mime, on_click="ignore", key=kind)
    share_id = st.query_params.get("d")
    if share_id:
        st.text(t("ui.share.done", lang))
        with st.container(key="share-link"):
            st.code(share_link(st.context.url or "", share_id), language=None)
        saved = st.session_state.get("own_saved")
        if saved is not None and saved.id == share_id:  # the owner's session: the delete link, this once
            st.caption(t("ui.share.expires", lang, date=panels.day(saved.expires)))
            st.text(t("ui.share.delete_once", lang))
            with st.container(key="delete-link"):
                st.code(share_link(st.context.url or "", share_id, saved.delete_token), language=None)


def offer_delete(lang: str) -> None:
    """The owner's delete link (?d=<id>&delete=<token>) asks once, then deletes the share."""
    share_id, token = st.query_params.get("d", ""), st.query_params.get("delete", "")
    with st.container(border=True, key="delete-box"):
        st.warning(t("ui.share.delete_prompt", lang), icon=":material/delete:")
        if not st.button(t("ui.share.delete_button", lang), key="delete", type="primary"):
            return
        try:
            store().delete(share_id, token)
        except ShareError as err:
            st.error(panels.share_error(err, lang))
            return
    st.session_state.pop("own_saved", None)
    st.session_state.deleted_share = True
    st.query_params.clear()
    st.rerun()


def show_comparison(views: list[RunView], across: list[CrossRunFinding], lang: str) -> None:
    rows = panels.differing_parameters([(v.label, v.log) for v in views])
    st.markdown(f"##### {t('ui.compare.differs', lang)}")
    if rows:
        frame = pd.DataFrame(rows).rename(columns={"parameter": t("ui.compare.parameter", lang)})
        st.dataframe(frame, hide_index=True)
    else:
        st.caption(t("ui.compare.same", lang))
    show_cross_run(across, lang)
    titles = [panels.verdict(v.diagnosis, lang).title if v.diagnosis else "?" for v in views]
    tabs = st.tabs([f"{t('ui.run_n', lang, n=i + 1)} · {title}" for i, title in enumerate(titles)])
    for index, (tab, view) in enumerate(zip(tabs, views, strict=True)):
        with tab:
            st.text(view.label)
            diagnosis_col, facts_col = st.columns([3, 2], gap="large")
            with diagnosis_col:
                show_diagnosis(view, lang, index)
            with facts_col:
                show_facts(view, lang)


def show_cross_run(found: list[CrossRunFinding], lang: str) -> None:
    """What only the runs together show (LD5xx): loss spikes at the same step in several runs."""
    st.markdown(f"##### {t('ui.cross_run.title', lang)}")
    if not found:
        st.caption(t("ui.cross_run.none", lang))
    for f in found:
        with st.container(border=True, key=f"cross-run-{f.rule}"):
            st.markdown(f":{panels.BADGE_COLOUR.get(f.severity, 'gray')}-badge[{f.rule}] **{f.title(lang)}**")
            show_evidence(panels.evidence_views(f.evidence, lang))
            for fix in f.fixes:
                st.text(f"→ {fix.text(lang)}")
            with st.expander(t("ui.cross_run.about", lang, rule=f.rule)):
                for heading, text in panels.rule_doc(f.rule, lang):
                    st.markdown(f"**{heading}** — {text}")


def watch_job(lang: str, settings: ChartSettings) -> None:
    """'Watch a running job': a server path (under LOSS_DOCTOR_WATCH_DIRS) followed by a fragment
    that polls it every few seconds; the chart, verdict and early warnings grow with the log."""
    where, every = st.columns([5, 1])
    text = where.text_input(t("ui.watch.path", lang), key="watch_path", help=t("ui.watch.path_help", lang))
    seconds = every.number_input(t("ui.watch.interval", lang), 1, 600, 5, key="watch_interval")
    live = st.toggle(t("ui.watch.live", lang), True, key="watch_live")
    if watching.allowed_dirs():
        st.caption(t("ui.watch.allowed", lang, dirs=watching.dirs_text()))
    try:
        path = watching.watch_path(text, lang)
    except watching.WatchRefused as refused:
        (st.info if not text.strip() else st.error)(str(refused), icon=":material/visibility_off:")
        return
    if st.session_state.get("watcher_path") != path:  # a new path: follow it from its start
        st.session_state.update(watcher_path=path, watcher=Watcher(path), watch_state=None)
    st.fragment(run_every=seconds if live else None)(follow)(lang, settings)


def follow(lang: str, settings: ChartSettings) -> None:
    """One refresh: read what was appended, re-diagnose when due, draw the last state. The figure is
    built before anything is drawn (and only for a new state), so a refresh replaces the page at once."""
    watcher: Watcher = st.session_state.watcher
    poll = watcher.poll()
    if watcher.bytes_read > max_run_bytes():  # the page's cap on a run holds for a watched one too
        size, limit = panels.human_size(watcher.bytes_read), panels.human_size(max_run_bytes())
        name = safe.md_literal(watcher.path.name)
        st.error(t("ui.error.too_large", lang, name=name, size=size, limit=limit))
        return
    for name, reason in poll.restarted.items():
        st.toast(t(f"watch.{reason}", lang, file=safe.md_literal(name)), icon=":material/restart_alt:")
    if watcher.due():
        st.session_state.watch_state = watcher.diagnose()
    state = st.session_state.watch_state
    if state is None:
        return
    view = RunView(str(watcher.path.name), state.log, state.diagnosis) if state.log is not None else None
    drawn = st.session_state.get("watch_figure")
    if view is not None and (drawn is None or drawn[0] != (state.read_at, settings)):
        build = partial(watching.watch_figure, view, settings, list(watcher.history))
        drawn = (state.read_at, settings), panels.chart_or_message(build, lang)
        st.session_state.watch_figure = drawn
    with st.container(key="watch-status"):
        st.caption(watching.status_line(state, time.time(), watcher.bytes_read, lang))
    if view is None or drawn is None:
        st.info(t("watch.unreadable_yet", lang, error=""), icon=":material/hourglass_empty:")
        st.code(state.error or "", language=None, wrap_lines=True)  # may quote the log: plain text
        return
    chart, side = st.columns([3, 2], gap="large")
    with side:
        with st.container(key="watch-warnings"):
            for w in state.warnings:
                heading = t("ui.watch.warning", lang, rule=w.rule, title=w.title(lang), step=w.step)
                st.warning(f"{heading} — {w.horizon_text(lang)}", icon=":material/warning:")
                for e in w.evidence:
                    st.text(f"• {e.text(lang)}")
            earlier = [w for w in watcher.history if w not in state.warnings]
            if earlier:
                with st.expander(t("ui.watch.earlier", lang, count=len(earlier))):
                    for w in earlier:
                        st.text(f"{w.rule} {w.title(lang)} @ {w.step}: {w.evidence[0].text(lang)}")
        show_diagnosis(view, lang, 0)
    figure, failure = drawn[1]
    if figure is None:
        chart.warning(failure, icon=":material/broken_image:")
    else:
        chart.plotly_chart(figure, theme=None, config={"displaylogo": False}, key="watch-chart")


def main() -> None:
    defaults = {"lang": "en", "smoothing": 0.6, "log_scale": False, "ignore_outliers": True}
    for key, value in defaults.items():
        st.session_state.setdefault(key, value)
    shared_sizes, share_id, share_error = shared_runs(st.session_state.lang)
    with st.sidebar:
        lang = st.radio("Language / 语言", list(LANGUAGES), format_func=LANGUAGES.get, key="lang")
        st.subheader(t("ui.settings", lang))
        smoothing = st.slider(
            t("ui.smoothing", lang), 0.0, 0.99, step=0.01, key="smoothing", help=t("ui.smoothing_help", lang)
        )
        log_scale = st.toggle(t("ui.log_scale", lang), key="log_scale")
        ignore_outliers = st.toggle(
            t("ui.ignore_outliers", lang), key="ignore_outliers", help=t("ui.ignore_outliers_help", lang)
        )
    st.title(f":material/monitor_heart: {t('ui.app_title', lang)}")
    st.caption(t("ui.tagline", lang))
    if st.session_state.pop("deleted_share", False):
        st.success(t("ui.share.deleted", lang), icon=":material/delete:")
    if st.query_params.get("delete") and not share_error:
        offer_delete(lang)
    if share_error:
        st.error(share_error)
    runs: list[tuple[str, Files]] = []
    if share_id:
        info, button = st.columns([4, 1])
        info.info(t("ui.share.viewing", lang), icon=":material/link:")
        if button.button(t("ui.share.new", lang), key="new"):
            st.query_params.clear()
            st.rerun()
        jobs = [
            (label, size, partial(analyse_shared, share_id, i))
            for i, (label, size) in enumerate(shared_sizes)
        ]
    else:
        runs = collect_input(lang)
        if st.session_state.input_mode == "watch":
            settings = ChartSettings(smoothing, log_scale, ignore_outliers, lang=lang)
            return watch_job(lang, settings)
        if st.query_params.get("d") and st.session_state.get("own_fingerprint") != fingerprint(runs):
            del st.query_params["d"]  # the inputs changed since sharing: the link no longer matches
        jobs = [(label, sum(len(d) for _, d in files), partial(analyse, files)) for label, files in runs]
    views, analysed = analyse_runs(jobs, lang)
    if not views:
        if not jobs:
            st.info(t("ui.empty_state", lang), icon=":material/upload_file:")
        return
    settings = ChartSettings(
        smoothing=smoothing, log_scale=log_scale, ignore_outliers=ignore_outliers, lang=lang
    )
    # Only the runs that were analysed are shared (not a failed upload beside them); none on a shared page.
    across = across_runs(views)  # what only the runs together show: the page, the JSON and the report
    shared = [runs[i] for i in analysed] if runs else []
    share_and_download(shared, views, across, settings, fingerprint(runs))
    if len(views) == 1:  # the diagnosis is written first: it shows while the figure is being built
        chart, side = st.columns([3, 2], gap="large")
        with side:
            show_diagnosis(views[0], lang, 0)
        slot = chart.empty()
        with chart:
            show_facts(views[0], lang)
    else:
        slot = st.empty()
        show_comparison(views, across, lang)
    figure, failure = panels.chart_or_message(partial(build_figure, views, settings), lang)
    if figure is None:  # the diagnosis above stays; only the chart is replaced by a message
        slot.warning(failure, icon=":material/broken_image:")
    else:
        config = {"displaylogo": False, "scrollZoom": True}
        slot.plotly_chart(figure, theme=None, config=config, key="chart")


main()
