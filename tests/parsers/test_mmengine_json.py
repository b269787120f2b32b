"""mmengine vis_data/scalars.json: global train steps, epoch-numbered val lines placed on the step axis."""

import math

import pytest

from parsers import validate_metrics
from parsers.formats import mmengine_json
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

SCALARS = """\
{"lr": 0.02, "data_time": 0.0038, "loss": 1.7152580142021179, "time": 0.1432, "epoch": 1, "iter": 69, \
"memory": 3060, "step": 69}
{"accuracy/top1": 43.13543701171875, "accuracy/top5": 80.5, "data_time": 0.0915, "time": 0.1214, "step": 1}
{"lr": 0.02, "base_lr": 0.02, "data_time": 0.0239, "loss": NaN, "loss_cls": NaN, "time": 0.1218, "epoch": 2, \
"iter": 138, "memory": 3060, "step": 138}
{"coco/bbox_mAP": 0.714, "coco/bbox_mAP_50": 0.833, "data_time": 0.0046, "time": 0.0163, "step": 2}
{"lr": 0.02, "loss": 0.9, "epoch": 1, "iter": 69, "step": 69}
{"lr": 0.02, "loss": 0.8, "epoch": 1, "iter": 70, "st
"""


def _parse(text: str = SCALARS):
    return mmengine_json.parse(SourceFile("scalars.json", text.encode()))


def test_rows_steps_epochs_and_segments():
    frame = _parse().metrics
    validate_metrics(frame)
    rows = frame[["step", "epoch", "split", "metric", "name", "line", "segment"]].astype(str).values.tolist()
    assert rows == [
        ["69", "1.0", "train", "lr", "lr", "1", "0"],
        ["69", "1.0", "train", "loss", "loss", "1", "0"],
        ["69", "1.0", "val", "accuracy", "accuracy/top1", "2", "0"],
        ["69", "1.0", "val", "top5", "accuracy/top5", "2", "0"],
        # within a line, values come in the order their keys first appear in the file
        ["138", "2.0", "train", "lr", "lr", "3", "0"],
        ["138", "2.0", "train", "loss", "loss", "3", "0"],
        ["138", "2.0", "train", "base_lr", "base_lr", "3", "0"],
        ["138", "2.0", "train", "loss_cls", "loss_cls", "3", "0"],
        ["138", "2.0", "val", "map", "coco/bbox_mAP", "4", "0"],
        ["138", "2.0", "val", "bbox_map_50", "coco/bbox_mAP_50", "4", "0"],
        ["69", "1.0", "train", "lr", "lr", "5", "1"],
        ["69", "1.0", "train", "loss", "loss", "5", "1"],
    ]
    values = frame["value"].tolist()
    assert values[1] == 1.7152580142021179 and values[2] == 43.13543701171875 and values[8] == 0.714
    assert math.isnan(values[5]) and math.isnan(values[7])


def test_cut_line_is_reported():
    parsed = _parse()
    assert parsed.skipped_lines == 1 and parsed.warnings[0].line == 6


def test_iteration_based_val_step_is_an_iteration():
    text = '{"lr": 0.01, "loss": 2.0, "iter": 500, "step": 500}\n{"mIoU": 41.2, "step": 500}\n'
    frame = _parse(text).metrics
    assert frame[["step", "split", "metric"]].values.tolist() == [
        [500, "train", "lr"],
        [500, "train", "loss"],
        [500, "val", "miou"],
    ]
    assert frame["epoch"].isna().all()


def test_nothing_with_a_step_is_a_parse_error():
    with pytest.raises(ParseError):
        _parse('{"loss": 1.0}\n')


def test_sniff_beats_mmdet_and_generic_json_lines():
    assert detect(SourceFile("20230609_172212.json", SCALARS.encode()))[0] == "mmengine_json"
    assert (
        mmengine_json.sniff(SourceFile("x.json", b'{"mode": "train", "epoch": 1, "iter": 50, "loss": 1}'))
        == 0
    )
