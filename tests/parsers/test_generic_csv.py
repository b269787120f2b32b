"""Generic CSV/TSV tables, timm summary.csv and header-less transposed series: exact values, low scores."""

import math
from pathlib import Path

import pytest

from parsers import load_paths, validate_metrics
from parsers.formats import generic_csv, timm_csv
from parsers.registry import detect
from parsers.source import SourceFile

REAL_LOGS = Path(__file__).resolve().parents[2] / "../shared/real_logs"

TIMM = """\
epoch,train_loss,eval_loss,eval_top1,eval_top5,lr
0,6.901245594024658,6.823419570922852,0.224,1.012,0.0001
1,6.755120754241943,6.532102584838867,1.118,4.302,0.00040000000000000002
epoch,train_loss,eval_loss,eval_top1,eval_top5,lr
2,6.512,nan,2.5,8.25,0.0007
"""

TRANSPOSED = (
    ",".join(str(100.0 - i) for i in range(12)) + ",\n" + ",".join(str(30.0 + i) for i in range(12)) + "\n"
)


def _source(text: str, name: str = "log.csv") -> SourceFile:
    return SourceFile.from_bytes(name, text.encode())


def _values(frame, split, metric):
    return frame[(frame["split"] == split) & (frame["metric"] == metric)]["value"].tolist()


def test_timm_summary_splits_and_names():
    parsed = timm_csv.parse(_source(TIMM, "summary.csv"))
    frame = parsed.metrics
    validate_metrics(frame)
    assert parsed.meta.framework == "pytorch" and parsed.meta.format == "timm_csv"
    assert _values(frame, "train", "loss") == [6.901245594024658, 6.755120754241943, 6.512]
    val_loss = _values(frame, "val", "loss")
    assert val_loss[:2] == [6.823419570922852, 6.532102584838867] and math.isnan(val_loss[2])
    assert _values(frame, "val", "accuracy") == [0.224, 1.118, 2.5]
    assert _values(frame, "val", "top5") == [1.012, 4.302, 8.25]
    assert _values(frame, "train", "lr") == [0.0001, 0.0004, 0.0007]
    last = frame[frame["name"] == "eval_top1"].iloc[-1]
    assert (last["step"], last["epoch"], last["line"], last["segment"]) == (2, 2.0, 5, 0)
    assert not parsed.warnings


def test_timm_outscores_generic_and_keras():
    assert detect(_source(TIMM)) == ("timm_csv", 0.6)
    assert generic_csv.sniff(_source(TIMM)) == 0.3


def test_step_column_preferred_over_epoch_and_separator_detected():
    text = "epoch;iteration;loss;val_loss\n0;100;2.5;\n0;200;2.25;2.4\n1;100;2.0;\n"
    frame = generic_csv.parse(_source(text)).metrics
    assert frame["step"].tolist() == [100, 200, 200, 100]
    assert frame["epoch"].tolist() == [0.0, 0.0, 0.0, 1.0]
    assert frame["segment"].tolist() == [0, 0, 0, 1]
    assert _values(frame, "val", "loss") == [2.4]
    assert frame["line"].tolist() == [2, 3, 3, 4]


def test_tensorboard_download_takes_the_tag_from_the_file_name():
    text = "Wall time,Step,Value\n1612793791.5,0,0.25\n1612793801.5,1,0.125\n"
    frame = generic_csv.parse(_source(text, "run-exp2-tag-train_box_loss.csv")).metrics
    assert frame[["step", "value", "wall_time"]].values.tolist() == [[0, 0.25, 0.0], [1, 0.125, 10.0]]
    assert (frame["split"].iloc[0], frame["metric"].iloc[0], frame["name"].iloc[0]) == (
        "train",
        "box_loss",
        "train_box_loss",
    )


def test_text_columns_are_ignored_and_junk_cells_warned():
    text = "Step\tdate\tloss\n1\t2021-01-01\t1.5\n2\t2021-01-02\toops\n3\t2021-01-03\t-inf\n"
    parsed = generic_csv.parse(_source(text, "log.tsv"))
    assert parsed.metrics["name"].astype(str).unique().tolist() == ["loss"]
    assert parsed.metrics["value"].tolist() == [1.5, -math.inf]
    assert [(w.line, w.message) for w in parsed.warnings] == [(3, "not a number in loss; value(s) dropped")]


def test_sniff_needs_a_counter_and_numbers():
    assert generic_csv.sniff(_source("step,loss\n1,2.5\n")) == 0.3
    assert generic_csv.sniff(_source("name,loss\nresnet,2.5\n")) == 0.0
    assert generic_csv.sniff(_source("epoch 1 loss 2.5\n")) == 0.0


def test_transposed_rows_become_val_loss_and_accuracy():
    parsed = generic_csv.parse(_source(TRANSPOSED))
    frame = parsed.metrics
    validate_metrics(frame)
    loss = frame[frame["metric"] == "loss"]
    assert loss["step"].tolist() == list(range(12)) and loss["value"].iloc[11] == 89.0
    assert set(loss["split"].astype(str)) == {"val"} and set(loss["line"]) == {1}
    accuracy = frame[frame["metric"] == "accuracy"]
    assert accuracy[["step", "value", "line"]].values.tolist()[0] == [0, 30.0, 2]
    assert "no split labels" in parsed.warnings[0].message
    assert detect(_source(TRANSPOSED)) == ("generic_csv", 0.2)


def test_transposed_fallback_stays_narrow():
    assert generic_csv.sniff(_source("1,2,3,4,5\n6,7,8,9,10\n")) == 0.0  # rows too short
    assert generic_csv.sniff(_source("\n".join([",".join(["1"] * 12)] * 5))) == 0.0  # too many rows


@pytest.mark.skipif(not (REAL_LOGS / "other").is_dir(), reason="real logs not available")
def test_real_transposed_vit_log():
    log = load_paths([REAL_LOGS / "other" / "vit_cifar10_transposed_loss_acc.csv"])
    validate_metrics(log.metrics)
    assert log.meta.format == "generic_csv"
    loss = log.series("loss", "val")
    assert len(loss) == 200 and loss["value"].iloc[0] == 172.1599087715149
    assert loss["value"].iloc[15] == 99.03691101074219
    accuracy = log.series("accuracy", "val")
    assert len(accuracy) == 200 and accuracy["value"].iloc[0] == 36.7 and accuracy["value"].iloc[-1] == 79.08
    assert any("no split labels" in w.message for w in log.warnings)


def test_a_cut_quoted_cell_does_not_shift_the_rows():
    text = 'step,loss,note\n1,0.5,"ok"\n2,0.4,"cut\n3,0.3,"fine, really"\n'
    frame = generic_csv.parse(_source(text)).metrics
    assert frame[["step", "value", "line"]].values.tolist() == [[1, 0.5, 2], [2, 0.4, 3], [3, 0.3, 4]]
