"""A plateau whose evaluated answers never changed under a working lr: the net learned how often each
class occurs and nothing from its inputs, so no signal reaches the output (LD206's `prior_only`
reading: a too small lr, the reading it displaces, still changes answers once the prior is learnt).
Real FCN runs of the corpus's tuning sets, curves only, in three formats."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose, fitted
from parsers import TrainingLog, load_paths

SCORED = dataclasses.replace(fitted.PARAMS, ld206_score_prior_only=0.4)
OFF = dataclasses.replace(fitted.PARAMS, ld206_score_prior_only=0.0)
# FCNs of 8-16 plain conv layers whose weights were all drawn from N(0, 0.01^2), SGD lr 0.01-0.0175:
# the loss falls from ln(3) to the entropy of the pixel classes and stops, the pixel accuracy is the
# background's share at every evaluation.
SMALL_INIT = {
    "tfevents": "corpus/runs/fcn_064_gaussian001_depth10",
    "trainer_state": "corpus_extra/runs/fcn_238_gaussian001_depth8",
    "keras_csv": "corpus/runs/fcn_004_gaussian001_depth16",
}


def run(rel: str) -> TrainingLog:
    return load_paths([SAMPLE_LOGS / rel])


def causes(log: TrainingLog, params=fitted.PARAMS) -> list[str]:
    return [c.id for c in diagnose(log, params).causes]


def read_prior_only(log: TrainingLog) -> bool:
    return any(e.key == "evidence.prior_only" for c in diagnose(log, SCORED).causes for e in c.evidence)


@pytest.mark.parametrize("kind", sorted(SMALL_INIT))
def test_a_plateau_that_never_changed_an_answer_is_a_lost_signal(kind: str):
    log = run(SMALL_INIT[kind])
    d = diagnose(log, SCORED)
    assert d.symptom.symptom == "plateau" and d.causes[0].id == "depth_init"
    evidence = d.causes[0].evidence[0]
    assert evidence.key == "evidence.prior_only" and evidence.params["evals"] >= 5
    assert causes(log, SCORED)[1] == "lr_too_low"  # the lr stays second
    # Without the reading the lr was named first: "slow convergence", for a net whose answers never moved.
    assert causes(log, OFF)[:1] == ["lr_too_low"]


@pytest.mark.parametrize(
    ("kind", "weights"), [("tfevents", "model = torchvision"), ("keras_csv", "keras.applications")]
)
def test_its_fixes_name_all_three_ways_to_lose_the_signal(kind: str, weights: str):
    """The curves show that no signal reaches the output, not where it is lost: after the init's two
    fixes come the inputs' scale and pretrained weights, in the run's framework."""
    cause = diagnose(run(SMALL_INIT[kind]), SCORED).causes[0]
    keys = [f.key for f in cause.fixes]
    assert keys[:2] == ["fixes.msra_init", "fixes.add_batchnorm"]
    assert keys[2:] == ["fixes.normalize_input", "fixes.load_weights_torch"]
    assert weights in cause.fixes[3].snippet


def test_the_committed_fit_reads_it():
    """A refit that drops the reading should fail here and be looked at."""
    assert fitted.PARAMS.ld206_score_prior_only > 0
    assert causes(run(SMALL_INIT["tfevents"]))[0] == "depth_init"


def with_accuracy(log: TrainingLog, values) -> TrainingLog:
    metrics = log.metrics.copy()
    rows = (metrics["metric"] == "accuracy") & (metrics["split"] == "val")
    metrics.loc[rows, "value"] = values(int(rows.sum()))
    return dataclasses.replace(log, metrics=metrics)


def test_answers_that_changed_are_not_the_prior_alone():
    log = with_accuracy(run(SMALL_INIT["tfevents"]), lambda n: np.linspace(0.6, 0.8, n))
    assert diagnose(log, SCORED).symptom.symptom == "plateau"
    assert not read_prior_only(log)
    assert "depth_init" not in causes(log, SCORED)
    assert causes(log, SCORED)[0] == "lr_too_low"


def test_not_under_a_small_lr():
    """Under an lr below `ld202_creep_working_lr` the answers may not have moved yet."""
    log = run(SMALL_INIT["tfevents"])
    metrics = log.metrics.copy()
    small = SCORED.ld202_creep_working_lr / 10
    metrics.loc[metrics["metric"] == "lr", "value"] = small
    log = dataclasses.replace(log, metrics=metrics, meta=dataclasses.replace(log.meta, peak_lr=small))
    assert diagnose(log, SCORED).symptom.symptom == "plateau"
    assert not read_prior_only(log)
    assert causes(log, SCORED)[0] == "lr_too_low"


def test_not_where_the_signal_cannot_vanish():
    """Skip connections carry the signal past each layer: the prior alone is no lost signal there."""
    log = run(SMALL_INIT["tfevents"])
    log = dataclasses.replace(log, meta=dataclasses.replace(log.meta, has_residual=True))
    assert not read_prior_only(log)
    assert "depth_init" not in causes(log, SCORED)


def test_the_readme_counts_are_the_bench_s(capsys: pytest.CaptureFixture[str]):
    """README (12) quotes `bench/prior_only.py`: a rule change that moves them must move the README too."""
    from bench import prior_only

    assert prior_only.main() == 0
    out = capsys.readouterr().out
    assert (
        "15 runs with the reading; labels: depth_init 9, no_pretraining 4, input_scale 1, bn_stats 1" in out
    )
    assert "labelled cause named first: 8 with the reading off -> 11 with it" in out
