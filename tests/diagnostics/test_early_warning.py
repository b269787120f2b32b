"""Early warnings: a layer beside the diagnosis (never part of it), rules that fire before the NaN of
real runs and stay quiet on healthy ones, fitted thresholds, documented in both languages."""

from __future__ import annotations

import csv
import dataclasses
import os

import numpy as np
import pytest
from diag_helpers import SAMPLE_LOGS, make_log

from diagnostics import diagnose, early_warning_fit
from diagnostics.early_warning import (
    PARAMS,
    PARAMS_FILE,
    WARNING_RULES,
    WarningParams,
    early_warnings,
    judge,
    signals_of,
)
from diagnostics.registry import all_rules
from i18n import catalogue
from parsers import load_paths
from parsers.model import frame_from_columns

CORPUS_RUNS = SAMPLE_LOGS / "corpus" / "runs"


def _prefix_warnings(path) -> list[tuple[int, str]]:
    """(step, rule) of every warning over the prefixes of a run, as a watch would have seen them."""
    signals = signals_of(load_paths([path]))
    out = []
    for step in np.unique(signals.loss.steps):
        out += [(int(step), w.rule) for w in judge(signals.upto(int(step)), PARAMS)]
    return out


def test_warnings_are_not_rules_of_the_diagnosis():
    ids = {r.id for r in all_rules()}
    assert not ids & {w.id for w in WARNING_RULES}
    log = load_paths([CORPUS_RUNS / "cnn_043_garbage_every17"])
    before = diagnose(log).to_json()
    assert early_warnings(log) == [] and diagnose(log).to_json() == before  # NaN reached: no warning


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="the corpus is absent")
def test_a_real_run_is_warned_before_its_nan():
    case = early_warning_fit.make_case((str(CORPUS_RUNS / "cnn_043_garbage_every17"), "cnn_043", "nan"))
    assert case.onset == 55
    warned = _prefix_warnings(CORPUS_RUNS / "cnn_043_garbage_every17")
    assert warned and warned[0][0] < case.onset and warned[0][1] == "LD403"


@pytest.mark.parametrize(
    "name", ["torch_mlp_sgd_healthy.log", "lightning_warmup_cosine_healthy", "hf_adamw_eval_healthy"]
)
def test_healthy_sample_runs_are_never_warned(name):
    assert _prefix_warnings(SAMPLE_LOGS / name) == []


def test_grad_norm_growth_and_horizon():
    steps = np.arange(40) * 10
    loss = np.r_[np.linspace(2.0, 1.0, 36), [1.3, 2.0, 3.5, 6.0]]
    grad = np.r_[np.full(36, 1.0), [3.0, 25.0, 60.0, 140.0]]
    log = make_log(loss, steps)
    extra = frame_from_columns(
        {"step": steps, "split": ["train"] * 40, "metric": ["grad_norm"] * 40, "value": grad}
    )
    log.metrics = early_warning_fit_concat(log.metrics, extra)
    assert "LD401" not in {w.rule for w in early_warnings(log)}  # switched off by the fit (below)
    warnings = {w.rule: w for w in early_warnings(log, dataclasses.replace(PARAMS, ld401_on=True))}
    assert "LD401" in warnings
    w = warnings["LD401"]
    assert w.step == 390 and w.horizon is not None and w.horizon > 0
    assert "x its recent median" in w.evidence[0].text("en") and "倍" in w.evidence[0].text("zh")
    assert w.to_json()["severity"] == "warning"


def early_warning_fit_concat(a, b):
    import pandas as pd

    cats = ["split", "metric", "name", "source"]
    out = pd.concat(
        [a.astype(dict.fromkeys(cats, str)), b.astype(dict.fromkeys(cats, str))], ignore_index=True
    )
    return out.astype(dict.fromkeys(cats, "category"))


def test_loss_scale_collapse_from_dynamic_scaler_arithmetic():
    """A dynamic scaler halves on every overflow and doubles after `growth_interval` clean steps."""
    scale, values, grads = 65536.0, [], []
    for i in range(60):
        overflow = i >= 50  # from step 50 on, every step overflows (its gradient norm is inf)
        scale = scale / 2 if overflow else (scale * 2 if i % 20 == 19 else scale)
        values.append(scale)
        grads.append(np.inf if overflow else 1.0)
    steps = np.arange(60)
    log = make_log(np.linspace(3.0, 2.5, 60), steps)
    extra = frame_from_columns(
        {
            "step": np.r_[steps, steps],
            "split": ["train"] * 120,
            "metric": ["loss_scale"] * 60 + ["grad_norm"] * 60,
            "value": values + grads,
        }
    )
    log.metrics = early_warning_fit_concat(log.metrics, extra)
    warnings = {w.rule: w for w in early_warnings(log)}
    assert "LD402" in warnings and warnings["LD402"].horizon >= 0  # skipped steps are no NaN yet
    assert "LD401" not in warnings  # an inf gradient norm of a skipped step is not growth
    early = make_log(np.linspace(3.0, 2.5, 45), steps[:45])
    early.metrics = early_warning_fit_concat(early.metrics, extra[extra["step"] < 45])
    assert "LD402" not in {w.rule for w in early_warnings(early)}


