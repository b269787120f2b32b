"""The identifiability study's inputs (`bench/identifiability.py`): what the engine measured on a run,
scale-free curve shapes, no run length, and nothing lost on an unreadable log. The model itself is a
measuring instrument (scikit-learn, dev only) and is not tested here."""

from __future__ import annotations

import numpy as np
from diag_helpers import SAMPLE_LOGS, decaying, make_log

from bench.identifiability import Run, curve_statistics, judge, run_features
from diagnostics import diagnose, fitted
from diagnostics.context import Context
from parsers import load_paths

RUN = SAMPLE_LOGS / "corpus" / "runs" / "cnn_043_raw_inputs_x255"  # a training-split run with causes


def test_curve_statistics_do_not_depend_on_the_loss_scale():
    loss = decaying(120, 2.3, 0.4, 30, 0.02)
    plain = Context(make_log(loss), fitted.PARAMS).train_loss
    scaled = Context(make_log(loss * 250), fitted.PARAMS).train_loss
    a, b = curve_statistics("train", plain), curve_statistics("train", scaled)
    assert a.keys() == b.keys() and {"train.end", "train.min", "train.at0.5", "train.tau"} <= a.keys()
    assert all(np.isclose(a[k], b[k]) for k in a)
    assert a["train.end"] < np.log(0.4 / 2.3) + 0.2  # the fall is measured, as a log ratio to the start


def test_run_features_hold_the_verdict_the_causes_and_the_findings_measurements():
    log = load_paths(sorted(RUN.iterdir()))
    diagnosis = diagnose(log)
    features = run_features(Context(log, fitted.PARAMS), diagnosis)
    assert features[f"symptom.{diagnosis.symptom.symptom}"] == diagnosis.symptom.confidence
    assert diagnosis.causes and features[f"cause.{diagnosis.causes[0].id}"] == diagnosis.causes[0].confidence
    measured = [f for f in diagnosis.findings if f.measurements]
    assert measured and all(f"{f.rule}.{k}" in features for f in measured for k in f.measurements)
    assert all(np.isfinite(v) for v in features.values())


def test_step_numbers_are_left_out():
    """A step number is the run's length in disguise (the generator's recipes differ in length, not the
    faults): LD112's spike steps on a training-split NaN run stay out, its other measurements go in."""
    log = load_paths(sorted((RUN.parent / "cnn_043_garbage_every17").iterdir()))
    diagnosis = diagnose(log)
    ld112 = next(f for f in diagnosis.findings if f.rule == "LD112")
    steps = [k for k in ld112.measurements if k.endswith("_step")]
    assert steps  # the finding does carry step numbers
    features = run_features(Context(log, fitted.PARAMS), diagnosis)
    assert not [k for k in features if k.endswith("_step")]
    assert all(f"LD112.{k}" in features for k in ld112.measurements if k not in steps)


def test_an_unreadable_log_is_kept_without_features(tmp_path):
    broken = tmp_path / "train.log"
    broken.write_bytes(b"\x00\x01 not a log \xff" * 50)
    run = judge(Run("corpus-test", str(broken), "healthy", []))
    assert run.features is None and run.verdict == "unreadable"
