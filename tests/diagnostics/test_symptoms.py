"""Each symptom rule on curves shaped like real runs, and the shapes it must NOT flag."""

import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from diag_helpers import decaying, make_log

from diagnostics import diagnose
from diagnostics.context import Context
from diagnostics.fitted import PARAMS
from diagnostics.params import CAFFE_CLAMP_LOSS
from diagnostics.registry import rule_by_id
from parsers import load_paths
from parsers.model import RunMeta

RNG = np.random.default_rng(7)


def test_healthy_decay_is_healthy_with_no_causes():
    d = diagnose(make_log(decaying(3000, 2.3, 0.3, 500, 0.08)))
    assert d.symptom.symptom == "healthy" and d.causes == [] and d.healthy


def test_step_decay_and_warmup_are_not_problems():
    n = 4000
    lr = np.full(n, 0.1)
    lr[:200] = np.linspace(0.001, 0.1, 200)  # linear warm-up
    lr[2000:] = 0.01
    lr[3000:] = 0.001
    loss = decaying(n, 2.3, 0.9, 400, 0.05)
    loss[2000:] -= 0.3  # the drop a step decay causes
    loss[3000:] -= 0.1
    d = diagnose(make_log(loss, lr=lr))
    assert d.symptom.symptom == "healthy"
    assert any(f.rule == "LD111" for f in d.findings)


def test_caffe_clamp_counts_as_nan_with_onset_and_growth():
    loss = np.r_[
        decaying(300, 6.9, 5.0, 100, 0.02), np.linspace(5.0, 30.0, 100), np.full(400, CAFFE_CLAMP_LOSS)
    ]
    d = diagnose(make_log(loss))
    assert d.symptom.symptom == "nan"
    assert d.symptom.onset_step == 400 * 20
    keys = [e.key for f in d.findings if f.rule == "LD101" for e in f.evidence]
    assert "evidence.caffe_clamp" in keys and "evidence.growth_before_nan" in keys
    assert d.causes[0].id == "lr_too_high"


def test_isolated_nan_that_recovers_is_not_the_nan_symptom():
    loss = decaying(2000, 2.3, 0.3, 400, 0.05)
    loss[700] = math.nan
    d = diagnose(make_log(loss))
    assert d.symptom.symptom != "nan"
    assert any(f.rule == "LD101" and f.severity == "warning" for f in d.findings)


def test_nan_from_the_first_steps_points_at_data_or_lr():
    loss = np.r_[[2.30, 2.31], np.full(500, np.nan)]
    d = diagnose(make_log(loss, steps=np.arange(502)))
    assert d.symptom.symptom == "nan" and d.symptom.onset_step == 2
    assert {c.id for c in d.causes[:2]} == {"data_issue", "lr_too_high"}


def test_diverging_finite_loss():
    loss = np.r_[
        decaying(800, 2.3, 0.5, 200, 0.03), np.linspace(0.5, 4.0, 1200) + 0.05 * RNG.standard_normal(1200)
    ]
    d = diagnose(make_log(loss))
    assert d.symptom.symptom == "diverging"
    assert 700 * 20 <= d.symptom.onset_step <= 1200 * 20


def test_flat_at_ln_c_recognised_from_initial_loss():
    d = diagnose(make_log(math.log(1000) + 0.005 * RNG.standard_normal(1500)))
    assert d.symptom.symptom == "flat" and d.symptom.confidence >= 0.85
    assert any(f.rule == "LD109" for f in d.findings)


def test_three_point_epoch_log():
    assert (
        diagnose(make_log(np.array([2.30, 1.10, 0.62]), steps=np.array([1, 2, 3]))).symptom.symptom
        == "healthy"
    )
    assert (
        diagnose(make_log(np.array([2.302, 2.301, 2.302]), steps=np.array([1, 2, 3]))).symptom.symptom
        == "flat"
    )


def test_plateau_at_a_poor_level():
    loss = np.r_[np.linspace(3.04, 2.6, 300), 2.6 + 0.02 * RNG.standard_normal(2700)]
    d = diagnose(make_log(loss))
    assert d.symptom.symptom == "plateau"


def test_converged_run_is_not_a_plateau():
    d = diagnose(make_log(decaying(3000, 2.3, 0.05, 150, 0.01)))
    assert d.symptom.symptom == "healthy"


def test_oscillating_without_trend():
    x = np.arange(1200)
    d = diagnose(make_log(1.5 + 0.7 * np.sin(x / 30) + 0.05 * RNG.standard_normal(1200)))
    assert d.symptom.symptom == "oscillating"