def test_catch_up_judges_every_point_since_the_last_poll():
    loss = np.r_[np.linspace(2.3, 0.5, 30), [12.0, 15.0, 0.6, 0.55]]  # a rise that has passed by the poll
    log = make_log(loss)
    assert early_warnings(log) == []
    assert [w.rule for w in early_warnings(log, since=29 * 20)] == ["LD403"]


def test_the_fit_switches_off_the_rules_that_only_ever_warned_healthy_runs():
    """On the training split LD401 (grad-norm growth) and LD404 (taller spikes) warned first on none of
    the runs that went NaN or blew up, and each warned a healthy run: off, they lose no lead time."""
    assert [r for r in ("LD401", "LD402", "LD403", "LD404", "LD405") if not PARAMS.is_on(r)] == [
        "LD401",
        "LD404",
    ]
    cases = early_warning_fit.load_cases(early_warning_fit.corpus_tasks("train"), jobs=2)
    on = dataclasses.replace(PARAMS, ld401_on=True, ld404_on=True)
    with_them = early_warning_fit.score(cases, early_warning_fit.all_firsts(cases, on))
    without = early_warning_fit.score(cases, early_warning_fit.all_firsts(cases, PARAMS))
    assert with_them.by_rule["LD401"] == with_them.by_rule["LD404"] == 0
    assert with_them.false_by_rule["LD401"] >= 1 and with_them.false_by_rule["LD404"] >= 1
    assert (without.warned, without.leads) == (with_them.warned, with_them.leads)
    assert without.healthy_warned < with_them.healthy_warned


def test_fitted_thresholds_are_on_their_grids():
    for f in dataclasses.fields(WarningParams):
        assert getattr(PARAMS, f.name) in f.metadata["grid"]
    assert PARAMS_FILE.exists()


@pytest.mark.skipif(
    os.environ.get("LOSS_DOCTOR_FIT_CHECK") != "1", reason="the fit takes about 4 min (CI sets it)"
)
def test_fit_gives_the_committed_thresholds():
    assert early_warning_fit.main(["--check", "--jobs", "2"]) == 0


@pytest.mark.parametrize("rule", WARNING_RULES, ids=lambda r: r.id)
def test_every_warning_is_documented_in_both_languages(rule):
    for part in ("title", "summary", "why", "example", "fix"):
        entry = catalogue()[f"rules.{rule.id}.{part}"]
        assert entry["en"].strip() and entry["zh"].strip()


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="the corpus is absent")
def test_an_explosive_start_is_warned_at_the_first_line():
    """Caffe FCN with normalize: false (3 classes): loss 3655 at iteration 0, NaN at iteration 50."""
    warned = _prefix_warnings(CORPUS_RUNS / "caffe_fcn_014_normalize_false")
    assert warned[:1] == [(0, "LD405")]
    log = load_paths([CORPUS_RUNS / "caffe_fcn_014_normalize_false"])
    signals = signals_of(log)
    assert signals.chance_loss == pytest.approx(np.log(3))
    text = judge(signals.upto(0), PARAMS)[0].evidence[0].text("en")
    assert "x ln(3)" in text


REAL = SAMPLE_LOGS.parent.parent / "shared" / "real_logs"


