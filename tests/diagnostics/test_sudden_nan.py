"""A NaN out of a falling loss, with nothing growing before it and an ordinary lr (`ld201_score_sudden_nan`,
early or late in the run): one bad batch or a log(0) is as likely as the lr, so the data's rule is not
outranked by a blow-up prior. Real runs of the training split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose, fitted
from diagnostics.context import Context
from parsers import load_paths

RUNS = SAMPLE_LOGS / "corpus" / "runs"


def load(name: str):
    return load_paths(sorted((RUNS / name).iterdir()))


def test_nan_pixels_in_one_batch_name_the_data_first():
    """mlp_036 (Lightning CSV): a blank image normalised by std 0 puts NaN pixels into step 63's batch."""
    log = load("mlp_036_nan_pixels_batch")
    d = diagnose(log)
    assert d.symptom.symptom == "nan"
    ld101 = next(f for f in d.findings if f.rule == "LD101")
    assert ld101.measurements["grew_before_nan"] == 0.0
    assert [c.id for c in d.causes[:2]] == ["data_issue", "lr_too_high"]
    # control: scored like any blow-up, the lr would come first again
    blowup = dataclasses.replace(fitted.PARAMS, ld201_score_sudden_nan=fitted.PARAMS.ld201_score_blowup)
    assert diagnose(log, blowup).causes[0].id == "lr_too_high"


@pytest.mark.parametrize("name", ["caffe_cnn_015_lr_x300", "mlp_084_lr_x300"])  # Caffe glog, Keras CSV
def test_a_nan_from_a_raised_lr_still_names_the_lr(name):
    d = diagnose(load(name))
    assert d.symptom.symptom == "nan" and d.causes[0].id == "lr_too_high"


def test_the_data_cause_quotes_the_loss_just_before_the_nan():
    log = load("mlp_036_nan_pixels_batch")
    d = diagnose(log)
    data = next(c for c in d.causes if c.id == "data_issue")
    (before,) = [e for e in data.evidence if e.key == "evidence.nan_without_growth"]
    train = log.metrics[(log.metrics["split"] == "train") & (log.metrics["metric"] == "loss")]
    finite = train[np.isfinite(train["value"]) & (train["step"] < d.symptom.onset_step)]
    assert before.step == int(finite["step"].iloc[-1])
    assert float(before.params["before"]) == pytest.approx(float(finite["value"].iloc[-1]), rel=1e-3)
    assert before.params["pct"] <= 5  # near zero when it broke, not a loss that had been growing


def test_evaluations_after_the_nan_are_not_overfitting(monkeypatch):
    """resnet_008 (PyTorch-tutorial print log): NaN pixels at step 45; the evaluations after it score
    10 % (chance), a net whose weights are gone, not one that overfits: LD106 reads only those before."""
    log = load("resnet_008_nan_pixels_batch")
    d = diagnose(log)
    assert d.symptom.symptom == "nan" and d.causes[0].id == "data_issue"
    assert not [f for f in d.findings if f.rule == "LD106"]
    assert "overfitting" not in [c.id for c in d.causes]
    # control: with every evaluation read, the accuracy's fall from 56 % to 10 % reads as overfitting
    # (before the refit of nan_early_steps it even came first)
    monkeypatch.setattr(Context, "before_breakdown", lambda self, steps: np.ones(len(steps), dtype=bool))
    d = diagnose(log)
    assert [f.rule for f in d.findings if f.rule == "LD106"] == ["LD106"]
    assert "overfitting" in [c.id for c in d.causes]