def test_raw_minibatch_noise_is_not_oscillation():
    d = diagnose(make_log(decaying(20000, 2.3, 1.0, 4000, 0.6)))
    assert d.symptom.symptom == "healthy"


def test_overfitting_onset_at_val_minimum():
    steps = np.arange(0, 40) * 100
    train = decaying(40, 1.5, 0.05, 8, 0.0)
    val = np.r_[np.linspace(1.5, 0.6, 12), np.linspace(0.62, 1.1, 28)]
    d = diagnose(make_log(train, steps=steps, val=(steps, val)))
    assert d.symptom.symptom == "overfitting" and d.symptom.onset_step == 1100
    assert d.causes[0].id == "overfitting"
    assert d.causes[0].fixes[0].params["step"] == 1100


def test_eval_gap_from_early_on():
    steps = np.arange(2000) * 10
    train = decaying(2000, 2.3, 0.3, 300, 0.02)
    vs = np.arange(1, 20) * 1000
    val = np.array(
        [3.5, 7.9, 2.2, 9.1, 4.0, 6.5, 3.1, 8.8, 2.9, 7.2, 5.5, 3.3, 9.0, 4.4, 6.1, 2.8, 7.7, 3.9, 8.1]
    )
    meta = RunMeta(framework="pytorch", format="print_style")
    d = diagnose(make_log(train, steps=steps, val=(vs, val), meta=meta))
    assert d.symptom.symptom == "eval_gap"


def test_spikes_that_recover():
    """As many isolated spikes as the fitted `spike_min_count` (one fewer is noise: info only)."""
    count = PARAMS.spike_min_count
    loss = decaying(5000, 2.3, 0.5, 800, 0.03)
    few = loss.copy()
    for i in np.linspace(1390, 4170, count).astype(int):
        loss[i] = 4.5
    for i in np.linspace(1390, 4170, count - 1).astype(int):
        few[i] = 4.5
    d = diagnose(make_log(loss))
    assert d.symptom.symptom == "spiky"
    assert d.symptom.onset_step == 1390 * 20
    assert diagnose(make_log(few)).symptom.symptom == "healthy"


@pytest.mark.parametrize("n", [1, 2])
def test_tiny_logs_do_not_crash(n):
    d = diagnose(make_log(np.linspace(2.3, 2.0, n)))
    assert d.errors == [] and d.symptom.symptom in ("healthy", "flat")


def test_all_nan_log():
    d = diagnose(make_log(np.full(50, np.nan)))
    assert d.errors == [] and d.symptom.symptom == "nan"


def test_periodic_skipped_fp16_steps_do_not_end_the_curve():
    x = np.arange(1000)
    loss = np.where(x % 97 == 5, np.nan, 2.3 * np.exp(-x / 200) + 0.2)
    loss[0] = np.inf
    d = diagnose(make_log(loss))
    assert d.symptom.symptom == "healthy"
    assert [f.severity for f in d.findings if f.rule == "LD101"] == ["warning"]


def test_accuracy_at_one_over_c_joins_the_chance_evidence():
    log = make_log(math.log(10) + 0.003 * RNG.standard_normal(500))
    frame = log.metrics
    extra = make_log(np.full(5, 0.1135), steps=np.arange(1, 6) * 1000).metrics.assign(
        split="val", metric="accuracy"
    )
    log.metrics = pd.concat(
        [frame.astype({"split": str, "metric": str}), extra.astype({"split": str, "metric": str})]
    )
    d = diagnose(log)
    keys = [e.key for f in d.findings if f.rule == "LD109" for e in f.evidence]
    assert "evidence.accuracy_at_chance" in keys


@pytest.mark.parametrize(
    "loss",
    [
        decaying(3000, 2.3, 0.3, 500, 0.08),
        math.log(1000) + 0.005 * RNG.standard_normal(1500),
        1.5 + 0.7 * np.sin(np.arange(1200) / 30),
        np.r_[decaying(300, 6.9, 5.0, 100, 0.02), np.full(300, np.nan)],
        np.r_[decaying(800, 2.3, 0.5, 200, 0.03), np.linspace(0.5, 4.0, 1200)],
    ],
)
def test_no_rule_raises_on_any_shape(loss):
    steps = np.arange(len(loss)) * 20
    val = (steps[::50], loss[::50] * 1.3)
    lr = np.where(steps < steps[-1] / 2, 0.1, 0.01)
    assert diagnose(make_log(loss, steps=steps, val=val, lr=lr)).errors == []


