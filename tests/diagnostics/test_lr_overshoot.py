"""LD115: a loss that climbs back as the lr keeps rising names the lr as too high, with the lr at the
lowest loss as the fix's yardstick, and never asks for a larger lr.

Real runs: `tests/fixtures/lr_overshoot/` (training-split recipes warmed up over the whole run to 30x,
100x and 300x their tuned lr, written by `sample_logs/generate_overshoot_runs.py`, labelled by the
generator's outcome check; no fit or evaluation reads them) and one run of the extra training set."""

from __future__ import annotations

import csv
import dataclasses
import math

import numpy as np
import pytest
from diag_helpers import REPO, SAMPLE_LOGS

from diagnostics import diagnose, fitted
from parsers import load_paths

FIXTURES = REPO / "tests" / "fixtures" / "lr_overshoot"


def labels() -> dict[str, str]:
    with (FIXTURES / "labels.csv").open(encoding="utf-8") as fh:
        return {row["path"]: row["symptom"] for row in csv.DictReader(fh)}


def load(folder):
    return load_paths(sorted(folder.iterdir()))


def overshoot(d):
    return next((f for f in d.findings if f.rule == "LD115"), None)


@pytest.mark.parametrize("run", [r for r, symptom in labels().items() if symptom == "healthy"])
def test_healthy_runs_warmed_up_to_a_high_lr_are_not_read_as_overshooting(run):
    assert overshoot(diagnose(load(FIXTURES / run))) is None


def test_the_rule_finds_the_faulty_runs_whose_loss_climbed_back():
    found = {run for run in labels() if overshoot(diagnose(load(FIXTURES / run)))}
    assert found == {
        "resnet_008_overshoot_x100",
        "cnn_013_overshoot_x300",
        "mlp_018_overshoot_x300",
        "charlm_023_overshoot_x300",
    }
    assert all(labels()[run] != "healthy" for run in found)


@pytest.mark.parametrize(
    "run",
    [
        "resnet_008_overshoot_x100",
        "cnn_013_overshoot_x300",
        "mlp_018_overshoot_x300",
        "charlm_023_overshoot_x300",
    ],
)
def test_the_lr_comes_first_and_its_fix_is_read_off_the_warm_up(run):
    d = diagnose(load(FIXTURES / run))
    assert d.symptom.symptom != "healthy"
    first = d.causes[0]
    assert first.id == "lr_too_high" and "LD115" in first.rules
    fix = first.fixes[0]
    assert fix.key == "fixes.lr_from_warmup"
    found = overshoot(d)
    assert found is not None
    lr_low, peak = found.measurements["lr_at_low"], found.measurements["lr_peak"]
    old, new = float(fix.params["old"]), float(fix.params["new"])
    # the whole schedule scaled so that its peak is the lr at the lowest loss / 10 (2 significant digits)
    assert new * peak / old == pytest.approx(lr_low / 10, rel=0.05)
    assert new < old
    assert "fixes.warmup" not in [f.key for f in first.fixes]  # it warms up already


def test_a_loss_back_above_its_start_under_a_rising_lr_is_not_healthy():
    """charlm_023 (HF Trainer state, Adam warmed up to 300x): the loss fell 2.5 -> 1.77, then rose to 4.1
    with the lr; measured against its minimum the rise is under LD102's divergence ratio. The generator
    calls it a plateau (its check wants 3x the minimum for a divergence)."""
    log = load(FIXTURES / "charlm_023_overshoot_x300")
    d = diagnose(log)
    assert d.symptom.symptom == "diverging" and d.causes[0].id == "lr_too_high"
    # control: without LD115 the rising lr excuses the rise, and the run reads healthy
    off = dataclasses.replace(fitted.PARAMS, ld115_gave_back=math.inf)
    assert diagnose(log, off).symptom.symptom == "healthy"


def test_the_evidence_quotes_the_logged_lr_at_the_lowest_loss():
    """resnet_146 (extra training set, Lightning CSV): SGD warmed up to 20, 100x its tuned 0.2."""
    log = load(SAMPLE_LOGS / "corpus_extra" / "runs" / "resnet_146_warmup_to_lr_x100")
    d = diagnose(log)
    found = overshoot(d)
    assert found is not None
    (evidence,) = found.evidence
    lr = log.metrics[(log.metrics["split"] == "train") & (log.metrics["metric"] == "lr")]
    logged = float(np.interp(evidence.step, lr["step"], lr["value"]))
    assert float(evidence.params["lr_low"]) == pytest.approx(logged, rel=1e-2)
    assert float(evidence.params["lr_peak"]) == pytest.approx(float(lr["value"].max()), rel=1e-2)
    assert evidence.params["pct"] >= 100  # it ended above where it started
