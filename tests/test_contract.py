"""The shared contract: tidy metrics frame, run facts merging, and raw-input decoding."""

import gzip

import numpy as np
import pytest

from parsers import ParseError, load
from parsers.model import LogLine, RunMeta, TrainingLog, frame_from_columns, validate_metrics
from parsers.names import canonical_metric, split_and_metric
from parsers.source import SourceFile


def _frame():
    return frame_from_columns(
        {
            "step": [0, 10, 20, 0, 20],
            "split": ["train", "train", "train", "test", "test"],
            "metric": ["loss", "loss", "loss", "loss", "loss"],
            "name": ["loss", "loss", "loss", "test#0/loss", "test#0/loss"],
            "value": [2.3, float("nan"), float("inf"), 2.4, 2.2],
        }
    )


def test_frame_from_columns_honours_contract_and_keeps_nonfinite():
    frame = _frame()
    validate_metrics(frame)
    values = frame["value"].to_numpy()
    assert np.isnan(values[1]) and np.isposinf(values[2])
    assert frame["line"].tolist() == [0] * 5 and frame["epoch"].isna().all()


def test_validate_rejects_unknown_split():
    frame = frame_from_columns({"step": [1], "split": ["dev"], "metric": ["loss"], "value": [1.0]})
    with pytest.raises(ValueError, match="unknown split"):
        validate_metrics(frame)


def test_series_picks_first_name_when_several_share_a_metric():
    frame = frame_from_columns(
        {
            "step": [0, 0, 10, 10],
            "split": ["test"] * 4,
            "metric": ["loss"] * 4,
            "name": ["net0", "net1", "net0", "net1"],
            "value": [1.0, 5.0, 0.9, 4.0],
        }
    )
    log = TrainingLog(metrics=frame, meta=RunMeta())
    assert log.series("loss", "test")["value"].tolist() == [1.0, 0.9]
    assert log.series("loss", "test", name="net1")["value"].tolist() == [5.0, 4.0]


@pytest.mark.parametrize(
    ("segments", "steps", "expected"),
    [
        ([0, 0, 0, 1, 1], [0, 10, 10, 0, 5], ["a", "b", "c", "d", "e"]),  # in order (ties kept)
        ([1, 0, 0, 1, 0], [0, 20, 10, 5, 30], ["c", "b", "e", "a", "d"]),  # by segment, then step
        ([0, 0, 0, 0, 0], [10, 0, 10, 5, 0], ["b", "e", "d", "a", "c"]),  # stable among equal steps
    ],
)
def test_series_orders_rows_by_segment_then_step(segments, steps, expected):
    frame = frame_from_columns(
        {
            "step": steps,
            "segment": segments,
            "split": ["train"] * 5,
            "metric": ["loss"] * 5,
            "value": [1.0] * 5,
            "source": list("abcde"),
        }
    )
    assert (
        TrainingLog(metrics=frame, meta=RunMeta()).series("loss")["source"].astype(str).tolist() == expected
    )


def test_meta_merge_fills_only_missing_facts_and_keeps_lines():
    log_meta = RunMeta(framework="caffe", base_lr=0.01)
    proto = RunMeta(base_lr=0.5, momentum=0.99)
    proto.where["momentum"] = LogLine("solver.prototxt", 3, "momentum: 0.99")
    log_meta.merge(proto)
    assert log_meta.base_lr == 0.01
    assert log_meta.momentum == 0.99
    assert log_meta.where["momentum"].line == 3


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("val_loss", ("val", "loss")),
        ("eval_loss", ("val", "loss")),
        ("train/box_loss", ("train", "box_loss")),
        ("test_acc", ("test", "accuracy")),
        ("learning_rate", ("train", "lr")),
        ("loss_cls", ("train", "loss_cls")),
    ],
)
def test_split_and_metric(name, expected):
    assert split_and_metric(name) == expected


def test_canonical_metric_aliases():
    assert canonical_metric("Accuracy") == "accuracy"
    assert canonical_metric("accuracy_top5") == "top5"
    assert canonical_metric("total_loss") == "loss"


def test_source_decodes_gzip_gbk_and_carriage_returns():
    text = "第1轮 loss=0.5\r进度 50%\r\nEpoch 2 loss=0.4\n"
    source = SourceFile.from_bytes("train.log.gz", gzip.compress(text.encode("gb18030")))
    assert source.name == "train.log"
    assert source.encoding.lower().replace("_", "").startswith(("gb", "cp936"))
    assert source.lines()[:3] == ["第1轮 loss=0.5", "进度 50%", "Epoch 2 loss=0.4"]


def test_truncated_gzip_keeps_recovered_part():
    packed = gzip.compress(b"Epoch 1 loss=0.5\n" * 2000)
    source = SourceFile.from_bytes("t.log.gz", packed[: len(packed) // 2])
    assert source.data.startswith(b"Epoch 1 loss=0.5")
    assert any("truncated" in note for note in source.notes)


def test_binary_and_empty_inputs_give_clear_errors():
    with pytest.raises(ParseError, match="empty"):
        load([("empty.log", b"")])
    with pytest.raises(ParseError, match="no training metrics recognised") as err:
        load([("weights.bin", bytes(range(256)) * 64)])
    assert "binary data" in str(err.value)