def test_an_fp16_scale_sliding_overflow_after_overflow_is_warned_at_the_fitted_count():
    """The Megatron-format fp16 sample (a real dynamic scaler): the scale falls 131072 -> 16384 between
    two log lines at step 390 (three halvings) and to 32 at step 400 (twelve), while the NaN-iterations
    counter shows 2 and then 9. The fit, given the LLM training set's fp16 runs (scalers that overflow
    and recover), asks for four halvings in 100 steps: the warning comes at 400, at three at 390."""
    path = SAMPLE_LOGS / "llm" / "megatron_fp16_loss_scale_collapse.log"
    assert PARAMS.scale_halvings == 4
    signals = signals_of(load_paths([path]))
    for halvings, step in ((4, 400), (3, 390)):
        params = dataclasses.replace(PARAMS, scale_halvings=halvings)
        warned = [
            int(s) for s in np.unique(signals.loss.steps) if judge(signals.upto(int(s)), params, ("LD402",))
        ]
        assert warned[:1] == [step]
    assert _prefix_warnings(SAMPLE_LOGS / "llm" / "megatron_fp16_healthy.log") == []


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_logs is absent")
def test_a_healthy_fp16_scaler_at_work_is_no_warning():
    """wav2vec 2.0 in fp16 (fairseq): the scale goes 256 -> 8 over 2,000 updates and settles at 16."""
    rules = {rule for _, rule in _prefix_warnings(REAL / "fairseq" / "wav2vec2_pretrain_hydra_train.log")}
    assert "LD402" not in rules


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="the corpus is absent")
def test_settings_that_blow_up_are_warned_at_the_first_point():
    """A PyTorch FCN with `reduction='sum'` and an lr for an averaged loss (LD306), a CNN with an SGD lr far
    above the linear scaling rule for its batch (LD314): LD406 at the first logged loss, with the check's
    evidence; their healthy siblings are never warned by it."""
    summed = _prefix_warnings(CORPUS_RUNS / "fcn_088_sum_reduction")
    assert (0, "LD406") in summed[:2]
    log = load_paths([CORPUS_RUNS / "cnn_025_lr_x1000"])
    signals = signals_of(log)
    first = int(signals.loss.steps[0])
    (warning,) = [w for w in judge(signals.upto(first), PARAMS) if w.rule == "LD406"]
    assert warning.step == first and warning.horizon is None
    assert "linear scaling rule" in warning.evidence[0].text("en")
    for healthy in ("fcn_088", "cnn_025"):
        assert "LD406" not in {rule for _, rule in _prefix_warnings(CORPUS_RUNS / healthy)}


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="the corpus is absent")
def test_settings_are_judged_as_at_the_first_point_and_only_with_a_stated_lr():
    """The watch cannot know the run's future: the checks see the settings and the first point only (the
    same evidence from the whole log as from its first line), and nothing when no line states the lr
    (the checks would read the peak of the logged lr)."""
    log = load_paths([CORPUS_RUNS / "fcn_088_sum_reduction"])
    whole = signals_of(log).blow_up_settings
    first = int(log.metrics.loc[log.metrics["metric"] == "loss", "step"].min())
    cut = dataclasses.replace(log, metrics=log.metrics[log.metrics["step"] <= first])
    assert whole and signals_of(cut).blow_up_settings == whole
    del log.meta.where["base_lr"]
    assert signals_of(log).blow_up_settings == ()


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="the corpus is absent")
def test_no_healthy_corpus_run_has_settings_that_blow_up():
    tasks = [
        t for split in ("train", "test") for t in early_warning_fit.corpus_tasks(split) if t[2] == "healthy"
    ]
    cases = early_warning_fit.load_cases(tasks, jobs=2)
    assert len(cases) > 250
    assert [c.path for c in cases if c.signals is not None and c.signals.blow_up_settings] == []


OVERSHOOT = SAMPLE_LOGS.parent / "tests" / "fixtures" / "lr_overshoot"


def _first_warnings(signals) -> dict[str, int]:
    """Each rule's first warning step over the prefixes of a run."""
    first: dict[str, int] = {}
    for step in np.unique(signals.loss.steps):
        for w in judge(signals.upto(int(step)), PARAMS):
            first.setdefault(w.rule, int(step))
    return first


def test_a_loss_climbing_as_the_lr_rises_is_warned_long_before_it_has_climbed_back():
    """The char-LM warmed up with Adam to 300x its tuned lr (a fixture run, in no fit): its loss is lowest
    near step 70 and climbs back as the lr goes on rising. LD407 warns at least 100 steps before LD403
    (which waits for the loss to give back twice the way down); its evidence is the logged lr at the best
    point and now. Without the lr series, the same curve gets no LD407: the rising lr is what it reads."""
    log = load_paths([OVERSHOOT / "charlm_023_overshoot_x300"])
    signals = signals_of(log)
    first = _first_warnings(signals)
    assert first["LD407"] + 100 <= first["LD403"]
    (warning,) = judge(signals.upto(first["LD407"]), PARAMS, ("LD407",))
    measured = warning.evidence[0].params
    lr = signals.lr
    logged_at_best = lr.values[lr.steps <= measured["best_step"]][-1]
    assert measured["lr_best"] == logged_at_best
    assert measured["lr_now"] >= PARAMS.lr_rise * measured["lr_best"]
    assert measured["pct"] >= 100 * PARAMS.lr_gave_back
    assert "lr" in warning.evidence[0].text("en") and "学习率" in warning.evidence[0].text("zh")
    without_lr = dataclasses.replace(signals, lr=None)
    assert not any(judge(without_lr.upto(int(s)), PARAMS, ("LD407",)) for s in np.unique(signals.loss.steps))