def _with_rows(log, split: str, metric: str, steps, values, epochs=None):
    """Add a series to a synthetic log (e.g. a test accuracy beside the test loss)."""
    extra = make_log(np.asarray(values, dtype=float), steps=np.asarray(steps)).metrics.assign(
        split=split, metric=metric, name=metric
    )
    if epochs is not None:
        extra["epoch"] = np.asarray(epochs, dtype=float)
    frame = pd.concat([log.metrics.astype({"split": str, "metric": str, "name": str}), extra])
    log.metrics = frame.astype({"split": "category", "metric": "category", "name": "category"})
    return log


def test_caffe_iteration_zero_test_pass_is_not_part_of_the_validation_curve():
    """Caffe tests before the first update (resnet56_cifar10_2018.log: loss 87.25, accuracy 0.999 at
    iteration 0). Those pre-training values must not be the best accuracy nor the start of the val curve."""
    steps = np.arange(0, 64001, 100)
    train = decaying(len(steps), 2.3, 0.01, 80, 0.005)
    vs = np.arange(0, 64001, 1000)
    # the val loss gives back a third of its fall (past LD106's bar) while the accuracy still improves
    val = np.r_[[87.25], np.linspace(1.4, 0.27, 33), np.linspace(0.28, 0.65, 31)]
    accuracy = np.r_[[0.999], np.linspace(0.49, 0.92, 33), np.linspace(0.921, 0.96, 31)]
    log = make_log(train, steps=steps, val=(vs, val), meta=RunMeta(framework="caffe", format="caffe_glog"))
    log = _with_rows(log, "val", "accuracy", vs, accuracy)
    d = diagnose(log)
    assert d.symptom.symptom == "healthy"
    assert [f.severity for f in d.findings if f.rule == "LD106"] == ["info"]


def test_epoch_zero_of_a_per_epoch_log_is_a_real_evaluation():
    """Keras numbers epochs from 0: the step-0 row ends the first epoch and stays in the curve."""
    from diagnostics.context import Context
    from diagnostics.params import DEFAULT_PARAMS

    epochs = np.arange(30)
    log = make_log(decaying(30, 1.0, 0.1, 5, 0.0), steps=epochs)
    log = _with_rows(log, "val", "loss", epochs, decaying(30, 0.9, 0.2, 5, 0.0), epochs=epochs)
    assert Context(log, DEFAULT_PARAMS).val_loss.steps[0] == 0


def _memorising_run(val_metric: str, quality):
    """A fine-tune that memorises its training set (whisper_large_v2_ja_trainer_state.json shape):
    train loss 0.3 -> 1e-4, evaluation loss rising 0.32 -> 0.42 over five evaluations."""
    steps = np.arange(25, 5001, 25)
    train = np.maximum(0.3 * np.exp(-steps / 300), 1e-4)
    vs = np.arange(1000, 5001, 1000)
    log = make_log(train, steps=steps, val=(vs, np.array([0.321, 0.358, 0.394, 0.412, 0.420])))
    return _with_rows(log, "val", val_metric, vs, quality)


def test_error_rate_at_its_best_makes_a_rising_eval_loss_information_only():
    d = diagnose(_memorising_run("wer", [0.789, 0.748, 0.743, 0.744, 0.7449]))
    assert d.symptom.symptom == "healthy"
    assert [f.severity for f in d.findings if f.rule == "LD106"] == ["info"]
    assert not any(f.rule == "LD107" for f in d.findings)  # a memorised train set, not a broken eval


def test_steadily_rising_eval_loss_is_overfitting_not_an_eval_gap():
    d = diagnose(_memorising_run("accuracy", [0.80, 0.78, 0.77, 0.76, 0.75]))
    assert d.symptom.symptom == "overfitting"
    assert [s.symptom for s in d.secondary] == []


def test_classifier_creeping_near_ln2_has_plateaued():
    """digits_binary_medical_cls.log: 2 classes, the loss creeps 0.693 -> 0.605 while the lr decays
    100x; a steady but negligible decrease that near ln(C) is a stall, not slow progress."""
    steps = np.arange(0, 295, 7)
    loss = 0.605 + 0.088 * np.exp(-steps / 60) + 0.0005 * RNG.standard_normal(len(steps))
    meta = RunMeta(framework="caffe", format="caffe_glog", num_classes=2, loss_type="SoftmaxWithLoss")
    d = diagnose(make_log(loss, steps=steps, meta=meta))
    assert d.symptom.symptom == "plateau"


