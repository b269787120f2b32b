"""mmdetection 2.x .log.json: global steps from per-epoch iters, val mAP, config facts, NaN tokens."""

import json
import math

import pytest
from real_log_files import real_log

from parsers import load_paths, validate_metrics
from parsers.formats import mmdet_json
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

CONFIG = """\
model = dict(
    type='FasterRCNN',
    pretrained=
    '../mmclassification/work_dirs/resnet50_imagenet/epoch_100.pth',
    backbone=dict(type='ResNet', depth=50))
optimizer = dict(
    type='SGD',
    lr=0.1,
    momentum=0.9,
    weight_decay=0.0001,
    paramwise_cfg=dict(bias_lr_mult=2.0, bias_decay_mult=0.0))
optimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))
lr_config = dict(
    policy='step',
    warmup='linear',
    warmup_iters=500,
    step=[8, 11])
runner = dict(type='EpochBasedRunner', max_epochs=12)
data = dict(samples_per_gpu=2, workers_per_gpu=2)
load_from = None
resume_from = None
optimizer = dict(type='Adam', lr=0.5)
"""

HEADER = json.dumps(
    {"env_info": "sys.platform: linux", "config": CONFIG, "seed": None, "exp_name": "frcnn.py"}
)

LINES = [
    HEADER,
    '{"mode": "train", "epoch": 1, "iter": 50, "lr": 0.00989, "memory": 3718, "data_time": 0.4189, '
    '"loss_rpn_cls": 0.34873, "loss_cls": 0.37457, "acc": 94.18701, "loss": 0.82626, "time": 0.76658}',
    '{"mode": "train", "epoch": 1, "iter": 100, "lr": 0.01988, "loss": 0.57756}',
    '{"mode": "val", "epoch": 1, "iter": 120, "lr": 0.1, "bbox_mAP": 0.087, "bbox_mAP_50": 0.191, '
    '"bbox_mAP_copypaste": "0.087 0.191 0.064 -1.000 0.025 0.094"}',
    '{"mode": "train", "epoch": 2, "iter": 50, "lr": 0.1, "loss_cls": NaN, "acc": 0.23291, "loss": NaN}',
    '{"mode": "train", "epoch": 2, "iter": 100, "lr": 0.1, "loss": Infinity}',
    '{"mode": "val", "epoch": 2, "iter": 120, "lr": 0.1}',
    '{"mode": "train", "epoch": 3, "iter": 50, "lr": 0.1, "loss": 2.5',
]


def _parse(lines=LINES):
    return mmdet_json.parse(SourceFile("20211207_135738.log.json", "\n".join(lines).encode()))


def test_global_steps_values_and_lines():
    frame = _parse().metrics
    validate_metrics(frame)
    rows = frame[["step", "epoch", "split", "metric", "name", "line"]].astype(str).values.tolist()
    assert rows == [
        ["50", "1.0", "train", "lr", "lr", "2"],
        ["50", "1.0", "train", "loss_rpn_cls", "loss_rpn_cls", "2"],
        ["50", "1.0", "train", "loss_cls", "loss_cls", "2"],
        ["50", "1.0", "train", "accuracy", "acc", "2"],
        ["50", "1.0", "train", "loss", "loss", "2"],
        ["100", "1.0", "train", "lr", "lr", "3"],
        ["100", "1.0", "train", "loss", "loss", "3"],
        # the val iter (120) lies within one log interval above the largest train iter (100):
        # it is the exact epoch length, so epoch 2 starts at step 120
        ["120", "1.0", "val", "map", "bbox_mAP", "4"],
        ["120", "1.0", "val", "bbox_map_50", "bbox_mAP_50", "4"],
        ["170", "2.0", "train", "lr", "lr", "5"],
        ["170", "2.0", "train", "loss_cls", "loss_cls", "5"],
        ["170", "2.0", "train", "accuracy", "acc", "5"],
        ["170", "2.0", "train", "loss", "loss", "5"],
        ["220", "2.0", "train", "lr", "lr", "6"],
        ["220", "2.0", "train", "loss", "loss", "6"],
    ]
    values = frame["value"].tolist()
    assert values[4] == 0.82626 and values[3] == 94.18701 and values[7] == 0.087
    assert math.isnan(values[12]) and math.isinf(values[14])
    assert (frame["segment"] == 0).all()


def test_cut_last_line_is_reported_and_empty_val_line_is_quiet():
    parsed = _parse()
    assert parsed.skipped_lines == 1 and [w.line for w in parsed.warnings] == [8]


