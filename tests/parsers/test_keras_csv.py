"""Keras CSVLogger: epoch steps, literal nan, appended runs as segments, separators, sniffing."""

import math
from pathlib import Path

import numpy as np
import pytest

from parsers import load_paths, validate_metrics
from parsers.formats import keras_csv
from parsers.registry import detect
from parsers.source import SourceFile

REAL_LOGS = Path(__file__).resolve().parents[2] / "../shared/real_logs"

APPENDED = """\
epoch,acc,loss,val_acc,val_loss
0,0.57779322548,1.59729265754,0.668997369948,0.854682637734
1,0.677957532861,0.822597468164,0.651613317086,0.911287924402
2,0.712651668352,nan,0.710757585481,inf
0,0.819584597659,0.496022997552,0.766934800915,0.604201504606
1,0.831980805875,0.452323064756,0.757832345571,0.640544554018
"""


def _source(text: str, name: str = "training.log") -> SourceFile:
    return SourceFile.from_bytes(name, text.encode())


def test_columns_map_to_split_and_metric_with_exact_values():
    frame = keras_csv.parse(_source(APPENDED)).metrics
    validate_metrics(frame)
    first = frame[frame["line"] == 2]
    assert first[["split", "metric", "name"]].astype(str).values.tolist() == [
        ["train", "accuracy", "acc"],
        ["train", "loss", "loss"],
        ["val", "accuracy", "val_acc"],
        ["val", "loss", "val_loss"],
    ]
    assert first["value"].tolist() == [0.57779322548, 1.59729265754, 0.668997369948, 0.854682637734]
    assert (first["step"] == 0).all() and (first["epoch"] == 0.0).all()


def test_nan_and_inf_strings_are_values():
    frame = keras_csv.parse(_source(APPENDED)).metrics
    row = frame[frame["line"] == 4].set_index("name")["value"]
    assert math.isnan(row["loss"]) and np.isposinf(row["val_loss"])


def test_epoch_reset_starts_a_segment_and_step_stays_the_epoch():
    frame = keras_csv.parse(_source(APPENDED)).metrics
    loss = frame[(frame["metric"] == "loss") & (frame["split"] == "train")]
    assert loss["step"].tolist() == [0, 1, 2, 0, 1]
    assert loss["segment"].tolist() == [0, 0, 0, 1, 1]
    assert loss["line"].tolist() == [2, 3, 4, 5, 6]


def test_repeated_epoch_also_starts_a_segment():
    text = "epoch,loss\n5,1.0\n6,0.9\n6,0.95\n7,0.8\n"
    frame = keras_csv.parse(_source(text)).metrics
    assert frame["step"].tolist() == [5, 6, 6, 7] and frame["segment"].tolist() == [0, 0, 1, 1]


@pytest.mark.parametrize("sep", [";", "\t"])
def test_other_separators(sep):
    text = APPENDED.replace(",", sep)
    assert keras_csv.sniff(_source(text)) == 0.8
    frame = keras_csv.parse(_source(text)).metrics
    assert len(frame) == 20 and frame["value"].iloc[1] == 1.59729265754


def test_repeated_header_is_dropped_and_a_cut_line_is_warned():
    text = "epoch,loss,val_loss\n0,1.5,1.6\nepoch,loss,val_loss\n0,1.4,1.5\n1,1.3\n"
    parsed = keras_csv.parse(_source(text))
    assert parsed.metrics["value"].tolist() == [1.5, 1.6, 1.4, 1.5]
    assert parsed.metrics["segment"].tolist() == [0, 0, 1, 1]
    assert [(w.line, parsed.skipped_lines) for w in parsed.warnings] == [(5, 1)]


def test_sniff_needs_epoch_first_and_keras_names():
    assert detect(_source(APPENDED)) == ("keras_csv", 0.8)
    hand_written = _source("epoch,loss,ppl,accuracy\n0, 9.15862, 9495.92153,0.023\n")
    assert keras_csv.sniff(hand_written) == 0.4  # names not sorted: not CSVLogger's own output
    assert keras_csv.parse(hand_written).meta.framework == "unknown"
    assert keras_csv.parse(_source(APPENDED)).meta.framework == "keras"
    assert keras_csv.sniff(_source("epoch,step,loss\n0,1,2\n")) == 0.0
    assert keras_csv.sniff(_source("epoch,train_loss,eval_loss\n0,1,2\n")) == 0.0


@pytest.mark.skipif(not (REAL_LOGS / "keras_csv").is_dir(), reason="real logs not available")
def test_real_keras_logs():
    expected = {  # file: (loss points, segments)
        "braincnn_regression_commit4387aa7.log": (354, 1),
        "braincnn_regression_commit9b59f70.log": (1000, 1),
        "irfanet_training_logs191017_2.log": (144, 2),
        "irfanet_training_logs221017_appended.log": (151, 4),
    }
    for name, (points, segments) in expected.items():
        log = load_paths([REAL_LOGS / "keras_csv" / name])
        validate_metrics(log.metrics)
        loss = log.series("loss")
        assert (len(loss), loss["segment"].nunique()) == (points, segments), name
        assert log.meta.format == "keras_csv" and not log.warnings
    nan_run = load_paths([REAL_LOGS / "keras_csv" / "braincnn_regression_commit4387aa7.log"])
    assert nan_run.series("loss")["value"].isna().all()
    assert nan_run.series("mean_absolute_error").iloc[0]["value"] == 2.6154770585594536e34
    appended = load_paths([REAL_LOGS / "keras_csv" / "irfanet_training_logs191017_2.log"])
    second_run = appended.series("loss", segment=1).iloc[0]
    assert (second_run["step"], second_run["line"], second_run["value"]) == (0, 37, 0.496022997552)
    assert appended.series("loss", "val", segment=0).iloc[-1]["value"] == 1.84560037546
    resets = load_paths([REAL_LOGS / "keras_csv" / "irfanet_training_logs221017_appended.log"])
    starts = resets.series("loss").groupby("segment")["line"].min().tolist()
    assert starts == [2, 135, 139, 144]