def test_a_fine_tune_loss_near_some_ln_c_does_not_name_a_class_count():
    """t5_summarization_trainer_state.json: first logged loss 1.996 after 500 updates is near ln(7) by
    chance; it slowly falls to 1.74 under a linear lr decay: healthy, and no ln(C) is claimed."""
    from diagnostics.context import Context
    from diagnostics.params import DEFAULT_PARAMS

    steps = np.arange(500, 215001, 500)
    loss = 1.87 - 0.13 * steps / steps[-1] + 0.02 * RNG.standard_normal(len(steps))
    loss[0] = 1.996
    log = make_log(loss, steps=steps, lr=np.linspace(5e-5, 1e-7, len(steps)))
    assert Context(log, DEFAULT_PARAMS).classes is None
    assert diagnose(log).symptom.symptom == "healthy"


def test_flat_train_loss_while_the_evaluation_improves_is_not_a_flat_run():
    """yolov5_helmet_3ep_results.csv: 3 epochs, summed train loss 0.120 -> 0.123, mAP 0.62 -> 0.74."""
    epochs = np.arange(3)
    log = make_log(np.array([0.1201, 0.1263, 0.1231]), steps=epochs)
    log = _with_rows(log, "val", "map", epochs, [0.618, 0.715, 0.743], epochs=epochs)
    d = diagnose(log)
    assert d.symptom.symptom == "healthy"
    keys = [e.key for f in d.findings if f.rule == "LD103" for e in f.evidence]
    assert "evidence.eval_improved" in keys


def test_a_component_blown_up_where_the_loss_turns_nan_points_at_the_lr():
    """faster_rcnn_r50_voc_imagenetinit_lrx10: the averaged loss goes 0.57 -> NaN in one record while
    loss_rpn_cls reads 1.8e27 there; braincnn: NaN from epoch 0 with MAE 2.6e34."""
    steps = np.arange(50, 20001, 50)
    loss = np.r_[decaying(300, 1.5, 0.55, 60, 0.02), np.full(100, np.nan)]
    rpn = np.r_[0.05 + 0.005 * RNG.standard_normal(300), [1.8e27], np.full(99, 0.26)]
    log = _with_rows(make_log(loss, steps=steps), "train", "loss_rpn_cls", steps, rpn)
    log.meta.batch_size = 2
    d = diagnose(log)
    assert d.symptom.symptom == "nan"
    keys = [e.key for f in d.findings if f.rule == "LD101" for e in f.evidence]
    assert "evidence.companion_exploded" in keys
    assert d.causes[0].id == "lr_too_high" and d.causes[0].confidence >= 0.75
    # no BatchNorm evidence: a batch of 2 stays far below the lr (a distance calibration keeps)
    assert all(c.confidence <= d.causes[0].confidence - 0.4 for c in d.causes if c.id == "small_batch")

    epochs = np.arange(354)
    log = make_log(np.full(354, np.nan), steps=epochs)
    log = _with_rows(log, "train", "mean_absolute_error", epochs, np.r_[[2.6e34], np.full(353, 0.9535)])
    d = diagnose(log)
    assert d.causes[0].id == "lr_too_high"
    assert "data_issue" not in [c.id for c in d.causes[:1]]


def test_a_sudden_nan_with_calm_components_keeps_the_data_among_the_causes():
    steps = np.arange(50, 20001, 50)
    loss = np.r_[decaying(300, 1.5, 0.55, 60, 0.02), np.full(100, np.nan)]
    rpn = np.r_[0.05 + 0.005 * RNG.standard_normal(300), np.full(100, 0.05)]
    d = diagnose(_with_rows(make_log(loss, steps=steps), "train", "loss_rpn_cls", steps, rpn))
    assert "data_issue" in [c.id for c in d.causes[:2]]


def test_without_a_val_loss_a_falling_map_is_overfitting():
    """ssd300_vgg16_resumed.log: resumed at 10162, test detection_eval (mAP) only: 0.383 at its first
    pass, noisy decline to ~0.2 while the training loss falls 0.33 -> 0.12."""
    steps = np.arange(10170, 120001, 10)
    train = decaying(len(steps), 0.45, 0.11, 3000, 0.01)
    vs = np.arange(20000, 120001, 10000)
    mAP = [0.3832, 0.2518, 0.3469, 0.3082, 0.3537, 0.2831, 0.2796, 0.1744, 0.1986, 0.2067, 0.2174]
    log = _with_rows(make_log(train, steps=steps), "val", "map", vs, mAP)
    d = diagnose(log)
    assert d.symptom.symptom == "overfitting" and d.symptom.onset_step == 20000
    assert d.causes[0].id == "overfitting"
    # The same run with an mAP that keeps improving is healthy.
    log = _with_rows(make_log(train, steps=steps), "val", "map", vs, np.linspace(0.30, 0.45, 11))
    assert diagnose(log).symptom.symptom == "healthy"


