"""MXNet Module logs: Speedometer batches, epoch summaries, lr changes, appended runs, the SSD loss."""

import math

import pytest
from real_log_files import real_log
from text_logs import parse_text, rows

from parsers import load_paths, validate_metrics
from parsers.formats import mxnet_log
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

CLASSIFIER = """\
2017-06-01 10:00:00,000 Node[0] Start training with [gpu(0)]
2017-06-01 10:00:10,000 Node[0] Epoch[0] Batch [20]\tSpeed: 1021.17 samples/sec\taccuracy=0.1035\tcross-entropy=2.31
2017-06-01 10:00:20,000 Node[0] Epoch[0] Batch [40]\tSpeed: 1019.02 samples/sec\taccuracy=0.2000\tcross-entropy=nan
2017-06-01 10:00:25,000 Node[0] Epoch[0] Train-accuracy=0.250000
2017-06-01 10:00:25,000 Node[0] Epoch[0] Train-cross-entropy=2.100000
2017-06-01 10:00:25,000 Node[0] Epoch[0] Time cost=25.000
2017-06-01 10:00:30,000 Node[0] Epoch[0] Validation-accuracy=0.300000
2017-06-01 10:00:30,500 Node[0] Update[60]: Change learning rate to 1.00000e-02
2017-06-01 10:00:40,000 Node[0] Epoch[1] Batch [0-20]\tSpeed: 1020.00 samples/sec\taccuracy=0.4\ttop_k_accuracy_5=0.9
"""


def test_batches_summaries_and_lr_changes():
    source, parsed = parse_text(mxnet_log, CLASSIFIER)
    frame = parsed.metrics
    validate_metrics(frame)
    assert mxnet_log.sniff(source) == 0.9
    # 60 batches per epoch estimated: last logged batch 40 + the logging interval 20
    loss = rows(frame, "loss")
    assert [(s, ln) for s, _, ln in loss] == [(20, 2), (40, 3), (60, 5)]
    assert loss[0][1] == 2.31 and math.isnan(loss[1][1]) and loss[2][1] == 2.1
    assert frame.loc[frame["metric"] == "loss", "name"].tolist() == [
        "cross-entropy",
        "cross-entropy",
        "Train-cross-entropy",
    ]
    assert rows(frame, "accuracy") == [(20, 0.1035, 2), (40, 0.2, 3), (60, 0.25, 4), (80, 0.4, 9)]
    assert rows(frame, "accuracy", "val") == [(60, 0.3, 7)]
    assert rows(frame, "lr") == [(60, 0.01, 8)]
    assert rows(frame, "top5") == [(80, 0.9, 9)]
    assert "time_cost" not in set(frame["metric"])
    assert frame.groupby("line")["wall_time"].first().to_dict()[9] == 30.0
    assert frame.loc[frame["line"] == 9, "epoch"].iloc[0] == 1.0
    assert (frame["segment"] == 0).all()


SSD = """\
Resume training with (gpu(0),gpu(1)) from epoch 145
Freezed parameters: [conv1_1_weight,conv1_1_bias]
Epoch[145] Batch [20]\tSpeed: 36.22 samples/sec\tTrain-Acc=0.774131
Epoch[145] Batch [20]\tSpeed: 36.22 samples/sec\tTrain-ObjectAcc=0.096522
Epoch[145] Batch [20]\tSpeed: 36.22 samples/sec\tTrain-SmoothL1=40.250340
Epoch[145] Train-Acc=0.948052
Epoch[145] Train-ObjectAcc=0.792208
Epoch[145] Train-SmoothL1=2.446886
Epoch[145] Time cost=106.624
Saved checkpoint to "model/ssd300_vgg16_5_mobile_300-0146.params"
Start training with (gpu(0),gpu(1)) from pretrained model model/ssd_300
Epoch[0] Batch [20]\tSpeed: 27.98 samples/sec\tTrain-SmoothL1=nan
Epoch[0] Batch [40]\tSpeed: 27.39 samples/sec\tTrain-SmoothL1=nan
"""


def test_ssd_smoothl1_is_the_loss_and_appended_runs_are_segments():
    _, parsed = parse_text(mxnet_log, SSD, "train.log")
    frame = parsed.metrics
    loss = rows(frame, "loss")
    # run 1 logs only batch 20: one batch interval (20) past it makes 40 batches per epoch
    assert loss[:2] == [(145 * 40 + 20, 40.25034, 5), (146 * 40, 2.446886, 8)]
    assert [(s, ln) for s, _, ln in loss[2:]] == [(20, 12), (40, 13)] and math.isnan(loss[2][1])
    assert set(frame.loc[frame["metric"] == "loss", "name"]) == {"Train-SmoothL1"}
    assert rows(frame, "objectacc")[1] == (146 * 40, 0.792208, 7)
    assert frame.groupby("line")["segment"].first().to_dict() == {
        3: 0,
        4: 0,
        5: 0,
        6: 0,
        7: 0,
        8: 0,
        12: 1,
        13: 1,
    }
    meta = parsed.meta
    assert (meta.framework, meta.resumed) == ("mxnet", True)
    assert (meta.pretrained, meta.pretrained_from, meta.where["pretrained"].line) == (
        True,
        "model/ssd_300",
        11,
    )


def test_epochs_only_and_an_epoch_going_back():
    text = "INFO:root:Epoch[0] Train-accuracy=0.5\nINFO:root:Epoch[1] Train-accuracy=0.6\nINFO:root:Epoch[0] Train-accuracy=0.4\n"
    frame = parse_text(mxnet_log, text)[1].metrics
    assert list(zip(frame["step"], frame["segment"], strict=True)) == [(0, 0), (1, 0), (0, 1)]


def test_not_mxnet():
    with pytest.raises(ParseError):
        parse_text(mxnet_log, "Epoch 1 loss=0.5\n")
    assert mxnet_log.sniff(SourceFile.from_bytes("x", b"Epoch[1] hello")) == 0.0


def test_real_ssd_log():
    path = real_log("other/mxnet_ssd_resumed.log")
    assert detect(SourceFile.from_bytes(path.name, path.read_bytes()))[0] == "mxnet_log"
    log = load_paths([path])
    metrics = log.metrics
    loss = metrics[(metrics["metric"] == "loss") & (metrics["split"] == "train")]
    assert len(loss) == 1021 and set(loss["name"]) == {"Train-SmoothL1"}
    assert tuple(loss[["line", "step", "value"]].iloc[0]) == (7, 145 * 400 + 20, 40.25034)  # Batch [380] max
    summary = loss[loss["line"] == 64]
    assert tuple(summary[["step", "value"]].iloc[0]) == (146 * 400, 2.446886)
    assert metrics["segment"].nunique() == 15
    longest = log.series("loss", segment=6)
    assert len(longest) == 450
    assert tuple(longest[["line", "value"]].iloc[-1]) == (3506, 2.340304)  # Epoch[149] Train-SmoothL1
    assert log.meta.resumed is True
    assert tuple(log.series("lr")[["line", "value"]].iloc[0]) == (1224, 1.0e-04)
