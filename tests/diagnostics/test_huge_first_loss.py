"""A classifier of unknown C whose first loss is far above any untrained classifier's: LD110 judges it
against ln(`ld110_max_classes`) once the log reports an accuracy (so the loss is a classifier's), LD208
offers a summed loss as one way to start that high (the fix says to check the reduction), and the
watch's LD405 warns on it from the first accuracy on."""

from __future__ import annotations

import dataclasses
import math

import pandas as pd
import pytest
from diag_helpers import REAL_LOGS, SAMPLE_LOGS

from diagnostics import diagnose, fitted, fixes
from diagnostics.context import Context
from diagnostics.early_warning import PARAMS as WARNING_PARAMS
from diagnostics.early_warning import judge, signals_of
from diagnostics.registry import rule_by_id
from parsers import TrainingLog, load_paths

SCORED = dataclasses.replace(fitted.PARAMS, ld208_score_huge_start=0.7)
OFF = dataclasses.replace(fitted.PARAMS, ld208_score_huge_start=0.0)


def corpus_run(folder: str, name: str) -> TrainingLog:
    return load_paths(sorted((SAMPLE_LOGS / folder / "runs" / name).iterdir()))


def without_accuracy(log: TrainingLog) -> TrainingLog:
    return dataclasses.replace(log, metrics=log.metrics[log.metrics["metric"] != "accuracy"])


@pytest.fixture(scope="module")
def summed_fcn() -> TrainingLog:
    """An FCN (HF Trainer state, SGD lr 0.14, batch 16) whose loss is summed over pixels: its first
    logged loss is 10,681 and the next is NaN; it logs a pixel accuracy and no class count."""
    return corpus_run("corpus", "fcn_028_sum_reduction")


def ld110(log: TrainingLog, params=fitted.PARAMS):
    ctx = Context(log, params)
    result = rule_by_id("LD110").check(ctx)
    return result.findings[0] if result is not None and result.findings else None


def test_a_classifier_of_unknown_c_far_above_any_chance(summed_fcn):
    assert Context(summed_fcn, fitted.PARAMS).lnc is None
    found = ld110(summed_fcn)
    assert found is not None and found.measurements["classes_unknown"] == 1.0
    (evidence,) = found.evidence
    assert evidence.key == "evidence.initial_high_any_c"
    bound = fitted.PARAMS.ld110_max_classes
    assert evidence.params["c"] == bound
    assert evidence.params["lnc"] == round(math.log(bound), 4)
    assert float(evidence.params["ratio"]) == pytest.approx(10681.24 / math.log(bound), rel=1e-3)
    assert evidence.quote is not None  # the trainer_state line of the first loss


def test_without_an_accuracy_the_loss_may_be_anything(summed_fcn):
    """No accuracy: a regression or a summed-by-design loss (a VAE's) may start in the thousands."""
    assert ld110(without_accuracy(summed_fcn)) is None


def test_an_accuracy_that_is_never_finite_says_nothing(summed_fcn):
    """The finding and the watch read the same fact: a classifier from its first finite accuracy on."""
    is_accuracy = summed_fcn.metrics["metric"] == "accuracy"
    log = dataclasses.replace(
        summed_fcn, metrics=summed_fcn.metrics.assign(value=summed_fcn.metrics["value"].where(~is_accuracy))
    )
    assert not Context(log, fitted.PARAMS).one_classifier_loss
    assert ld110(log) is None and signals_of(log).classifier_from is None
    first = int(summed_fcn.metrics.loc[is_accuracy, "step"].min())
    assert Context(summed_fcn, fitted.PARAMS).accuracy_from == signals_of(summed_fcn).classifier_from == first


def test_not_for_a_loss_named_other_than_a_classifiers(summed_fcn):
    log = dataclasses.replace(summed_fcn, meta=dataclasses.replace(summed_fcn.meta, loss_type="MSELoss"))
    assert ld110(log) is None


def test_not_for_a_loss_summed_from_named_parts(summed_fcn):
    """A detector's total loss (mmdet, detectron2, YOLO log `loss_cls`, `box_loss`, ...) is a sum of
    several losses, whatever accuracy it logs beside them."""
    part = summed_fcn.metrics[summed_fcn.metrics["metric"] == "loss"].head(1).assign(metric="loss_cls")
    log = dataclasses.replace(summed_fcn, metrics=pd.concat([summed_fcn.metrics, part], ignore_index=True))
    assert ld110(log) is None
    assert signals_of(log).classifier_from is None