def test_a_clamp_before_the_first_update_is_the_initial_loss_not_a_nan_run():
    """Caffe's iteration-0 loss is the untrained net's: 87.3365 there is LD110's huge initial loss."""
    loss = np.r_[[CAFFE_CLAMP_LOSS], decaying(999, 2.3, 0.3, 200, 0.02)]
    meta = RunMeta(framework="caffe", format="caffe_glog", num_classes=10)
    d = diagnose(make_log(loss, meta=meta))
    assert d.symptom.symptom == "healthy"
    assert [f.rule for f in d.findings if f.rule in ("LD101", "LD110")] == ["LD110"]
    loss[600:] = CAFFE_CLAMP_LOSS  # a later clamp is the run's own
    d = diagnose(make_log(loss, meta=meta))
    assert d.symptom.symptom == "nan" and d.symptom.onset_step == 600 * 20


def _memorised(val_loss, quality, metric="accuracy"):
    """Train loss 2.3 -> ~1e-4 (a memorised training set); evaluations every 16 steps."""
    steps = np.arange(8, 641, 8)
    vs = np.arange(16, 641, 16)
    log = make_log(np.maximum(2.3 * np.exp(-steps / 12), 1e-4), steps=steps, val=(vs, np.asarray(val_loss)))
    return _with_rows(log, "val", metric, vs, quality)


def test_rising_val_loss_with_accuracy_no_better_than_at_its_minimum_is_overfitting():
    """sample_logs caffe_lenet_overfitting / keras_dense_overfitting: the loss rises 16% after its
    minimum; the accuracy stays where it was there (or falls from a later peak): only memorising."""
    val = np.r_[[2.15, 1.9], np.linspace(1.82, 2.12, 38)]
    flat = np.r_[[0.35, 0.6], np.full(38, 0.627)]
    assert diagnose(_memorised(val, flat)).symptom.symptom == "overfitting"
    peaked = np.r_[[0.35, 0.30], np.linspace(0.31, 0.326, 10), np.linspace(0.326, 0.312, 28)]
    assert diagnose(_memorised(val, peaked)).symptom.symptom == "overfitting"
    still_improving = np.r_[[0.35, 0.6], np.linspace(0.61, 0.64, 38)]
    d = diagnose(_memorised(val, still_improving))
    assert d.symptom.symptom == "healthy"
    assert [f.severity for f in d.findings if f.rule == "LD106"] == ["info"]


def test_a_small_but_steady_rise_over_many_evaluations_is_overfitting():
    """Like sample_logs hf_mlp_overfitting: val loss 1.816 -> 1.905 (+5%) rising at every one of 38
    evals, here after a first evaluation of 1.95 (the rise is 66 % of the fall: `overfit_rise_of_fall`,
    tested below, is not what decides; the sample itself, whose training loss starts at 2.34, gives back
    17 % of its fall, over the fitted bar of 0.1)."""
    val = np.r_[[1.95, 1.9], np.linspace(1.816, 1.905, 38)]
    assert diagnose(_memorised(val, np.r_[[0.35], np.full(39, 0.39)])).symptom.symptom == "overfitting"
    noisy = np.r_[[2.15, 1.9], 1.85 + 0.03 * np.sin(np.arange(38))]  # no steady trend
    assert diagnose(_memorised(noisy, np.r_[[0.35], np.full(39, 0.39)])).symptom.symptom != "overfitting"


def test_an_evaluation_that_never_beat_chance_is_an_eval_gap_not_overfitting():
    """sample_logs caffe_bn_batch1_eval_gap: BatchNorm with batch 1; training falls 2.3 -> 0.15 late
    in the run while the test loss climbs 2.35 -> 5.6 and test accuracy never leaves ~1/C."""
    steps = np.arange(0, 3001, 50)
    train = np.r_[np.full(20, 2.3), np.linspace(2.3, 0.15, 41)] + 0.02 * RNG.standard_normal(61)
    vs = np.arange(250, 3001, 250)
    val = np.array([2.349, 2.318, 2.498, 2.314, 2.462, 2.884, 3.778, 4.971, 5.416, 5.174, 5.766, 5.594])
    accuracy = [0.114, 0.148, 0.1, 0.166, 0.08, 0.126, 0.174, 0.186, 0.18, 0.198, 0.244, 0.198]
    meta = RunMeta(framework="caffe", format="caffe_glog", num_classes=10)
    log = _with_rows(make_log(train, steps=steps, val=(vs, val), meta=meta), "val", "accuracy", vs, accuracy)
    d = diagnose(log)
    assert d.symptom.symptom == "eval_gap"
    assert not any(f.rule == "LD106" for f in d.findings)