def test_config_facts_quote_the_config_line():
    meta = _parse().meta
    assert (meta.optimizer, meta.base_lr, meta.momentum, meta.weight_decay) == ("sgd", 0.1, 0.9, 0.0001)
    assert meta.where["base_lr"].line == 1 and meta.where["base_lr"].text == "lr=0.1,"
    assert (meta.clip_gradients, meta.lr_policy, meta.epochs, meta.batch_size) == (35.0, "step", 12, None)
    assert meta.lr_params == {"warmup": "linear", "warmup_iters": "500", "step": "[8, 11]"}
    assert meta.pretrained is True
    assert meta.pretrained_from == "../mmclassification/work_dirs/resnet50_imagenet/epoch_100.pth"
    assert meta.where["pretrained"].text == "'../mmclassification/work_dirs/resnet50_imagenet/epoch_100.pth',"
    assert meta.hyperparams["samples_per_gpu"] == "2" and meta.hyperparams["exp_name"] == "frcnn.py"
    assert meta.resumed is False


def test_load_from_and_resume_from():
    config = "load_from = 'checkpoints/faster_rcnn_coco.pth'\nresume_from = 'work_dirs/x/epoch_23.pth'\n"
    meta = _parse([json.dumps({"env_info": "", "config": config}), LINES[2]]).meta
    assert meta.pretrained_from == "checkpoints/faster_rcnn_coco.pth" and meta.resumed is True
    assert meta.where["resumed"].text == "resume_from = 'work_dirs/x/epoch_23.pth'"


def test_iter_based_runner_keeps_the_global_iter():
    lines = [
        '{"mode": "train", "epoch": 1, "iter": 1000, "lr": 0.02, "loss": 1.5}',
        '{"mode": "train", "epoch": 2, "iter": 2000, "lr": 0.02, "loss": 1.2}',
        '{"mode": "val", "epoch": 2, "iter": 2000, "lr": 0.02, "bbox_mAP": 0.2}',
        '{"mode": "train", "epoch": 1, "iter": 1000, "lr": 0.02, "loss": 1.4}',
    ]
    frame = _parse(lines).metrics
    loss_and_map = frame[frame["metric"].isin(["loss", "map"])]
    assert loss_and_map[["step", "segment"]].values.tolist() == [[1000, 0], [2000, 0], [2000, 0], [1000, 1]]


def test_no_train_or_val_lines_is_a_parse_error():
    with pytest.raises(ParseError):
        _parse([HEADER])


def test_sniff():
    assert detect(SourceFile("x.json", "\n".join(LINES).encode()))[0] == "mmdet_json"
    assert detect(SourceFile("x.json", "\n".join(LINES[1:]).encode()))[0] == "mmdet_json"


MOCO = "icode/moco_v2_800ep_pretrain_rename.pth"
REAL = {
    # file: (loss points, (line, step, loss) checked by hand, map points, base_lr, pretrained_from)
    "atss_r50_fpn_custom.log.json": (7200, (3, 100, 2.79816), 0, 0.01, "torchvision://resnet50"),
    "faster_rcnn_carafe_voc_12ep.log.json": (1488, (127, 6257, 0.38301), 12, 0.02, "torchvision://resnet50"),
    "faster_rcnn_carafed_coco_2x_resumed_ep24.log.json": (146, (3, 168690, 0.52161), 1, 0.02, None),
    "faster_rcnn_r50_voc_imagenetinit_lrx10.log.json": (750, (78, 3800, 0.57449), 5, 0.1, None),
    "fcos_r50_mocoinit_2x.log.json": (
        888,
        (40, 1925, 1.89435),
        9,
        0.01,
        "icode/moco_v2_800ep_pretrain_rename.pth",
    ),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_mmdet_logs(name):
    path = real_log(f"mmdet_json/{name}")
    log = load_paths([path])
    points, (line, step, value), map_points, base_lr, pretrained_from = REAL[name]
    loss = log.series("loss")
    assert log.meta.format == "mmdet_json" and len(loss) == points
    assert loss.loc[loss["line"] == line, ["step", "value"]].values.tolist() == [[step, value]]
    assert len(log.series("map", "val")) == map_points and log.meta.base_lr == base_lr
    assert log.meta.pretrained is True
    if pretrained_from:
        assert log.meta.pretrained_from == pretrained_from
    assert not log.warnings and (log.metrics["segment"] == 0).all()


def test_real_atss_run_goes_nan_at_iter_150_and_steps_cross_epochs():
    path = real_log("mmdet_json/atss_r50_fpn_custom.log.json")
    loss = load_paths([path]).series("loss")
    first_nan = loss[loss["value"].isna()].iloc[0]
    assert (first_nan["step"], first_nan["line"]) == (150, 4)
    # val lines say 30045 iters per epoch; the last train line of epoch 12 is iter 30000
    assert loss["step"].iloc[-1] == 11 * 30045 + 30000


def test_real_nan_run_keeps_its_nan_losses():
    path = real_log("mmdet_json/faster_rcnn_r50_voc_imagenetinit_lrx10.log.json")
    log = load_paths([path])
    loss = log.series("loss")
    assert loss["step"].iloc[-1] == 37500 and math.isnan(loss["value"].iloc[-1])
    assert log.series("map", "val")["step"].tolist() == [3750, 7500, 11250, 15000, 18750]
