"""`model.summary()` in a Keras log lists the net: BatchNorm layers, weight layers, skip connections and,
for a classifier, the class count C (the last weight layer's width). Read from real output of Keras 3
(`tests/fixtures/keras3/`) and of Keras 2 on TensorFlow 1 (a public log in ../shared/real_logs), and
from tables laid out as Keras 2 prints them for the shapes those runs do not have."""

from __future__ import annotations

from pathlib import Path

import pytest

from diagnostics import diagnose
from parsers import load, load_paths
from parsers.keras_summary import summary_facts
from parsers.model import RunMeta

KERAS3 = Path(__file__).resolve().parents[1] / "fixtures" / "keras3"
AUTOTRAINER = (
    Path(__file__).resolve().parents[2]
    / ".."
    / "shared"
    / "real_logs"
    / "other"
    / "keras_stdout_autotrainer.out"
)


def test_keras3_box_table():
    """Keras 3.15 on torch: Dense(64) -> BatchNormalization (its type on a row of its own) -> Dense(3),
    trained with an accuracy metric."""
    meta = load_paths([KERAS3 / "sgd_lr5" / "fit.log"]).meta
    assert [(b.name, b.where.line) for b in meta.batchnorm] == [("batch_normalization_26", 7)]
    assert meta.depth == 2
    assert meta.num_classes == 3
    assert meta.where["num_classes"].line == 10 and "dense_53 (Dense)" in meta.where["num_classes"].text
    assert meta.has_residual is None


@pytest.mark.skipif(not AUTOTRAINER.is_file(), reason="../shared/real_logs is absent")
def test_keras2_plain_table_of_a_real_log():
    """AUTOTRAINER's Keras 2 / TF1 log: Embedding -> LSTM -> BatchNormalization (type cut to `(Batch`)
    -> Dense(128) -> Dense(1). A sigmoid head of width 1 names no C."""
    meta = load_paths([AUTOTRAINER]).meta
    assert [(b.name, b.where.line) for b in meta.batchnorm] == [("batch_normalization_1", 52)]
    assert meta.depth == 2  # the two Dense layers; Embedding and LSTM are not counted
    assert meta.num_classes is None


KERAS2_TABLE = """Model: "model_1"
__________________________________________________________________________________________________
Layer (type)                    Output Shape         Param #     Connected to
==================================================================================================
input_1 (InputLayer)            (None, 32, 32, 3)    0
__________________________________________________________________________________________________
conv2d_1 (Conv2D)               (None, 32, 32, 16)   448         input_1[0][0]
__________________________________________________________________________________________________
conv2d_2 (Conv2D)               (None, 32, 32, 16)   2320        conv2d_1[0][0]
__________________________________________________________________________________________________
add_1 (Add)                     (None, 32, 32, 16)   0           conv2d_1[0][0]
                                                                 conv2d_2[0][0]
__________________________________________________________________________________________________
conv2d_3 (Conv2D)               (None, 32, 32, {width})   {params}         add_1[0][0]
==================================================================================================
Total params: 3,000
Trainable params: 3,000
Non-trainable params: 0
__________________________________________________________________________________________________
Epoch 1/2
10/10 [==============================] - 1s 50ms/step - loss: {loss}
Epoch 2/2
10/10 [==============================] - 1s 50ms/step - loss: {loss}
"""


def _facts(text: str) -> RunMeta:
    meta = RunMeta()
    summary_facts(text, "train.log", meta)
    return meta


def test_a_functional_net_with_a_skip_connection():
    """A segmentation head of 21 classes after an `Add`: residual, three weight layers, C = 21 once the
    log reports an accuracy; no BatchNorm."""
    text = KERAS2_TABLE.format(width=21, params=357, loss="1.2 - acc: 0.40")
    meta = _facts(text)
    assert meta.has_residual is True and meta.where["has_residual"].line == 11
    assert meta.depth == 3 and meta.batchnorm == []
    assert meta.num_classes == 21 and meta.where["num_classes"].line == 14


def test_without_an_accuracy_the_last_width_is_no_class_count():
    """The same net trained with a regression loss only: its output width is not C."""
    meta = _facts(KERAS2_TABLE.format(width=21, params=357, loss="0.8"))
    assert meta.num_classes is None and meta.depth == 3


def test_a_nested_base_model_hides_its_layers():
    """A pretrained base shown as one `Functional` row: its weight layers are not listed, so no depth."""
    text = KERAS2_TABLE.format(width=21, params=357, loss="1.2 - acc: 0.40").replace(
        "conv2d_2 (Conv2D)        ", "vgg16 (Functional)       "
    )
    assert _facts(text).depth is None


def test_a_log_without_a_summary_has_none_of_these_facts():
    meta = _facts("Epoch 1/2\n10/10 [====] - 1s - loss: 1.0 - acc: 0.5\n")
    assert (meta.depth, meta.num_classes, meta.batchnorm, meta.has_residual) == (None, None, [], None)


def test_a_garbled_table_does_not_raise():
    text = "Layer (type)  Output Shape  Param #\n" + "x (Dense) (None, \n" * 5 + "│ │\n┃\n"
    meta = _facts(text)
    assert meta.depth is None


def test_the_class_count_makes_the_lr5_run_flat_far_above_chance():
    """The real lr-5 Keras 3 run: its loss sits at 5-7, five times ln(3), all run. Without C it was
    healthy; with C from the summary it is flat, and a too small lr is not among the causes (it would
    hold the loss at ln(3), not far above it); too large steps are."""
    d = diagnose(load_paths([KERAS3 / "sgd_lr5" / "fit.log"]))
    assert d.symptom.symptom == "flat"
    ids = [c.id for c in d.causes]
    assert "lr_too_high" in ids[:2] and "lr_too_low" not in ids
    lr_high = next(c for c in d.causes if c.id == "lr_too_high")
    assert lr_high.evidence[0].key == "evidence.held_above_chance"
    # the first point is the first epoch's mean, not the untrained net's loss
    (high_start,) = [f for f in d.findings if f.rule == "LD110"]
    assert high_start.evidence[0].key == "evidence.initial_high_epoch"


def test_the_lr005_run_stays_healthy():
    d = diagnose(load_paths([KERAS3 / "sgd_lr0.05" / "fit.log"]))
    assert d.symptom.symptom == "healthy"


def test_the_table_survives_a_round_trip_through_load():
    text = (KERAS3 / "sgd_lr5" / "fit.log").read_bytes()
    assert load([("fit.log", text)]).meta.num_classes == 3


def test_a_renamed_batchnorm_layer_is_known_by_its_type():
    """Keras 3 puts a long type on a row of its own: a BatchNorm layer named `bn` is found by it."""
    text = (KERAS3 / "sgd_lr5" / "fit.log").read_text(encoding="utf-8")
    renamed = text.replace("│ batch_normalization_26          │", "│ bn                              │")
    meta = _facts(renamed)
    assert [(b.name, b.where.line) for b in meta.batchnorm] == [("bn", 7)]
