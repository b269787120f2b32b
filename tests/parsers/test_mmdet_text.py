"""OpenMMLab text logs: mmdet 2.x TextLoggerHook and mmengine LoggerHook lines."""

import math

import pytest
from real_log_files import real_log
from text_logs import parse_text, rows

from parsers import load_paths, validate_metrics
from parsers.formats import mmdet_text
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

MMDET2 = """\
Tue May  4 08:52:51 2021
+-----------------------------------------------------------------------------+
| NVIDIA-SMI 430.26       Driver Version: 430.26       CUDA Version: 10.2     |
which: no nvcc in (/usr/bin)
2021-05-07 19:45:09,673 - mmdet - INFO - Config:
model = dict(
    type='FasterRCNN',
    pretrained='torchvision://resnet50')
optimizer = dict(type='SGD', lr=0.02, momentum=0.9, weight_decay=0.0001)
runner = dict(type='EpochBasedRunner', max_epochs=12)

2021-05-07 19:46:14,318 - mmdet - INFO - Epoch [1][50/100]\tlr: 1.978e-03, eta: 1 day, 2:30:20, \
time: 0.689, data_time: 0.259, memory: 8626, loss_rpn_cls: 0.5135, loss_cls: 0.9087, acc: 89.8501, loss: 1.6534
2021-05-07 19:46:43,849 - mmdet - INFO - Epoch [1][100/100]\tlr: 3.976e-03, eta: 15:36:41, \
time: 0.590, data_time: 0.202, memory: 8626, loss_rpn_cls: 0.2220, loss_cls: nan, acc: 94.1716, loss: nan
2021-05-07 19:47:00,000 - mmdet - INFO - Epoch(val) [1][100]\tbbox_mAP: 0.2070, bbox_mAP_50: 0.4010, \
bbox_mAP_copypaste: 0.207 0.401 0.194 0.109 0.235 0.267
2021-05-07 19:47:13,432 - mmdet - INFO - Epoch [2][50/100]\tlr: 5.974e-03, eta: 15:13:08, \
time: 0.592, data_time: 0.200, memory: 8626, loss_rpn_cls: 0.1843, loss_cls: 0.5081, acc: 93.5674, loss: 1.0258
2021-05-07 19:48:00,000 - mmdet - ERROR - The testing results of the whole dataset is empty.
2021-05-07 19:48:00,001 - mmdet - INFO - Epoch(val) [2][100]\t
"""


def test_mmdet2_train_and_val_lines():
    source, parsed = parse_text(mmdet_text, MMDET2)
    frame = parsed.metrics
    validate_metrics(frame)
    assert mmdet_text.sniff(source) == 0.9
    loss = rows(frame, "loss")
    assert [(s, ln) for s, _, ln in loss] == [(50, 12), (100, 13), (150, 15)]
    assert loss[0][1] == 1.6534 and math.isnan(loss[1][1]) and loss[2][1] == 1.0258
    assert rows(frame, "lr")[2] == (150, 5.974e-03, 15)
    assert rows(frame, "accuracy")[0] == (50, 89.8501, 12)
    assert rows(frame, "loss_cls")[0] == (50, 0.9087, 12)
    assert rows(frame, "map", "val") == [(100, 0.2070, 14)]
    assert rows(frame, "bbox_map_50", "val") == [(100, 0.4010, 14)]
    assert set(frame["name"]) >= {"bbox_mAP", "loss", "acc"}
    assert not {"eta", "time", "data_time", "memory", "bbox_map_copypaste"} & set(frame["metric"])
    assert frame.loc[frame["line"] == 12, "wall_time"].iloc[0] == 0.0
    assert frame.loc[frame["line"] == 15, "wall_time"].iloc[0] == pytest.approx(59.114)
    assert frame.loc[frame["line"] == 15, "epoch"].iloc[0] == 2.0
    assert (frame["segment"] == 0).all()
    assert [(w.line, w.message[:35]) for w in parsed.warnings] == [
        (17, "val line without values (nothing wa")
    ]
    assert parsed.skipped_lines == 1


def test_mmdet2_config_dump_fills_meta():
    _, parsed = parse_text(mmdet_text, MMDET2)
    meta = parsed.meta
    assert (meta.framework, meta.format) == ("pytorch", "mmdet_text")
    assert (meta.optimizer, meta.base_lr, meta.momentum, meta.epochs) == ("sgd", 0.02, 0.9, 12)
    assert (meta.pretrained, meta.pretrained_from) == (True, "torchvision://resnet50")
    assert meta.where["base_lr"].line == 9


