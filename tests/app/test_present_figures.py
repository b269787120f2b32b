"""Figures, panels and the HTML report, built from hand-made TrainingLog + Diagnosis objects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from diagnostics import diagnose
from diagnostics.model import Cause, Diagnosis, Evidence, Finding, Fix, SymptomResult
from i18n import catalogue
from parsers import load_paths
from parsers.model import BatchNormLayer, LogLine, RunMeta, TrainingLog, frame_from_columns
from present import panels
from present.figures import ChartSettings, RunView, build_figure, lr_decay_steps
from present.report_html import across_runs, build_report, json_report

HOSTILE = "<script>alert('x')</script> **bold** <img src=x onerror=alert(1)>"


def _any_key(prefix: str) -> str:
    keys = [k for k in catalogue() if k.startswith(prefix)]
    if not keys:
        pytest.skip(f"no catalogue entry {prefix}* yet")
    return keys[0]


def make_log(n: int = 2000, nan_steps: tuple[int, ...] = (), lr_policy: str | None = None) -> TrainingLog:
    steps = np.arange(n)
    loss = np.exp(-steps / (n / 3)) + 0.1
    loss[list(nan_steps)] = np.nan
    lr = np.where(steps < n // 2, 0.1, 0.01)
    val = steps[:: max(n // 20, 1)]
    frame = frame_from_columns(
        {
            "step": np.concatenate([steps, steps, val]),
            "split": ["train"] * (2 * n) + ["val"] * len(val),
            "metric": ["loss"] * n + ["lr"] * n + ["loss"] * len(val),
            "value": np.concatenate([loss, lr, np.full(len(val), 0.5)]),
            "line": np.concatenate([steps + 1, steps + 1, val + 1]),
        }
    )
    meta = RunMeta(framework="caffe", base_lr=0.1, lr_policy=lr_policy, momentum=0.9)
    meta.batchnorm = [BatchNormLayer("bn1", "train", True), BatchNormLayer("bn2", "any", None)]
    return TrainingLog(frame, meta, sources=[f"train{HOSTILE}.log"])


def make_diagnosis() -> Diagnosis:
    evidence_key = _any_key("ui.warnings.skipped")  # a real catalogue sentence with a {count} field
    rule = _any_key("rules.").split(".")[1]
    quote = LogLine("train.log", 1234, HOSTILE)
    return Diagnosis(
        format="caffe_glog",
        framework="caffe",
        symptom=SymptomResult("nan", 0.87, onset_step=1500, rule=rule),
        causes=[
            Cause("lr_too_high", 0.4, [Evidence(evidence_key, {"count": 3})], rules=[rule]),
            Cause(
                "bn_stats",
                0.9,
                [Evidence(evidence_key, {"count": 7}, step=10, quote=quote)],
                [Fix(evidence_key, {"count": 1}, snippet="use_global_stats: false", snippet_lang="prototxt")],
                [rule],
            ),
        ],
        findings=[
            Finding(rule, "warning", [Evidence(evidence_key, {"count": 1})], step=100, step_end=900),
            Finding(rule, "critical", [Evidence(evidence_key, {"count": 2}, quote=quote)], step=1500),
        ],
    )


def test_figure_has_panels_nan_markers_and_shaded_findings():
    log = make_log(nan_steps=(1500, 1501))
    fig = build_figure([RunView("run", log, make_diagnosis())], ChartSettings(smoothing=0.6))
    markers = [tr for tr in fig.data if tr.marker.symbol == "x"]
    assert len(markers) == 1 and list(markers[0].x) == [1500, 1501]
    assert "nan" in markers[0].text[0] and "1500" in markers[0].text[0]
    assert [tr.opacity for tr in fig.data if "train" in tr.name and tr.yaxis == "y"] == [0.25, None]
    rects = [s for s in fig.layout.shapes if s.type == "rect"]
    assert rects and rects[0].x0 == 100 and rects[0].x1 == 900
    assert any(s.type == "line" and s.x0 == 1500 for s in fig.layout.shapes)
    assert {a.text for a in fig.layout.annotations} >= {"Loss", "Learning rate"}


def test_log_scale_and_lr_axis():
    fig = build_figure([RunView("run", make_log())], ChartSettings(log_scale=True, smoothing=0.0))
    assert fig.layout.yaxis.type == "log"


def test_lr_decays_come_from_solver_params_or_lr_drops():
    log = make_log(n=1000, lr_policy="multistep")
    log.meta.lr_params = {"stepvalue": [300, 600, 5000]}
    assert lr_decay_steps(log) == [300, 600]
    log.meta.lr_policy, log.meta.lr_params = "step", {"stepsize": 400}
    assert lr_decay_steps(log) == [400, 800]
    log.meta.lr_policy = None
    assert lr_decay_steps(log) == [500]


def test_only_the_first_lr_decay_is_labelled_and_no_label_is_empty():
    """Every annotation carries text: plotly shows an empty one as "new text", which stacked up over a
    cosine tail whose every logged point is a decay."""
    log = make_log(n=1000)
    lr = log.metrics["metric"] == "lr"
    log.metrics.loc[lr, "value"] = 0.1 * 0.5 ** np.maximum(0, log.metrics.loc[lr, "step"].to_numpy() - 990)
    assert len(lr_decay_steps(log)) == 9
    fig = build_figure([RunView("run", log)], ChartSettings(smoothing=0.0))
    texts = [a.text for a in fig.layout.annotations]
    assert all(texts) and texts.count("lr decay") == 1


def test_big_series_are_downsampled_with_webgl():
    fig = build_figure([RunView("run", make_log(n=200_000))], ChartSettings(smoothing=0.0, max_points=3000))
    train = [tr for tr in fig.data if tr.type == "scattergl"]
    assert train and all(len(tr.x) <= 3000 for tr in train)


def test_compare_overlays_runs_and_lists_differing_parameters():
    a, b = make_log(), make_log()
    b.meta.base_lr = 0.01
    fig = build_figure([RunView("a", a), RunView("b", b)], ChartSettings(smoothing=0.0))
    assert {tr.name.split(" · ")[0] for tr in fig.data} == {"a", "b"}
    rows = panels.differing_parameters([("a", a), ("b", b)])
    assert rows == [{"parameter": "base_lr", "a": "0.1", "b": "0.01"}]


def test_panels_rank_causes_and_keep_quotes_verbatim():
    d = make_diagnosis()
    causes = panels.causes(d, "en")
    assert [c.confidence for c in causes] == [0.9, 0.4]
    assert causes[0].evidence[0].quote == HOSTILE and causes[0].evidence[0].line == 1234
    assert [f.severity for f in panels.findings(d, "en")] == ["critical", "warning"]
    verdict = panels.verdict(d, "zh")
    assert "1500" in verdict.sentence and "87" in verdict.sentence
    facts = dict(panels.facts(make_log(), "en"))
    assert facts["base learning rate"] == "0.1" and "1 use global statistics" in facts["BatchNorm"]


def test_report_is_standalone_and_escapes_log_text():
    page = build_report(
        [RunView(f"run{HOSTILE}", make_log(nan_steps=(5,)), make_diagnosis())], ChartSettings(), []
    )
    assert HOSTILE not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "<script src=" not in page and "Plotly.newPlot" in page and len(page) > 1_000_000
    assert "use_global_stats: false" in page


def test_metrics_outside_the_known_panels_get_their_own_panel():
    frame = frame_from_columns(
        {
            "step": np.tile(np.arange(50), 2),
            "split": ["train"] * 100,
            "metric": ["loss"] * 50 + ["loss_cls"] * 50,
            "value": np.ones(100),
        }
    )
    fig = build_figure([RunView("run", TrainingLog(frame, RunMeta()))], ChartSettings(smoothing=0.0))
    assert "Other metrics" in {a.text for a in fig.layout.annotations}
    assert any(tr.name == "train loss_cls" for tr in fig.data)


def test_a_sample_counter_is_a_position_not_a_curve_to_draw():
    """Megatron's `consumed samples` (kept for LD501's alignment) is not drawn among the other metrics."""
    path = Path(__file__).resolve().parents[2] / "sample_logs/cross_run/bad_data_seed5_rampup_megatron.log"
    log = load_paths([path])
    assert len(log.series("consumed_samples")) > 400
    fig = build_figure([RunView("run", log)], ChartSettings(smoothing=0.0))
    names = {tr.name for tr in fig.data}
    assert {"train loss", "train skipped_iters"} <= names
    assert not any("consumed" in (name or "") for name in names)


def test_a_constant_lr_is_drawn_around_its_value_not_around_zero():
    log = make_log(n=100)
    log.metrics.loc[log.metrics["metric"] == "lr", "value"] = 0.01
    fig = build_figure([RunView("run", log)], ChartSettings(smoothing=0.0))
    assert tuple(fig.layout.yaxis2.range) == (0.005, 0.015)


def test_a_run_without_any_loss_still_draws_with_log_scale_on():
    frame = frame_from_columns(
        {
            "step": np.arange(30),
            "split": ["val"] * 30,
            "metric": ["accuracy"] * 30,
            "value": np.linspace(0, 1, 30),
        }
    )
    fig = build_figure(
        [RunView("run", TrainingLog(frame, RunMeta()))], ChartSettings(log_scale=True, smoothing=0.0)
    )
    assert [tr.name for tr in fig.data] == ["val accuracy"]


def test_failed_rules_are_listed_with_the_parse_warnings():
    diagnosis = make_diagnosis()
    diagnosis.errors = [("LD999", "ZeroDivisionError: division by zero")]
    lines = panels.warnings(make_log(), "en", diagnosis=diagnosis)
    assert any("LD999" in line and "ZeroDivisionError" in line for line in lines)


def test_a_far_off_point_does_not_flatten_the_loss_panel_unless_asked():
    log = make_log(400)
    frame = log.metrics
    # Caffe's test pass before any update reports 87.3 while the run lives between 0.1 and 1.1
    first_val = frame.index[(frame["split"] == "val") & (frame["metric"] == "loss")][0]
    frame.loc[first_val, "value"] = 87.3365
    fitted = build_figure([RunView("run", log)], ChartSettings(smoothing=0.0))
    low, high = fitted.layout.yaxis.range
    assert 1.0 < high < 3.0 and low >= 0.1  # the bulk of the curve fills the panel
    assert any(87.3365 in np.asarray(tr.y, dtype=float) for tr in fitted.data if tr.y is not None)
    everything = build_figure([RunView("run", log)], ChartSettings(smoothing=0.0, ignore_outliers=False))
    assert everything.layout.yaxis.range is None


def test_labels_run_into_the_wider_side_of_their_marker():
    """An early onset's label goes right of its line (left of it, plotly would stretch the step axis
    into negative steps); a late one goes left."""
    for onset, side in ((100, "left"), (1900, "right")):
        diagnosis = make_diagnosis()
        diagnosis.symptom.onset_step = onset
        fig = build_figure([RunView("run", make_log(), diagnosis)], ChartSettings(smoothing=0.0))
        onset_labels = [a for a in fig.layout.annotations if a.x == onset]
        assert onset_labels and all(a.xanchor == side for a in onset_labels)


def test_compare_onset_markers_name_the_run_number_not_its_long_label():
    runs = [RunView("Run 1: " + "x" * 200 + ".log", make_log(), make_diagnosis()) for _ in range(2)]
    texts = [a.text for a in build_figure(runs).layout.annotations if a.text and "onset" in a.text]
    assert sorted(texts) == ["Run 1: onset: NaN / inf loss", "Run 2: onset: NaN / inf loss"]


def test_a_failing_figure_builder_gives_a_message_not_an_exception(caplog):
    def broken() -> None:
        raise IndexError("8,000 points at one step")

    figure, message = panels.chart_or_message(broken, "zh")
    assert figure is None
    assert message == catalogue()["ui.error.chart"]["zh"]
    assert "8,000 points at one step" in caplog.text  # the operator's log keeps the traceback


def test_the_report_keeps_the_diagnosis_when_its_chart_fails(monkeypatch):
    import present.report_html

    def broken(*args, **kwargs):
        raise IndexError("8,000 points at one step")

    monkeypatch.setattr(present.report_html, "build_figure", broken)
    page = build_report([RunView("a.log", make_log(200), make_diagnosis())], ChartSettings(lang="en"), [])
    assert catalogue()["ui.error.chart"]["en"].split("(")[0] in page
    assert panels.verdict(make_diagnosis(), "en").title in page


def test_a_working_figure_builder_passes_its_figure_through():
    figure = build_figure([RunView("a.log", make_log(50))])
    assert panels.chart_or_message(lambda: figure, "en") == (figure, None)


# Every ShareError kind share/store.py raises (its docstrings and tests name them).
SHARE_ERROR_KINDS = [
    "malformed", "unknown", "expired", "deleted", "bad_token", "too_large", "too_big", "busy", "full", "unavailable"
]  # fmt: skip


@pytest.mark.parametrize("kind", SHARE_ERROR_KINDS)
def test_every_share_error_has_a_message_in_both_languages(kind):
    from share.store import ShareError

    err = (
        ShareError(kind, size=300 * 1024**2, limit=100 * 1024**2) if kind == "too_large" else ShareError(kind)
    )
    for lang in ("en", "zh"):
        text = panels.share_error(err, lang)
        assert text and "{" not in text
    if kind == "too_large":
        assert "300.0 MB" in text and "100.0 MB" in text


def test_json_and_html_reports_carry_the_spikes_shared_across_runs():
    """The page's downloads say what the compare view says: LD501 on two runs that met the same bad
    samples (sample_logs/cross_run), nothing across two clean runs."""
    folder = Path(__file__).resolve().parents[2] / "sample_logs" / "cross_run"

    def views(*names: str) -> list[RunView]:
        logs = [load_paths([folder / name]) for name in names]
        return [RunView(name, log, diagnose(log)) for name, log in zip(names, logs, strict=True)]

    bad = views("bad_data_seed1_lr1e-3.log", "bad_data_seed2_lr6e-4.log")
    report = json_report(bad, across_runs(bad), "en")
    assert [r["run"] for r in report] == ["bad_data_seed1_lr1e-3.log", "bad_data_seed2_lr6e-4.log"]
    assert all([f["rule"] for f in r["cross_run"]] == ["LD501"] for r in report)
    page = build_report(bad, ChartSettings(), across_runs(bad))
    assert "LD501" in page and "bad_data_seed2_lr6e-4.log:318" in page
    clean = views("clean_seed1_lr1e-3.log", "clean_seed2_lr6e-4.log")
    assert across_runs(clean) == [] and across_runs(bad[:1]) == []
    assert all(r["cross_run"] == [] for r in json_report(clean, [], "en"))
    assert "LD501" not in build_report(clean, ChartSettings(), [])
    single = json_report(bad[:1], [], "en")
    assert "cross_run" not in single[0]


def test_a_resumed_jobs_relogged_steps_do_not_zigzag_on_the_chart():
    """nanoGPT killed after 350 and resumed at 300 logs 300-350 twice; the loss trace shows the resumed
    job's points there, in step order (parsers.model.purge_orphans), not both jobs interleaved."""
    path = Path(__file__).resolve().parents[2] / "sample_logs/llm/restart/nanogpt_resumed_dirty_shard.log"
    log = load_paths([path])
    fig = build_figure([RunView("run", log, diagnose(log))], ChartSettings(smoothing=0.0))
    (trace,) = [tr for tr in fig.data if tr.name == "train loss"]
    x, y = np.asarray(trace.x), np.asarray(trace.y)
    assert len(x) == 61 and bool(np.all(np.diff(x) > 0))
    assert y[x == 300].tolist() == [3.042]


