"""LD314 (`diagnostics/rules/batch_scaling.py`): an SGD lr many times above Goyal et al.'s linear scaling
rule for the batch. Quiet on every healthy run of the corpus and of the real logs; fires with the numbers
on the corpus's real SGD runs whose lr was raised 1000x; changes no verdict and no cause."""

import csv
from dataclasses import replace

import pytest
from diag_helpers import REAL_LOGS, SAMPLE_LOGS

from diagnostics import CONFIG_FAULTS, diagnose
from diagnostics.evaluate import REAL_LABELS
from diagnostics.registry import RULES, all_rules
from diagnostics.rules.batch_scaling import FLAG_FACTOR, MIN_BATCH, is_conv_classifier, rule_lr
from parsers import ParseError, load_paths
from parsers.model import TrainingLog

CORPUS = SAMPLE_LOGS / "corpus"
# a small CNN (Lightning, SGD, batch 128, lr 70: 1000x the tuned 0.07), of the training split
LR_X1000 = CORPUS / "runs" / "cnn_025_lr_x1000"


def _healthy(labels, base) -> list:
    with labels.open(newline="", encoding="utf-8") as fh:
        return [base / r["path"] for r in csv.DictReader(fh) if r["symptom"] == "healthy"]


def _ld314(log: TrainingLog) -> list:
    return [f for f in diagnose(log).findings if f.rule == "LD314"]


@pytest.mark.skipif(not CORPUS.is_dir(), reason="the corpus is absent")
def test_on_the_corpus_it_fires_only_on_runs_whose_lr_is_too_high():
    """Every corpus run (healthy or not): quiet on the healthy ones, and each run it fires on is labelled
    lr_too_high (the README's count comes from here)."""
    with (CORPUS / "labels.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert sum(r["symptom"] == "healthy" for r in rows) >= 200
    loud = {r["path"]: r["cause"] for r in rows if _ld314(load_paths([CORPUS / r["path"]]))}
    assert loud and set(loud.values()) == {"lr_too_high"}, loud


@pytest.mark.skipif(not (REAL_LOGS / "MANIFEST.csv").exists(), reason="real logs absent")
def test_quiet_on_every_healthy_real_log():
    paths = _healthy(REAL_LABELS, REAL_LOGS)
    assert len(paths) >= 40
    loud = []
    for path in paths:
        try:
            log = load_paths([path])
        except ParseError:
            continue
        loud += [str(path)] if _ld314(log) else []
    assert loud == []


@pytest.mark.skipif(not LR_X1000.is_dir(), reason="the corpus is absent")
def test_fires_with_the_numbers_on_an_sgd_cnn_with_lr_1000x():
    log = load_paths([LR_X1000])
    (finding,) = _ld314(log)
    assert finding.severity == "warning"  # the run went NaN
    rule, batch, fix = finding.evidence
    assert rule.params == {"lr": "70", "batch": 128, "rule": "0.05", "factor": "1.4e+03"}
    assert rule.quote is not None and rule.quote.text == "lr: 70.0"  # hparams.yaml, quoted as written
    assert batch.quote is not None and batch.quote.text == "batch_size: 128"
    assert fix.key == "evidence.lr_batch_rule_fix" and fix.params["rule"] == "0.05"


@pytest.mark.skipif(not LR_X1000.is_dir(), reason="the corpus is absent")
def test_only_where_the_rule_applies():
    log = load_paths([LR_X1000])
    meta = log.meta
    for changed in (
        {"optimizer": "adam"},  # Adam: the published lrs follow the model's size
        {"net_name": "FasterRCNN"},  # detection has its own reference
        {"net_name": "charlm_gru"},  # not a convolutional classifier
        {"batch_size": MIN_BATCH // 2},  # below the batches the rule was measured on
        {"base_lr": rule_lr(128) * FLAG_FACTOR},  # at the margin, not above it
    ):
        assert _ld314(replace(log, meta=replace(meta, **changed))) == [], changed
    assert is_conv_classifier("VGG_ILSVRC_16_layers") and not is_conv_classifier("fcn32s-shapes")


@pytest.mark.skipif(not LR_X1000.is_dir(), reason="the corpus is absent")
def test_changes_no_verdict_and_no_cause(monkeypatch):
    """Not a config fault, and no cause rule reads it: without LD314 the diagnosis is the same."""
    assert "LD314" not in CONFIG_FAULTS
    log = load_paths([LR_X1000])
    with_rule = diagnose(log).to_json()
    all_rules()  # registers the catalogue before one rule is taken out
    monkeypatch.delitem(RULES, "LD314")
    without = diagnose(log).to_json()
    with_rule["findings"] = [f for f in with_rule["findings"] if f["rule"] != "LD314"]
    without["not_applicable"] = with_rule["not_applicable"]
    assert with_rule == without
