"""An evaluation that learned nothing makes a stall whatever the loss does.

LD103: an evaluation accuracy that barely rose from a low first value, while the evaluation loss stayed
level with the training loss, makes a run flat whatever its loss did (`ld103_stalled_eval_level`): a
blow-up at the start that settles "falls" a long way without the model learning. Real runs of the
corpus's tuning sets: char-LMs 300-1,000x above their lr, logged by Keras and Lightning; healthy
low-accuracy char-LMs and eval-gap runs stay what they were.

LD104: an evaluation accuracy that never moved (`frozen_accuracy_*`) makes a loss that still creeps down a
plateau (`ld104_frozen_stall_gain`): FCNs whose pixel accuracy stays at the background's share."""

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
    # the loss fell a long way: "no progress" with its drop would contradict the reason given
    assert "evidence.no_progress" not in _flat_evidence(after)
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


FROZEN_ON = replace(fitted.PARAMS, ld104_frozen_stall_gain=0.1)
FROZEN_OFF = replace(fitted.PARAMS, ld104_frozen_stall_gain=0.0)
LOOSEST = replace(fitted.PARAMS, ld104_frozen_stall_gain=0.2)


@pytest.mark.parametrize(
    "name",
    [
        "corpus/fcn_046_inputs_div256",  # pixel accuracy 0.608 at all 5 evaluations, loss 1.10 -> 0.87
        "corpus_extra/fcn_202_frozen_random_backbone",  # 0.593 at all 12, loss 1.01 -> 0.83
    ],
)
def test_a_creeping_loss_under_a_frozen_evaluation_is_a_plateau(name):
    log = _load(name)
    before, after = diagnose(log, params=FROZEN_OFF), diagnose(log, params=FROZEN_ON)
    assert before.symptom.symptom == "healthy", name
    assert after.symptom.symptom == "plateau", name
    keys = {e.key for f in after.findings if f.rule == "LD104" for e in f.evidence}
    assert "evidence.eval_frozen" in keys


@pytest.mark.parametrize(
    "name", ["corpus/charlm_059_healthy_step_decay", "corpus/charlm_041", "corpus_extra/charlm_185"]
)
def test_a_creeping_loss_whose_evaluation_moves_stays_healthy(name):
    """Healthy char-LMs whose loss creeps down 5-20 % over the last half: at the loosest grid value they
    stay healthy, because their evaluation accuracy moved."""
    assert diagnose(_load(name), params=LOOSEST).symptom.symptom == "healthy", name
