"""The engine over the unmodified real logs in ../shared/real_logs (skipped when absent or when no
parser reads a file yet): no crash, no rule error, a symptom for every file, known runs right."""

import csv
from collections import Counter

import pytest
from diag_helpers import REAL_LOGS

from diagnostics import diagnose
from diagnostics.evaluate import REAL_LABELS
from diagnostics.model import SYMPTOMS
from parsers import ParseError, load_paths

pytestmark = pytest.mark.skipif(not (REAL_LOGS / "MANIFEST.csv").exists(), reason="real logs absent")

# Runs read by hand (symptom, and the first cause where the log tells it), one source for this test and
# `python -m diagnostics.evaluate --set real`: sample_logs/real_logs_labels.csv.
with REAL_LABELS.open(newline="", encoding="utf-8") as _fh:
    # Only the rows the rules were checked against while they were written ("tuned") are asserted here;
    # the "blind" rows, labelled later without running the tool, measure it (`evaluate --set real-blind`).
    _LABELS = [r for r in csv.DictReader(_fh) if r["labelled"] == "tuned"]
KNOWN_HEALTHY = [r["path"] for r in _LABELS if r["symptom"] == "healthy"]
KNOWN_PROBLEMS = {
    r["path"]: (r["symptom"], r["cause"] or None)
    for r in _LABELS
    if r["symptom"] not in ("healthy", "unhealthy")
}
# RMSProp at lr 0.01 on CaffeNet: the raw loss hits Caffe's clamp 87.3365.
KNOWN_LR_TOO_HIGH = [
    r["path"] for r in _LABELS if r["symptom"] == "unhealthy" and r["cause"] == "lr_too_high"
]


def _files() -> list[str]:
    with (REAL_LOGS / "MANIFEST.csv").open(newline="", encoding="utf-8") as fh:
        return [row["file"] for row in csv.DictReader(fh)]


# A crash log with no iteration at all: the parser's error says so (tests/parsers/test_real_logs.py).
NO_TRAINING_DATA = {"caffe/ssd300_vgg16_ncs_retrain_job.log"}


def _diagnose(rel: str):
    if rel in NO_TRAINING_DATA:
        with pytest.raises(ParseError):
            load_paths([REAL_LOGS / rel])
        pytest.skip(f"{rel}: holds no training data")
    return diagnose(load_paths([REAL_LOGS / rel]))


@pytest.mark.parametrize("rel", _files() if (REAL_LOGS / "MANIFEST.csv").exists() else [])
def test_every_real_log_gets_a_symptom_without_rule_errors(rel):
    d = _diagnose(rel)
    assert d.symptom.symptom in SYMPTOMS
    assert d.errors == []


@pytest.mark.parametrize("rel", KNOWN_HEALTHY)
def test_known_healthy_runs_are_healthy(rel):
    assert _diagnose(rel).symptom.symptom == "healthy"


@pytest.mark.parametrize("rel", KNOWN_LR_TOO_HIGH)
def test_rmsprop_lr_001_runs_point_at_the_lr(rel):
    d = _diagnose(rel)
    assert d.symptom.symptom != "healthy"
    assert d.causes[0].id == "lr_too_high"


@pytest.mark.parametrize("rel", sorted(KNOWN_PROBLEMS))
def test_known_failed_runs_get_their_symptom_and_cause(rel):
    symptom, cause = KNOWN_PROBLEMS[rel]
    d = _diagnose(rel)
    assert d.symptom.symptom == symptom
    if cause is not None:
        assert d.causes[0].id == cause


def test_false_alarm_rate_on_real_logs_is_low():
    """Most real logs are successful runs: at most a third may be flagged (the bad ones included)."""
    verdicts = Counter()
    for rel in _files():
        try:
            verdicts[diagnose(load_paths([REAL_LOGS / rel])).symptom.symptom] += 1
        except ParseError:
            continue
    if sum(verdicts.values()) < 20:
        pytest.skip("too few real logs readable yet")
    assert verdicts["healthy"] >= 2 / 3 * sum(verdicts.values()), verdicts