MMENGINE = """\
2023/03/22 19:47:32 - mmengine - INFO - Epoch(train)  [1][ 50/200]  base_lr: 2.0000e-02 lr: 1.9820e-03  \
eta: 1 day, 2:42:55  time: 0.6555  data_time: 0.0306  memory: 3995  grad_norm: 12.3000  loss: 1.9419  \
loss_rpn_cls: 0.5765  acc: 88.6719
2023/03/22 19:48:02 - mmengine - INFO - Epoch(train)  [1][100/200]  base_lr: 2.0000e-02 lr: 3.9800e-03  \
eta: 1 day, 2:40:00  time: 0.6000  data_time: 0.0300  memory: 3995  grad_norm: 8.1000  loss: 1.5000  \
loss_rpn_cls: 0.3000  acc: 90.0000
2023/03/22 20:00:00 - mmengine - INFO - Epoch(val)  [1][100/500]    eta: 0:00:30  time: 0.0500  data_time: 0.0010
2023/03/22 20:05:05 - mmengine - INFO - Epoch(val) [1][500/500]    coco/bbox_mAP: 0.2130  \
coco/bbox_mAP_50: 0.3950  data_time: 0.0023  time: 0.0321
2023/03/22 20:10:00 - mmengine - INFO - Epoch(train)  [1][ 50/200]  base_lr: 2.0000e-02 lr: 1.9820e-03  \
eta: 1 day  time: 0.6  data_time: 0.03  memory: 3995  grad_norm: 11.0000  loss: 1.9000  loss_rpn_cls: 0.5000
"""


def test_mmengine_lines_and_a_restarted_run():
    _, parsed = parse_text(mmdet_text, MMENGINE)
    frame = parsed.metrics
    validate_metrics(frame)
    assert rows(frame, "loss") == [(50, 1.9419, 1), (100, 1.5, 2), (50, 1.9, 5)]
    assert rows(frame, "grad_norm")[1] == (100, 8.1, 2)
    assert rows(frame, "lr")[0] == (50, 1.982e-03, 1)
    assert rows(frame, "base_lr")[0] == (50, 2.0e-02, 1)
    assert rows(frame, "map", "val") == [(200, 0.2130, 4)]  # end of epoch 1 = 1 * 200 iterations
    assert frame.loc[(frame["metric"] == "map"), "name"].tolist() == ["coco/bbox_mAP"]
    assert frame.groupby("line")["segment"].first().to_dict() == {1: 0, 2: 0, 4: 0, 5: 1}
    assert parsed.warnings == []  # validation progress lines hold only timings: nothing to report


def test_iteration_based_runners():
    text = (
        "2021-01-01 00:00:00,000 - mmseg - INFO - Iter [50/80000]\tlr: 9.997e-03, eta: 7:00:00, "
        "time: 0.3, data_time: 0.01, memory: 3000, decode.loss_seg: 1.2, decode.acc_seg: 60.1, loss: 1.2\n"
        "2021-01-01 00:10:00,000 - mmseg - INFO - Iter(val) [4000]\tmIoU: 0.4120, mAcc: 0.5000, aAcc: 0.8800\n"
        "2023/01/01 00:20:00 - mmengine - INFO - Iter(train) [4050/80000]  lr: 9.5e-03  loss: 0.9000\n"
        "2023/01/01 00:30:00 - mmengine - INFO - Iter(val) [500/500]    mIoU: 41.5000\n"
    )
    _, parsed = parse_text(mmdet_text, text)
    frame = parsed.metrics
    assert rows(frame, "loss") == [(50, 1.2, 1), (4050, 0.9, 3)]
    assert rows(frame, "miou", "val") == [(4000, 0.412, 2), (4050, 41.5, 4)]
    assert rows(frame, "decode_acc_seg")[0] == (50, 60.1, 1)
    assert frame["epoch"].isna().all()


def test_nothing_recognisable_is_a_parse_error():
    with pytest.raises(ParseError):
        parse_text(mmdet_text, "Epoch 1/10 - loss: 0.5\nhello\n")
    assert mmdet_text.sniff(SourceFile.from_bytes("x.log", b"Epoch [1/10], Step [100/600], Loss: 2.3")) == 0.0


REAL = {
    # file: (loss rows, (line, step, value) of the first loss, (line, step, value) of the first val map)
    "mmdet_text/faster_rcnn_carafed_coco_1x.log": (1752, (271, 50, 1.6534), (427, 7330, 0.2070)),
    "mmdet_text/faster_rcnn_r50_voc_imagenetinit_lrx10.log": (750, (284, 50, 0.8263), (366, 3750, 0.0870)),
    "mmdet_text/mask_rcnn_coco_slurm.out": (88, (430, 50, 3.0882), None),
}


@pytest.mark.parametrize("relative", sorted(REAL))
def test_real_logs(relative):
    path = real_log(relative)
    assert detect(SourceFile.from_bytes(path.name, path.read_bytes()))[0] == "mmdet_text"
    log = load_paths([path])
    count, first, first_map = REAL[relative]
    loss = log.series("loss")
    assert len(loss) == count
    assert tuple(loss[["line", "step", "value"]].iloc[0]) == first
    if first_map:
        assert tuple(log.series("map", "val")[["line", "step", "value"]].iloc[0]) == first_map
    assert log.meta.base_lr in (0.02, 0.1) and log.meta.optimizer == "sgd"


def test_real_log_that_diverges_keeps_its_nans():
    log = load_paths([real_log("mmdet_text/faster_rcnn_r50_voc_imagenetinit_lrx10.log")])
    loss = log.series("loss")
    first_nan = loss[loss["value"].isna()].iloc[0]
    assert (first_nan["line"], first_nan["step"]) == (722, 5 * 3750 + 1050)
    assert log.meta.base_lr == 0.1
    assert [w.line for w in log.warnings] == [785, 870, 954, 1038]  # evaluations that printed nothing
    assert log.meta.pretrained_from.endswith("epoch_100_pretrained.pth")
