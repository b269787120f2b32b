"""LD116: a log that holds one training loss shows no trend, so "healthy" is shown as uncertain, not as a
verdict; a NaN after it, or an evaluation curve beside it, still decides."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose
from diagnostics.__main__ import render_text
from i18n import t
from parsers import TrainingLog, load, load_paths

HEALTHY_LENET = SAMPLE_LOGS / "caffe_lenet_step_healthy.log"
# The first training display of that log ("Iteration 0 ..., loss = 2.26809") and its two detail lines.
FIRST_DISPLAY_LINES = 541


def first_lines(path, count: int) -> TrainingLog:
    text = path.read_bytes().splitlines(keepends=True)
    return load([(path.name, b"".join(text[:count]))])


def ld116(log: TrainingLog):
    d = diagnose(log)
    return d, [f for f in d.findings if f.rule == "LD116"]


def test_a_caffe_run_stopped_after_its_first_display():
    """A real LeNet run (corpus extra set) fed raw 0..255 pixels: its log has one training loss, 75.0026
    at iteration 0, then `Optimization stopped early.`; the calibration alone would show "Healthy 73 %"."""
    log = load_paths(sorted((SAMPLE_LOGS / "corpus_extra/runs/caffe_cnn_040_no_scale_raw_pixels").iterdir()))
    d, (found,) = ld116(log)
    assert d.symptom.symptom == "healthy" and d.uncertain
    assert found.severity == "info" and found.step == 0
    assert found.evidence[0].params == {"loss": "75", "step": 0}
    assert found.evidence[0].quote is not None and found.evidence[0].quote.line == 532  # `loss = 75.0026`
    text = render_text(log, d, "en")
    assert "== Uncertain" in text and "== " + t("cli.verdict", "en", title="Healthy", pct=73) not in text


def test_a_healthy_log_cut_after_its_first_loss():
    whole = diagnose(load_paths([HEALTHY_LENET]))
    assert whole.symptom.symptom == "healthy" and not whole.uncertain
    assert "LD116" not in {f.rule for f in whole.findings}
    d, found = ld116(first_lines(HEALTHY_LENET, FIRST_DISPLAY_LINES))
    assert found and d.uncertain
    # Two displays are a trend (however short): the verdict is the calibration's to temper.
    _, found = ld116(first_lines(HEALTHY_LENET, FIRST_DISPLAY_LINES + 3))
    assert not found


def test_a_nan_after_the_one_loss_is_the_verdict():
    log = first_lines(HEALTHY_LENET, FIRST_DISPLAY_LINES)
    train = (log.metrics["metric"] == "loss") & (log.metrics["split"] == "train")
    nan_row = log.metrics[train].tail(1).assign(step=20, value=np.nan)
    log = dataclasses.replace(log, metrics=pd.concat([log.metrics, nan_row], ignore_index=True))
    d, found = ld116(log)
    assert not found and d.symptom.symptom == "nan"


def test_an_evaluation_curve_shows_the_trend():
    """One training loss (a summary at the end) beside an evaluation loss logged many times."""
    log = first_lines(HEALTHY_LENET, FIRST_DISPLAY_LINES)
    train = (log.metrics["metric"] == "loss") & (log.metrics["split"] == "train")
    val = pd.concat([log.metrics[train].tail(1)] * 5, ignore_index=True)
    val = val.assign(split="test", step=[0, 100, 200, 300, 400], value=[2.3, 1.2, 0.6, 0.4, 0.35])
    log = dataclasses.replace(log, metrics=pd.concat([log.metrics[train], val], ignore_index=True))
    _, found = ld116(log)
    assert not found
