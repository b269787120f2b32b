"""detectron2 metrics.json: kept keys, eval rows in split val, NaN tokens, appended runs."""

import math

import pytest
from real_log_files import real_log

from parsers import load_paths, validate_metrics
from parsers.formats import detectron2_json
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

METRICS = """\
{"data_time": 0.0024, "eta_seconds": 59.75, "fast_rcnn/cls_accuracy": 0.453125, \
"fast_rcnn/false_negative": 0.73, "iteration": 19, "loss_box_reg": 0.3106, "loss_cls": 0.7127, \
"lr": 1.60675e-05, "roi_head/num_fg_samples": 10.25, "time": 0.2134, "total_loss": 1.7548}
{"data_time": 0.0025, "iteration": 39, "loss_box_reg": NaN, "loss_cls": Infinity, "lr": 3.27e-05, \
"total_loss": NaN}
{"bbox/AP": 21.28, "bbox/AP-person": 21.28, "bbox/AP50": 92.21, "bbox/APl": NaN, "iteration": 39}
{"data_time": 0.0026, "iteration": 59, "loss_box_r
{"iteration": 19, "loss_cls": 0.8, "lr": 1.6e-05, "total_loss": 1.81, "validation_loss": 1.9}
"""


def _parse(text: str = METRICS):
    return detectron2_json.parse(SourceFile("metrics.json", text.encode()))


def test_kept_keys_with_exact_values_lines_and_segments():
    frame = _parse().metrics
    validate_metrics(frame)
    rows = frame[["step", "split", "metric", "name", "line", "segment"]].astype(str).values.tolist()
    assert rows == [
        ["19", "train", "fast_rcnn_cls_accuracy", "fast_rcnn/cls_accuracy", "1", "0"],
        ["19", "train", "loss_box_reg", "loss_box_reg", "1", "0"],
        ["19", "train", "loss_cls", "loss_cls", "1", "0"],
        ["19", "train", "lr", "lr", "1", "0"],
        ["19", "train", "loss", "total_loss", "1", "0"],
        ["39", "train", "loss_box_reg", "loss_box_reg", "2", "0"],
        ["39", "train", "loss_cls", "loss_cls", "2", "0"],
        ["39", "train", "lr", "lr", "2", "0"],
        ["39", "train", "loss", "total_loss", "2", "0"],
        ["39", "val", "map", "bbox/AP", "3", "0"],
        ["39", "val", "bbox_ap50", "bbox/AP50", "3", "0"],
        ["39", "val", "bbox_apl", "bbox/APl", "3", "0"],
        ["19", "train", "loss_cls", "loss_cls", "5", "1"],
        ["19", "train", "lr", "lr", "5", "1"],
        ["19", "train", "loss", "total_loss", "5", "1"],
        ["19", "val", "loss", "validation_loss", "5", "1"],
    ]
    values = frame["value"].tolist()
    assert values[4] == 1.7548 and values[9] == 21.28 and values[0] == 0.453125
    assert math.isnan(values[5]) and math.isinf(values[6])
    assert math.isnan(values[8]) and math.isnan(values[11])
    assert frame["epoch"].isna().all() and frame["wall_time"].isna().all()


def test_cut_line_is_skipped_and_reported():
    parsed = _parse()
    assert parsed.skipped_lines == 1 and parsed.warnings[0].line == 4


def test_rows_without_iteration_are_skipped():
    parsed = _parse('{"iteration": 19, "total_loss": 2.0}\n{"total_loss": 1.0}\n')
    assert parsed.metrics["value"].tolist() == [2.0] and parsed.warnings[0].line == 2


def test_nothing_recognisable_is_a_parse_error():
    with pytest.raises(ParseError):
        _parse("not json\n")


def test_sniff_prefers_detectron2_over_generic_json_lines():
    assert detect(SourceFile("log.txt", METRICS.encode()))[0] == "detectron2_json"
    assert detectron2_json.sniff(SourceFile("metrics.json", b'{"epoch": 1, "loss": 2.0}\n')) == 0.0


REAL = {
    # file: (loss points, (row, step, total_loss) checked by hand, map points, segments)
    "maskrcnn_coco_subset_two_runs_metrics.json": (30, (16, 19, 1.8111420148052275), 0, 2),
    "medical_waste_frcnn_metrics.json": (200, (200, 3999, 1.0374564621597528), 0, 1),
    "orbital_objects_detector_metrics.json": (75, (1, 19, 2.1299018138088286), 3, 1),
    "pothole_frcnn_metrics.json": (90, (1, 19, 86.4728353023529), 0, 1),
    "water_meters_detector_metrics.json": (90, (2, 39, 3.2821010127663612), 4, 1),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_metrics_json(name):
    path = real_log(f"detectron2_json/{name}")
    log = load_paths([path])
    points, (line, step, value), map_points, segments = REAL[name]
    loss = log.metrics[(log.metrics["metric"] == "loss") & (log.metrics["split"] == "train")]
    assert log.meta.format == "detectron2_json" and len(loss) == points
    assert loss.loc[loss["line"] == line, ["step", "value"]].values.tolist() == [[step, value]]
    assert len(log.series("map", "val")) == map_points
    assert log.metrics["segment"].nunique() == segments and not log.warnings


def test_real_water_meters_eval_shares_the_train_iteration():
    path = real_log("detectron2_json/water_meters_detector_metrics.json")
    log = load_paths([path])
    ap = log.series("map", "val")
    assert ap["step"].tolist() == [499, 999, 1499, 1799] and ap["line"].tolist() == [25, 50, 75, 90]
    assert ap["value"].iloc[-1] == 64.13193197811927
    assert 1799 in log.series("loss")["step"].tolist()
