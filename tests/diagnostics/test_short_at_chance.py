"""A log too short for a shape (fewer than `ld103_min_buckets` points) still has a level: a loss at ln(C)
with the accuracy at chance, logged after a whole epoch of training, learned nothing (LD103). Logged at
the first update, the same level is only the untrained net's."""

from __future__ import annotations

from pathlib import Path

from diag_helpers import SAMPLE_LOGS

from diagnostics import diagnose, fitted
from parsers import load_paths

KERAS_HEADER = "epoch,accuracy,learning_rate,loss,val_accuracy,val_loss\n"


def keras_log(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "training.csv"
    path.write_text(KERAS_HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_one_epoch_at_chance_is_flat():
    """A real ResNet run with batch 1 under BatchNorm (Keras CSVLogger, one epoch of 800 steps): loss
    2.342 = ln(10) within 2 %, validation accuracy 9.7 %. It was called healthy at 72 % on one point."""
    assert fitted.PARAMS.ld103_min_buckets > 1
    log = load_paths(sorted((SAMPLE_LOGS / "corpus" / "runs" / "resnet_014_batch1_bn").iterdir()))
    d = diagnose(log)
    assert d.symptom.symptom == "flat"
    assert d.symptom.rule == "LD103"
    (finding,) = [f for f in d.findings if f.rule == "LD103"]
    assert "evidence.accuracy_at_chance" in [e.key for e in finding.evidence]


def test_one_epoch_at_chance_loss_but_learned_accuracy_is_not_flat(tmp_path):
    """The same loss with an accuracy of 62 % (ten classes): the loss alone is no verdict."""
    path = keras_log(tmp_path, ["0,0.6,0.001,2.342,0.62,2.30"])
    assert diagnose(load_paths([path])).symptom.symptom == "healthy"


def test_two_epochs_at_chance_are_flat_too(tmp_path):
    """Two epoch rows, both at ln(10) with 10 % accuracy."""
    path = keras_log(tmp_path, ["0,0.1,0.001,2.31,0.1,2.30", "1,0.1,0.001,2.30,0.1,2.30"])
    assert diagnose(load_paths([path])).symptom.symptom == "flat"


def test_the_untrained_nets_first_loss_is_not_flat(tmp_path):
    """A per-step log with only its step-0 line at ln(10) and 10 % accuracy: the untrained net's loss,
    no verdict on what training did."""
    path = tmp_path / "train.log"
    path.write_text("step 0: loss 2.3030 accuracy 0.100\n", encoding="utf-8")
    d = diagnose(load_paths([path]))
    assert d.symptom.symptom != "flat"