def test_an_accuracy_ending_on_exactly_one_over_c_names_c():
    """sample_logs torch_raw_pixels_input_scale: raw 0..255 pixels, first loss 1.25e6, then the loss
    sits at ln(10) and val accuracy at 10.0%: C = 10 from the accuracy, a flat run, a huge first loss."""
    from diagnostics.context import Context
    from diagnostics.params import DEFAULT_PARAMS

    steps = np.arange(5, 241, 5)
    loss = np.r_[[1.253e6], math.log(10) + 0.003 * RNG.standard_normal(47)]
    vs = np.arange(40, 241, 40)
    log = make_log(loss, steps=steps, val=(vs, np.full(6, 2.351)))
    log = _with_rows(log, "val", "accuracy", vs, [9.9, 9.9, 10.0, 10.0, 9.9, 10.0])
    assert Context(log, DEFAULT_PARAMS).classes == (10, "chance_accuracy")
    d = diagnose(log)
    assert d.symptom.symptom == "flat"
    assert any(f.rule == "LD110" for f in d.findings)


def test_a_loss_swinging_above_ln_c_is_not_a_plateau():
    """caffenet128_lsuv_rmsprop0.9_lr0.01.log: 7.5 -> 53 -> swings between 7 and 40 (ln(1000) = 6.9)."""
    x = np.arange(40)
    loss = np.r_[[7.49, 53.7], 20 + 12 * np.sin(x[2:] * 1.3) + RNG.uniform(0, 4, 38)]
    meta = RunMeta(framework="caffe", format="caffe_glog", num_classes=1000)
    d = diagnose(make_log(loss, steps=x * 20, meta=meta))
    assert d.symptom.symptom != "plateau"
    assert not any(f.rule == "LD104" for f in d.findings)


def test_an_accuracy_wobbling_around_a_flat_level_is_not_still_improving():
    """sample_logs hf_mlp_overfitting (regenerated): eval loss 1.816 -> 1.905 steadily, accuracy wobbles
    between 0.388 and 0.396 and ends within half a point of its best: memorising, not over-confidence
    (first evaluation 1.95, as in the test above)."""
    val = np.r_[[1.95, 1.9], np.linspace(1.816, 1.905, 38)]
    head = [0.346, 0.385, 0.374, 0.391, 0.391, 0.396, 0.395]
    wobble = np.r_[head, np.random.default_rng(5).uniform(0.388, 0.393, 32), [0.392]]
    d = diagnose(_memorised(val, wobble))
    assert d.symptom.symptom == "overfitting"


def test_a_blow_up_that_settles_above_ln_c_learned_nothing():
    """Real corpus run: AdamW at lr 0.84 on a 16-token char-LM (`vocab_size=16` echoed). The loss jumps
    from ln(16) to 12, then settles at 3.1: falling, but never below uniform guessing."""
    run = Path(__file__).resolve().parents[2] / "sample_logs/corpus/runs/charlm_053_lr_x300/train.log.gz"
    d = diagnose(load_paths([run]))
    assert d.symptom.symptom == "flat"
    assert d.causes[0].id == "lr_too_high"
    flat = next(f for f in d.findings if f.rule == "LD103")
    assert flat.evidence[0].key == "evidence.never_below_chance"
    assert flat.evidence[0].params["c"] == 16


def test_an_echoed_class_count_is_used_only_when_the_run_starts_at_ln_c():
    start_at_chance = decaying(2000, math.log(10), 0.4, 300, 0.03)
    fine_tune = decaying(2000, 1.2, 0.4, 300, 0.03)  # starts far below ln(10): another head's count

    for loss, expected in ((start_at_chance, (10, "echoed")), (fine_tune, None)):
        meta = RunMeta()
        meta.set("echoed_classes", 10)
        assert Context(make_log(loss, meta=meta), PARAMS).classes == expected


