"""LD103: an evaluation accuracy that barely rose from a low first value, while the evaluation loss stayed
level with the training loss, makes a run flat whatever its loss did (`ld103_stalled_eval_level`): a
blow-up at the start that settles "falls" a long way without the model learning. Real runs of the
corpus's tuning sets: char-LMs 300-1,000x above their lr, logged by Keras and Lightning; healthy
low-accuracy char-LMs and eval-gap runs stay what they were."""

from dataclasses import replace

import pytest
from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose, fitted
from parsers import load_paths

ON = replace(fitted.PARAMS, ld103_stalled_eval_level=0.3)
OFF = replace(fitted.PARAMS, ld103_stalled_eval_level=0.0)


def _load(name: str):
    set_name, run = name.split("/", 1)
    return load_paths(sorted((SAMPLE_LOGS / set_name / "runs" / run).iterdir()))


def _flat_evidence(diagnosis) -> set[str]:
    return {e.key for f in diagnosis.findings if f.rule == "LD103" for e in f.evidence}


@pytest.mark.parametrize(
    "name",
    [
        "corpus_extra/charlm_143_lr_x300",  # Keras CSV, loss 20 -> 2.8, val accuracy 0.055 -> 0.086
        "corpus_extra/charlm_149_lr_x1000",
        "corpus_extra/charlm_239_lr_x1000",  # Lightning CSV, loss 101 -> 15
        "corpus_extra/charlm_245_lr_x1000",
    ],
)
def test_a_settled_blow_up_whose_accuracy_never_rose_is_flat(name):
    log = _load(name)
    before, after = diagnose(log, params=OFF), diagnose(log, params=ON)
    assert before.symptom.symptom == "healthy", name
    assert after.symptom.symptom == "flat", name
    assert "evidence.eval_stalled" in _flat_evidence(after)
    assert after.causes[0].id == "lr_too_high", name  # the stated lr is far above the usual range


@pytest.mark.parametrize(
    "name",
    [
        "corpus/charlm_059_healthy_step_decay",  # val accuracy 0.22 -> 0.30: slow, but it learns
        "corpus_extra/charlm_185_healthy_dropout_floor",
        "corpus_extra/charlm_251",
    ],
)
def test_a_low_accuracy_that_rises_is_not_stalled(name):
    d = diagnose(_load(name), params=ON)
    assert "evidence.eval_stalled" not in _flat_evidence(d), name
    assert d.symptom.symptom != "flat", name


@pytest.mark.parametrize(
    "name",
    [
        "corpus/resnet_056_bn_momentum_1e-04",  # val accuracy 0.15 -> 0.11, val loss 8.2 vs train 0.18
        "corpus_extra/resnet_224_bn_momentum_3e-04",
        "corpus_extra/charlm_251_tiny_data_24",
    ],
)
def test_an_eval_gap_is_not_a_flat_run(name):
    """Training pulled far away from the evaluation: the stalled accuracy is the gap's (LD106)."""
    d = diagnose(_load(name), params=ON)
    assert "evidence.eval_stalled" not in _flat_evidence(d), name
    assert d.symptom.symptom == "eval_gap", name
