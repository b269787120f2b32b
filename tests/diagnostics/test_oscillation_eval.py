"""LD105 reads swings of the training loss as the batches the log sampled, not an oscillating run, when
the evaluation loss (a mean over a whole pass) fell steadily meanwhile: single batches logged every k
steps swing with the batch's difficulty, while an lr that overshoots swings the evaluated model too."""

from __future__ import annotations

import dataclasses

import numpy as np
from diag_helpers import REPO, SAMPLE_LOGS, make_log

from diagnostics import diagnose, fitted
from parsers import load_paths

NEVER = dataclasses.replace(fitted.PARAMS, ld105_eval_tau=-1.01)
OVERSHOOT = REPO / "tests" / "fixtures" / "lr_overshoot"


def ld105(d):
    return next(f for f in d.findings if f.rule == "LD105")


def test_single_batches_of_a_healthy_run_are_a_note():
    """A tabular MLP at batch 8 (Lightning, one batch's loss every 50 steps): 0.02 to 0.7 around one
    level all run, while the validation loss falls from 0.37 to 0.09 and accuracy reaches 97 %."""
    log = load_paths(sorted((SAMPLE_LOGS / "corpus_extra" / "runs" / "mlp_246").iterdir()))
    d = diagnose(log)
    assert d.symptom.symptom == "healthy"
    note = ld105(d)
    assert note.severity == "info" and note.measurements["eval_steady"] == 1.0
    steady = next(e for e in note.evidence if e.key == "evidence.swings_eval_steady")
    assert steady.params["first"] == "0.3691" and steady.params["tau"] <= -0.5
    # the control: without the evaluation's reading, the same swings are the oscillating symptom
    assert diagnose(log, params=NEVER).symptom.symptom == "oscillating"


def swinging_train() -> np.ndarray:
    """200 logged points of a loss that swings by half its level on a 16-point cycle, without a trend."""
    t = np.arange(200)
    return 1.0 + 0.5 * np.sign(np.sin(2 * np.pi * t / 16)) + 0.02 * np.cos(t)


def test_swings_with_a_steadily_falling_evaluation_are_not_oscillation():
    eval_steps = np.arange(1, 11) * 400
    val = (eval_steps, np.linspace(2.0, 0.8, 10))
    d = diagnose(make_log(swinging_train(), val=val))
    assert d.symptom.symptom != "oscillating" and ld105(d).severity == "info"


def test_swings_that_the_evaluation_shares_stay_oscillation():
    """An evaluation loss that swings as well (the model itself jumps around), one that falls too little,
    one that turned non-finite, and none at all leave the symptom standing."""
    eval_steps = np.arange(1, 11) * 400
    swinging = (eval_steps, 1.2 + 0.4 * (-1.0) ** np.arange(10))
    barely = (eval_steps, np.linspace(1.2, 1.1, 10))
    broke = (eval_steps, np.append(np.linspace(2.0, 0.9, 9), np.nan))  # steady, then non-finite
    for val in (swinging, barely, broke, None):
        d = diagnose(make_log(swinging_train(), val=val))
        assert d.symptom.symptom == "oscillating", val
        assert "evidence.swings_eval_steady" not in [e.key for e in ld105(d).evidence]


def test_an_evaluation_that_jumps_is_no_steady_reference():
    """A ResNet warmed up to 100x its lr over the whole run (HF Trainer state): its validation loss
    ends a third of where it began, trending down (Kendall tau -0.44), but jumps 8.3 -> 63 -> 98 -> 35 on
    the way: the model itself swings, and the training loss's swings stay the oscillating symptom."""
    log = load_paths(sorted((OVERSHOOT / "resnet_008_overshoot_x100").iterdir()))
    swings = dataclasses.replace(fitted.PARAMS, oscillation_max_tau=-0.3)
    d = diagnose(log, swings)
    assert d.symptom.symptom == "oscillating"
    assert "evidence.swings_eval_steady" not in [e.key for e in ld105(d).evidence]
    # the control: allowing any jump between evaluations, the same run would pass for sampled batches
    lenient = diagnose(log, dataclasses.replace(swings, ld105_eval_max_rise=100.0))
    assert lenient.symptom.symptom != "oscillating"