@pytest.mark.parametrize(
    ("run", "parts"),
    [
        ("corpus/runs/cnn_001_sum_reduction", False),  # TensorBoard `epoch_loss`: the same loss per epoch
        ("case2_fcn_lr1e-4", False),  # Caffe's `loss_raw`: the display loss unsmoothed
    ],
)
def test_the_same_loss_summarised_is_no_part(run: str, parts: bool):
    log = load_paths(sorted((SAMPLE_LOGS / run).iterdir()))
    assert Context(log, fitted.PARAMS).loss_has_parts is parts


@pytest.mark.skipif(not REAL_LOGS.is_dir(), reason="../shared/real_logs is absent")
def test_a_real_detectors_loss_has_parts():
    log = load_paths([REAL_LOGS / "mmdet_json" / "faster_rcnn_carafe_voc_12ep.log.json"])
    assert "accuracy" in set(log.metrics["metric"])
    assert Context(log, fitted.PARAMS).loss_has_parts


def test_the_bound_is_the_fitted_class_count(summed_fcn):
    """A bound so large that ln(C) x ld110_initial_ratio passes 10,681 takes the finding away."""
    huge = dataclasses.replace(fitted.PARAMS, ld110_max_classes=10**1600)
    assert ld110(summed_fcn, huge) is None


def test_a_summed_loss_is_offered_with_a_fix_to_check_the_reduction(summed_fcn):
    d = diagnose(summed_fcn, SCORED)
    cause = next(c for c in d.causes if c.id == "loss_normalization")
    assert "LD110" in cause.rules
    assert "evidence.initial_high_any_c" in [e.key for e in cause.evidence]
    assert cause.fixes[0].key == "fixes.reduction_mean_check"
    assert "reduction='mean'" in cause.fixes[0].snippet
    assert "loss_normalization" not in [c.id for c in diagnose(summed_fcn, OFF).causes]
    # The committed fit kept the reading (a refit that drops it should fail here and be looked at).
    assert "loss_normalization" in [c.id for c in diagnose(summed_fcn).causes]


@pytest.mark.parametrize("normalize", [True, False])
def test_a_stated_reduction_is_judged_by_ld306_not_by_the_first_loss(summed_fcn, normalize: bool):
    """Averaged: a sum is ruled out. Summed: LD306 judges the pair of reduction and lr (a summed loss
    under an lr for sums is no fault of the reduction; Caffe's FCN recipes sum with lr 1e-10)."""
    meta = dataclasses.replace(summed_fcn.meta, loss_normalize=normalize)
    d = diagnose(dataclasses.replace(summed_fcn, meta=meta), SCORED)
    assert all("LD110" not in c.rules for c in d.causes if c.id == "loss_normalization")


def test_a_caffe_sum_suspected_is_averaged_not_summed():
    """Caffe: the suspected sum's fix is `normalize: true` with the lr kept, never `normalize: false`."""
    log = load_paths(sorted((SAMPLE_LOGS / "case2_fcn_lr1e-4").iterdir()))
    found = fixes.loss_normalization(Context(log, fitted.PARAMS), suspected=True)
    assert found[0].key == "fixes.normalize_true_keep_lr"
    assert "normalize: true" in found[0].snippet


def any_c_warnings(signals) -> list:
    return [w for w in judge(signals, WARNING_PARAMS, ("LD405",)) if w.evidence[0].key.endswith("any_c")]


def test_the_watch_warns_from_the_first_accuracy_on():
    """An MLP (print log, SGD lr 0.2, batch 128) with a summed loss: its first loss is 8.2e20 and it is
    NaN ten steps later; the accuracy is first printed at step 5."""
    signals = signals_of(corpus_run("corpus_extra", "mlp_180_sum_reduction"))
    assert signals.chance_loss is None and signals.classifier_from == 5
    assert signals.bound_chance == pytest.approx(math.log(fitted.PARAMS.ld110_max_classes))
    (warning,) = any_c_warnings(signals.upto(5))
    assert warning.evidence[0].params["classes"] == fitted.PARAMS.ld110_max_classes
    assert warning.evidence[0].params["first"] == pytest.approx(8.177e20, rel=1e-3)
    # Had the first accuracy come later, the watch would not yet know the loss is a classifier's.
    assert not any_c_warnings(dataclasses.replace(signals, classifier_from=10).upto(5))


def test_the_watch_needs_an_accuracy():
    signals = signals_of(without_accuracy(corpus_run("corpus_extra", "mlp_180_sum_reduction")))
    assert signals.classifier_from is None
    assert not any(any_c_warnings(signals.upto(int(s))) for s in signals.loss.steps)
