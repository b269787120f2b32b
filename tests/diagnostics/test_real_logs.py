"""The engine over the unmodified real logs in ../shared/real_logs (skipped when absent or when no
parser reads a file yet): no crash, no rule error, a symptom for every file, known runs right."""

import csv
from collections import Counter

import pytest
from diag_helpers import REAL_LOGS

from diagnostics import diagnose
from diagnostics.model import SYMPTOMS
from parsers import ParseError, load_paths

pytestmark = pytest.mark.skipif(not (REAL_LOGS / "MANIFEST.csv").exists(), reason="real logs absent")

# Runs whose logs show ordinary, successful training (read by hand from the logs and the manifest).
KNOWN_HEALTHY = [
    "caffe/resnet20_cifar10_2016_4gpu.log",
    "caffe/squeezenet128_imagenet.log",
    "caffe/nvcaffe_resnet50_imagenet_lr0.2.log",
    "caffe/caffenet128_lsuv_bn_exp_lr.log",
    "hf_trainer_state/t5_summarization_trainer_state.json",
    "detectron2_json/medical_waste_frcnn_metrics.json",
    "print_style/t5_finetune_batchloss_bleu.log",
]
# RMSProp at lr 0.01 on CaffeNet: the raw loss hits Caffe's clamp 87.3365.
KNOWN_LR_TOO_HIGH = [
    "caffe/caffenet128_lsuv_rmsprop0.9_lr0.01.log",
    "caffe/caffenet128_lsuv_rmsprop0.95_lr0.01.log",
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