def test_a_blow_up_in_the_first_updates_that_never_comes_back_is_diverging():
    """nanoGPT-style: `iter 0` logs the untrained net at ln(27); the lr throws the loss to 20-80 and it
    wobbles there. Its later wobble is no trend, but it never came back near the untrained loss."""
    wobble = np.exp(np.log(40) + 0.4 * RNG.standard_normal(60))
    d = diagnose(make_log(np.r_[math.log(27), 240.0, wobble], steps=np.arange(62) * 10))
    assert d.symptom.symptom == "diverging" and d.symptom.onset_step == 10
    ld102 = next(f for f in d.findings if f.rule == "LD102")
    back = next(e for e in ld102.evidence if e.key == "evidence.never_back_to_start")
    assert back.params["first"] == "3.296" and back.params["step"] == 0
    # The same values first logged after 20 updates say nothing about the untrained net's loss.
    later = diagnose(make_log(np.r_[math.log(27), 240.0, wobble], steps=20 + np.arange(62) * 10))
    assert all(e.key != "evidence.never_back_to_start" for f in later.findings for e in f.evidence)


CORPUS_RUNS = Path(__file__).resolve().parents[2] / "sample_logs" / "corpus" / "runs"
EXTRA_RUNS = CORPUS_RUNS.parents[1] / "corpus_extra" / "runs"


def _overfits(run: str, **params) -> bool:
    """LD106 names overfitting on this corpus run (judged with these Params changes)."""
    d = diagnose(load_paths([CORPUS_RUNS / run]), params=replace(PARAMS, **params))
    return any(f.rule == "LD106" and f.severity == "warning" for f in d.findings)


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="sample_logs/corpus absent")
def test_a_rise_small_against_what_the_validation_loss_learned_is_not_overfitting():
    """mlp_072_healthy_resumed (corpus, training split) is healthy: its training loss began at 1.08 and
    its validation loss fell to 0.0155, then ended at 0.0227, 0.7 % of that fall (a tenth of the fall
    from its first evaluation, 0.076, logged after an epoch). fcn_034_tiny_data_12 overfits: it gives
    back 85 % of what it learned."""
    assert PARAMS.overfit_rise_of_fall >= 0.05  # the fitted bar
    assert _overfits("mlp_072_healthy_resumed", overfit_rise_of_fall=0.0)
    assert not _overfits("mlp_072_healthy_resumed")
    assert _overfits("fcn_034_tiny_data_12")


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="sample_logs/corpus absent")
def test_the_fall_a_rise_is_judged_against_starts_where_training_began():
    """mlp_162 (corpus_extra, training split) is healthy at 99.8 % accuracy: its first evaluation, after an
    epoch, is already 0.032; the validation loss reaches 0.010 and ends at 0.020. That rise is half the
    fall from the first evaluation, but 2 % of the fall from the training loss's first point (0.51)."""
    from diagnostics.rules.generalisation import _past_best

    run = CORPUS_RUNS.parent.parent / "corpus_extra" / "runs" / "mlp_162"
    log = load_paths(sorted(run.iterdir()))
    ctx = Context(log, PARAMS)
    val, train = ctx.val_loss, ctx.train_loss
    assert val is not None and train is not None
    assert _past_best(val.steps, val.values, PARAMS) is not None  # judged from the first evaluation
    assert _past_best(val.steps, val.values, PARAMS, float(train.values[0])) is None
    assert not any(f.rule == "LD106" and f.severity == "warning" for f in diagnose(log).findings)


