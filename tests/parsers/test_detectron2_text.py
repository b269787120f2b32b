"""detectron2 text logs: events lines, copypaste evaluation tables, YAML config dump."""

import math

import pytest
from real_log_files import real_log
from text_logs import parse_text, rows

from parsers import load_paths, validate_metrics
from parsers.formats import detectron2_text
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

LOG = """\
[12/31 23:59:40] detectron2 INFO: Running with full config:
MODEL:
  META_ARCHITECTURE: GeneralizedRCNN
  WEIGHTS: detectron2://ImageNetPretrained/MSRA/R-50.pkl
SOLVER:
  BASE_LR: 0.02
  IMS_PER_BATCH: 16
  MAX_ITER: 90000

[12/31 23:59:50] d2.engine.train_loop INFO: Starting training from iteration 0
[12/31 23:59:58] d2.utils.events INFO:  eta: 21:18:00  iter: 19  total_loss: 2.443  loss_cls: 0.9  \
loss_box_reg: 0.07236  time: 0.6875  data_time: 0.3772  lr: 0.0003996  max_mem: 11810M
[01/01 00:00:12 d2.utils.events]: eta: 21:10:15  iter: 39  total_loss: nan  loss_cls: nan  \
loss_box_reg: 0.07437  time: 0.6830  data_time: 0.0676  lr: 0.0007992  max_mem: 11811M
[01/01 00:01:00] d2.evaluation.testing INFO: copypaste: Task: bbox
[01/01 00:01:00] d2.evaluation.testing INFO: copypaste: AP,AP50,AP75,APs,APm,APl
[01/01 00:01:00] d2.evaluation.testing INFO: copypaste: 11.4201,23.2443,9.8554,nan,4.1875,14.3397
[01/01 00:01:00] d2.evaluation.testing INFO: copypaste: Task: segm
[01/01 00:01:00] d2.evaluation.testing INFO: copypaste: AP,AP50
[01/01 00:01:00] d2.evaluation.testing INFO: copypaste: 10.1,20.2
[01/01 00:01:01] d2.utils.events INFO:  eta: 21:00:00  iter: 59  total_loss: 1.9  lr: 0.0011988
[01/01 00:05:00] d2.utils.events INFO:  eta: 21:18:00  iter: 19  total_loss: 2.5  lr: 0.0003996
"""


def test_events_lines_and_evaluations():
    source, parsed = parse_text(detectron2_text, LOG)
    frame = parsed.metrics
    validate_metrics(frame)
    assert detectron2_text.sniff(source) == 0.9
    loss = rows(frame, "loss")
    assert [(s, ln) for s, _, ln in loss] == [(19, 11), (39, 12), (59, 19), (19, 20)]
    assert loss[0][1] == 2.443 and math.isnan(loss[1][1])
    assert frame.loc[frame["metric"] == "loss", "name"].iloc[0] == "total_loss"
    assert rows(frame, "loss_box_reg")[1] == (39, 0.07437, 12)
    assert rows(frame, "lr")[0] == (19, 0.0003996, 11)
    assert not {"time", "data_time", "eta", "max_mem"} & set(frame["metric"])
    # the evaluation hook ran at iteration 59, before the events writer printed it
    assert rows(frame, "map", "val") == [(59, 11.4201, 15)]
    assert rows(frame, "bbox_ap50", "val") == [(59, 23.2443, 15)]
    assert math.isnan(rows(frame, "bbox_aps", "val")[0][1])
    assert rows(frame, "segm_ap", "val") == [(59, 10.1, 18)]
    assert frame.groupby("line")["segment"].first().to_dict() == {11: 0, 12: 0, 15: 0, 18: 0, 19: 0, 20: 1}
    # yearless stamps across New Year: 23:59:58 -> 00:00:12 is 14 s, not minus a year
    assert frame.loc[frame["line"] == 12, "wall_time"].iloc[0] == 14.0
    assert parsed.warnings == []


def test_config_dump_and_weights():
    meta = parse_text(detectron2_text, LOG)[1].meta
    assert (meta.base_lr, meta.batch_size, meta.max_iter, meta.net_name) == (
        0.02,
        16,
        90000,
        "GeneralizedRCNN",
    )
    assert (meta.pretrained, meta.pretrained_from) == (True, "detectron2://ImageNetPretrained/MSRA/R-50.pkl")
    assert meta.where["base_lr"].line == 6
    assert meta.resumed is False


def test_an_evaluation_after_the_last_iteration_and_a_resumed_run():
    text = (
        "[05/01 10:00:00] d2.engine.train_loop INFO: Starting training from iteration 5000\n"
        "[05/01 10:00:10] d2.utils.events INFO:  eta: 0:01:00  iter: 5019  total_loss: 0.5  lr: 0.01\n"
        "[05/01 10:09:00] d2.evaluation.testing INFO: copypaste: Task: bbox\n"
        "[05/01 10:09:00] d2.evaluation.testing INFO: copypaste: AP,AP50\n"
        "[05/01 10:09:00] d2.evaluation.testing INFO: copypaste: 30.5,50.1,60.0\n"
        "[05/01 10:10:00] d2.evaluation.testing INFO: copypaste: 31.5,51.1\n"
    )
    parsed = parse_text(detectron2_text, text)[1]
    assert rows(parsed.metrics, "map", "val") == [(5019, 31.5, 6)]
    assert parsed.meta.resumed is True
    assert [(w.line, w.message) for w in parsed.warnings] == [(5, "copypaste row with 3 values for 2 names")]


def test_not_detectron2():
    with pytest.raises(ParseError):
        parse_text(detectron2_text, "iter: 19 loss: 0.5\n")
    assert detectron2_text.sniff(SourceFile.from_bytes("x", b"Epoch 1 iter: 19 total_loss: 0.5")) == 0.0


def test_real_semisupervised_frcnn_log():
    path = real_log("other/detectron2_text_frcnn_semisup_stage_lr0.04.txt")
    assert detect(SourceFile.from_bytes(path.name, path.read_bytes()))[0] == "detectron2_text"
    log = load_paths([path])
    loss = log.series("loss")
    assert len(loss) == 1498
    assert tuple(loss[["line", "step", "value"]].iloc[0]) == (828, 19, 0.1443)
    assert tuple(loss[["line", "step", "value"]].iloc[-1]) == (5069, 29979, 0.1503)
    val = log.series("map", "val")
    assert len(val) == 30
    assert tuple(val[["line", "step", "value"]].iloc[0]) == (1006, 999, 11.4201)
    meta = log.meta
    assert (meta.base_lr, meta.batch_size, meta.max_iter, meta.momentum) == (0.04, 60, 111000, 0.9)
    assert meta.clip_gradients is None  # CLIP_GRADIENTS.ENABLED: false
    assert (meta.pretrained, meta.where["pretrained"].line) == (True, 44)
    assert meta.pretrained_from == "../../output/supervised/model_supervised.pth"