def test_no_healthy_run_warmed_up_to_a_high_lr_is_warned_by_ld407():
    """The five fixture runs that warmed up to 30x-100x their tuned lr and still trained well."""
    with (OVERSHOOT / "labels.csv").open(encoding="utf-8", newline="") as fh:
        healthy = [row["path"] for row in csv.DictReader(fh) if row["symptom"] == "healthy"]
    assert len(healthy) == 5
    for run in healthy:
        assert "LD407" not in _first_warnings(signals_of(load_paths([OVERSHOOT / run]))), run


def test_the_trailing_median_of_a_prefix_is_the_prefix_of_the_trailing_median():
    """A watch's prefixes slice the median computed once: it must depend only on the points before."""
    from diagnostics.early_warning import trailing_median

    values = np.array([3.0, 1.0, np.nan, 2.0, 8.0, 0.5, 0.7, np.inf, 4.0, 1.5])
    whole = trailing_median(values)
    for n in range(1, len(values) + 1):
        np.testing.assert_array_equal(trailing_median(values[:n]), whole[:n])
    assert whole[0] == 3.0 and whole[4] == pytest.approx(2.5)  # median of 3, 1, 2, 8 (the NaN left out)


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="the corpus is absent")
def test_an_lr_far_above_its_usual_range_is_warned_before_the_nan():
    """LD408. A Caffe solver stating SGD `base_lr: 4.5` (45x SGD's usual top of 0.1): warned at iteration
    0 with the solver line quoted, NaN at iteration 10. A warm-up towards 100x the tuned lr: warned when
    the logged lr crosses the fitted factor, long before the blow-up (onset 95)."""
    caffe = _prefix_warnings(CORPUS_RUNS / "caffe_cnn_015_lr_x300")
    assert (0, "LD408") in caffe
    signals = signals_of(load_paths([CORPUS_RUNS / "caffe_cnn_015_lr_x300"]))
    (warning,) = [w for w in judge(signals.upto(0), PARAMS) if w.rule == "LD408"]
    assert warning.evidence[0].quote.text == "base_lr: 4.5" and warning.horizon is None
    assert warning.evidence[0].text("en") == "lr 4.5 is 45x the highest usual lr of sgd (0.1)"
    warmup = CORPUS_RUNS.parent.parent / "corpus_extra" / "runs" / "resnet_146_warmup_to_lr_x100"
    if warmup.is_dir():
        case = early_warning_fit.make_case((str(warmup), "resnet_146", "diverging"))
        first = min(step for step, rule in _prefix_warnings(warmup) if rule == "LD408")
        lr = case.signals.lr
        crossed = int(lr.steps[np.argmax(lr.values >= PARAMS.lr_range_factor * 0.1)])
        assert first == crossed < case.onset


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="the corpus is absent")
def test_a_healthy_sgd_lr_ten_times_the_usual_top_is_no_warning():
    """The char-LMs train healthily with SGD at lr 1.0, ten times SGD's usual top: the fit's factor stays
    above it, and LD408 never warns them."""
    assert PARAMS.lr_range_factor > 10
    assert signals_of(load_paths([CORPUS_RUNS / "charlm_071"])).usual_lr.stated == 1.0
    assert "LD408" not in {rule for _, rule in _prefix_warnings(CORPUS_RUNS / "charlm_071")}


def test_the_lr_read_is_the_stated_one_or_the_logged_one_so_far():
    """The logged lr counts only up to the point judged (a warm-up's peak is the future), a stated lr
    from the start; NaN or zero lrs are not read; an unknown optimiser is held to SGD's top."""
    steps = np.arange(20) * 10
    lr = np.r_[np.linspace(0.1, 5.0, 10), np.full(10, np.nan)]
    signals = signals_of(make_log(np.linspace(2.3, 2.0, 20), steps, lr=lr))
    assert signals.usual_lr.high == 0.1 and signals.usual_lr.stated is None
    factor = PARAMS.lr_range_factor
    warned = [int(s) for s in steps if judge(signals.upto(int(s)), PARAMS, ("LD408",))]
    assert (lr[:10] >= factor * 0.1).any()  # the warm-up crosses the fitted line (else the test is void)
    crossed = int(steps[np.argmax(lr >= factor * 0.1)])
    assert warned[:1] == [crossed] and crossed > 0  # not before the logged lr got there
    assert warned == [int(s) for s in steps if s >= crossed]  # and at every point after (NaN lrs skipped)
    stated = dataclasses.replace(
        signals,
        lr=None,
        usual_lr=dataclasses.replace(signals.usual_lr, stated=factor * 0.1, stated_line=None),
    )
    assert judge(stated.upto(0), PARAMS, ("LD408",))[0].step == 0
    below = dataclasses.replace(stated, usual_lr=dataclasses.replace(stated.usual_lr, stated=factor * 0.099))
    assert judge(below.upto(0), PARAMS, ("LD408",)) == []
    off = dataclasses.replace(PARAMS, ld408_on=False)
    assert "LD408" not in {w.rule for w in judge(stated.upto(0), off)}