def _slow_head_only_run(accuracy: np.ndarray):
    """A classifier of unknown C whose loss creeps down steadily by 7% (a head trained on frozen random
    features), evaluated at evenly spaced steps."""
    steps = np.arange(1200)
    loss = 0.9 - 0.06 * steps / 1200 + 0.002 * RNG.standard_normal(1200)  # 0.9 is no ln(C) of a small C
    eval_steps = np.arange(1, len(accuracy) + 1) * (1200 // len(accuracy)) - 1
    return _with_rows(make_log(loss, steps=steps), "val", "accuracy", eval_steps, accuracy)


def test_an_evaluation_that_never_moved_is_frozen_whatever_c():
    evals = PARAMS.frozen_accuracy_evals
    frozen = Context(_slow_head_only_run(np.full(evals, 0.5944)), PARAMS)
    assert frozen.classes is None and frozen.eval_accuracy_frozen() == (0.5944, evals)
    wobble = np.full(evals, 0.5944) + np.r_[0.0, 3 * PARAMS.frozen_accuracy_spread, np.zeros(evals - 2)]
    assert Context(_slow_head_only_run(wobble), PARAMS).eval_accuracy_frozen() is None
    top = np.full(evals, PARAMS.frozen_accuracy_level)  # a net that converged before its first evaluation
    assert Context(_slow_head_only_run(top), PARAMS).eval_accuracy_frozen() is None
    percent = Context(_slow_head_only_run(np.full(evals, 59.44)), PARAMS)
    assert percent.eval_accuracy_frozen() == (59.44, evals)
    if evals > 3:
        assert Context(_slow_head_only_run(np.full(evals - 1, 0.5944)), PARAMS).eval_accuracy_frozen() is None


def test_a_steady_creep_under_a_frozen_evaluation_is_flat_not_slow_progress():
    """The creep alone reads as slow progress (a fine-tune); with an accuracy that never moved, the
    evaluated model answered the same all run: flat, with that as evidence."""
    learning = diagnose(_slow_head_only_run(np.linspace(0.27, 0.39, 12)))
    assert learning.symptom.symptom == "healthy"
    stuck = diagnose(_slow_head_only_run(np.full(12, 0.5944)))
    assert stuck.symptom.symptom == "flat"
    keys = [e.key for f in stuck.findings if f.rule == "LD103" for e in f.evidence]
    assert "evidence.eval_frozen" in keys
    text = next(e for f in stuck.findings for e in f.evidence if e.key == "evidence.eval_frozen").text("zh")
    assert "0.5944" in text and "12" in text


@pytest.mark.skipif(not CORPUS_RUNS.is_dir(), reason="the corpus is absent")
def test_a_segmentation_head_on_random_frozen_features_is_not_healthy():
    """fcn_064 (training split): the backbone frozen but never loaded, pixel accuracy 0.5944 (the
    background's share) at all 12 evaluations while the loss creeps 1.06 -> 1.00: flat, where it read
    healthy before. Its healthy sibling fcn_064 and a Caffe net whose test accuracy sat at 0.97 from its
    first evaluation on (converged, not frozen) stay healthy."""
    d = diagnose(load_paths([CORPUS_RUNS / "fcn_064_frozen_random_backbone"]))
    assert d.symptom.symptom == "flat"
    for healthy in ("fcn_064", "caffe_cnn_000_healthy_step_decay"):
        assert diagnose(load_paths([CORPUS_RUNS / healthy])).symptom.symptom == "healthy"


def _crawl(total_drop: float, n: int = 60) -> np.ndarray:
    """A loss that falls steadily (tau near -1) by `total_drop` of its start over the run."""
    return 2.52 * (1 - total_drop * np.linspace(0, 1, n)) + 0.0005 * RNG.standard_normal(n)


def test_a_crawl_of_a_few_tenths_of_a_percent_is_flat_not_slow_progress():
    """A steady fall is slow progress (a fine-tune) only once it has come to something: 0.4 % over the
    whole run is an lr too small to matter, with the bar on (ld103_steady_min_drop); 4 % stays slow
    progress."""
    flat_rule = rule_by_id("LD103")
    crawl, slow = make_log(_crawl(0.004)), make_log(_crawl(0.04))
    barred = replace(PARAMS, ld103_steady_min_drop=0.01)
    found = flat_rule.check(Context(crawl, barred))
    assert found is not None and found.symptom is not None and found.symptom.symptom == "flat"
    assert flat_rule.check(Context(crawl, replace(PARAMS, ld103_steady_min_drop=0.0))) is None
    assert flat_rule.check(Context(slow, barred)) is None


@pytest.mark.skipif(not (EXTRA_RUNS / "charlm_161_lr_div1e3").is_dir(), reason="the corpus is absent")
def test_a_char_lm_crawling_under_a_tiny_lr_is_flat():
    """corpus-extra (tuning set) charlm_161_lr_div1e3: Adam at 2.8e-6, the loss 2.521 -> 2.512 over 19
    epochs, steadily: flat, with the lr first. Either the fitted params keep a bar above 0.35 % or the
    evaluation accuracy that barely rose (0.065 -> 0.074, `ld103_stalled_eval_level`) says it."""
    d = diagnose(load_paths([EXTRA_RUNS / "charlm_161_lr_div1e3"]))
    assert d.symptom.symptom == "flat" and d.causes[0].id == "lr_too_low"
    flat_keys = {e.key for f in d.findings if f.rule == "LD103" for e in f.evidence}
    assert PARAMS.ld103_steady_min_drop > 0.0035 or "evidence.eval_stalled" in flat_keys