def test_marker_labels_near_one_another_do_not_overlap():
    """A real summed-loss run of the training split (TensorBoard events): the flat onset (step 2), LD108
    (step 4) and LD114 (step 5) sit within a label's width; the onset keeps the top, one more label takes
    the bottom, the rest are bare lines."""
    run = Path(__file__).resolve().parents[2] / "sample_logs" / "corpus" / "runs" / "cnn_073_sum_reduction"
    log = load_paths(sorted(run.iterdir()))
    d = diagnose(log)
    fig = build_figure([RunView("run", log, d)], ChartSettings())
    marks = [a for a in fig.layout.annotations if isinstance(a.x, int | float) and a.x >= 1 and a.text]
    placed = [(a.x, a.yanchor, a.y) for a in marks]
    assert len(placed) == len(set(placed))  # no two labels at the same step and edge
    onset = next(a for a in marks if a.text.startswith("onset"))
    assert onset.y == 1  # the verdict's onset keeps the top
    near = [a for a in marks if abs(a.x - d.symptom.onset_step) < 10]
    assert {a.y for a in near} == {0, 1}  # one at the top, one at the bottom
    stepped = [f for f in d.findings if f.step is not None and abs(f.step - d.symptom.onset_step) < 10]
    assert len(near) < len(stepped)  # the rest stay unlabelled


def test_label_slots_fill_top_then_bottom_then_give_up():
    from present.figures import LabelSlots

    slots = LabelSlots((0.0, 1000.0))
    assert slots.place(100) == "top right"
    assert slots.place(150) == "bottom right"
    assert slots.place(120) is None
    assert slots.place(900) == "top left"  # far away: the top is free again, on the wider side


def test_a_loss_under_another_name_is_drawn_in_the_loss_panel():
    """`xent` / `val_xent` (no "loss" in the name) is the loss the diagnosis judges, so it is drawn there,
    with the log-scale switch and the smoothing of a loss."""
    frame = frame_from_columns(
        {
            "step": np.tile(np.arange(40), 3),
            "split": ["train"] * 40 + ["val"] * 40 + ["val"] * 40,
            "metric": ["xent"] * 80 + ["accuracy"] * 40,
            "value": np.concatenate(
                [np.linspace(2.3, 0.4, 40), np.linspace(2.3, 0.6, 40), np.linspace(0, 1, 40)]
            ),
        }
    )
    fig = build_figure([RunView("run", TrainingLog(frame, RunMeta()))], ChartSettings(smoothing=0.0))
    annotations = {a.text for a in fig.layout.annotations}
    assert "Loss" in annotations and "Other metrics" not in annotations
    assert {tr.name for tr in fig.data if tr.yaxis == "y"} == {"train xent", "val xent"}
