"""YOLOv5 / Ultralytics results.csv and old results.txt: names, summed loss, lr groups, exact values."""

from pathlib import Path

import pytest

from parsers import load_paths, validate_metrics
from parsers.formats import yolo_csv
from parsers.registry import detect
from parsers.source import SourceFile

REAL_LOGS = Path(__file__).resolve().parents[2] / "../shared/real_logs"

V5_CSV = """\
               epoch,      train/box_loss,      train/obj_loss,      train/cls_loss,   metrics/precision,\
      metrics/recall,     metrics/mAP_0.5,metrics/mAP_0.5:0.95,        val/box_loss,        val/obj_loss,\
        val/cls_loss,               x/lr0,               x/lr1,               x/lr2
                   0,            0.044359,            0.058406,            0.017296,             0.66347,\
              0.5581,             0.61848,             0.41228,            0.041406,            0.038171,\
            0.010942,              0.0937,              0.0007,              0.0007
                   1,            0.045127,                 nan,            0.015708,             0.75447,\
             0.60969,             0.71498,             0.47026,            0.040718,            0.037106,\
           0.0096529,            0.086005,            0.001005,            0.001005
"""

V8_CSV = """\
epoch,time,train/box_loss,train/cls_loss,train/dfl_loss,metrics/precision(B),metrics/recall(B),\
metrics/mAP50(B),metrics/mAP50-95(B),val/box_loss,val/cls_loss,val/dfl_loss,lr/pg0,lr/pg1,lr/pg2
1,183.055,2.45106,4.35679,1.71101,0.54911,0.28655,0.26555,0.11181,2.18233,3.01123,1.40399,0.0700779,0.00332468,0.00332468
2,363.931,2.22246,2.43973,1.47568,0.48338,0.16578,0.15049,0.06175,2.49416,2.99247,1.63017,0.040012,0.00659209,0.00659209
"""

V5_TXT = """\
      0/99     1.86G   0.09831   0.09352         0    0.1918        24       416         0         0  0.005487  0.001083   0.09149   0.05837         0
      1/99     1.93G   0.09291    0.1008         0    0.1937        37       416    0.0335    0.1212   0.01489   0.00295   0.09571   0.05933         0
      2/99     1.93G   0.09137
"""


def _source(text: str, name: str = "results.csv") -> SourceFile:
    return SourceFile.from_bytes(name, text.encode())


def _values(frame, split, metric):
    rows = frame[(frame["split"] == split) & (frame["metric"] == metric)]
    return rows["value"].tolist()


def test_v5_csv_names_splits_and_padded_cells():
    frame = yolo_csv.parse(_source(V5_CSV)).metrics
    validate_metrics(frame)
    assert _values(frame, "train", "box_loss") == [0.044359, 0.045127]
    assert _values(frame, "val", "cls_loss") == [0.010942, 0.0096529]
    assert _values(frame, "val", "map") == [0.61848, 0.71498]
    assert _values(frame, "val", "map_0.5:0.95") == [0.41228, 0.47026]
    assert _values(frame, "val", "precision") == [0.66347, 0.75447]
    assert _values(frame, "train", "lr") == [0.0937, 0.086005]
    assert _values(frame, "train", "lr2") == [0.0007, 0.001005]
    lr = frame[frame["metric"] == "lr"].iloc[0]
    assert (lr["name"], lr["step"], lr["line"], lr["epoch"]) == ("x/lr0", 0, 2, 0.0)


def test_loss_is_the_sum_of_components_and_nan_propagates():
    frame = yolo_csv.parse(_source(V5_CSV)).metrics
    loss = frame[(frame["split"] == "train") & (frame["metric"] == "loss")]
    assert loss["name"].iloc[0] == "train/box_loss+train/obj_loss+train/cls_loss"
    assert loss["value"].iloc[0] == pytest.approx(0.044359 + 0.058406 + 0.017296, rel=1e-12)
    assert loss["value"].isna().tolist() == [False, True]
    assert loss["line"].tolist() == [2, 3] and loss["step"].tolist() == [0, 1]
    assert _values(frame, "val", "loss")[0] == pytest.approx(0.041406 + 0.038171 + 0.010942, rel=1e-12)


def test_v8_csv_map_lr_groups_and_wall_time():
    frame = yolo_csv.parse(_source(V8_CSV)).metrics
    assert _values(frame, "val", "map") == [0.26555, 0.15049]
    assert _values(frame, "val", "map_0.5:0.95") == [0.11181, 0.06175]
    assert _values(frame, "train", "lr") == [0.0700779, 0.040012]
    assert _values(frame, "train", "lr1") == [0.00332468, 0.00659209]
    loss = frame[(frame["split"] == "train") & (frame["metric"] == "loss")]
    assert loss["step"].tolist() == [1, 2]
    assert loss["value"].iloc[0] == pytest.approx(2.45106 + 4.35679 + 1.71101, rel=1e-12)
    assert loss["wall_time"].tolist() == pytest.approx([0.0, 363.931 - 183.055])
    assert "time" not in set(frame["metric"].astype(str))


def test_old_results_txt_uses_its_total_and_warns_on_a_cut_row():
    parsed = yolo_csv.parse(_source(V5_TXT, "results.txt"))
    frame = parsed.metrics
    loss = frame[(frame["split"] == "train") & (frame["metric"] == "loss")]
    assert loss[["step", "value", "line"]].values.tolist() == [[0, 0.1918, 1], [1, 0.1937, 2]]
    assert loss["name"].iloc[0] == "total"
    assert _values(frame, "train", "obj_loss") == [0.09352, 0.1008]
    assert _values(frame, "val", "box_loss") == [0.09149, 0.09571]
    assert _values(frame, "val", "map") == [0.005487, 0.01489]
    assert _values(frame, "val", "loss")[1] == pytest.approx(0.09571 + 0.05933 + 0, rel=1e-12)
    assert parsed.meta.epochs == 100 and parsed.meta.where["epochs"].line == 1
    assert [w.line for w in parsed.warnings] == [3] and parsed.skipped_lines == 1


def test_split_metric_for_tags():
    assert yolo_csv.split_metric("x/lr0") == ("train", "lr")
    assert yolo_csv.split_metric("lr/pg2") == ("train", "lr2")
    assert yolo_csv.split_metric("metrics/mAP50-95(M)") == ("val", "map_0.5:0.95_mask")
    assert yolo_csv.split_metric("metrics/recall(B)") == ("val", "recall")
    assert yolo_csv.split_metric("val/obj_loss") == ("val", "obj_loss")


def test_sniff():
    assert detect(_source(V5_CSV)) == ("yolo_csv", 0.9)
    assert detect(_source(V8_CSV)) == ("yolo_csv", 0.9)
    assert yolo_csv.sniff(_source(V5_TXT, "results.txt")) == 0.9
    assert yolo_csv.sniff(_source("epoch,loss,val_loss\n0,1,2\n")) == 0.0


@pytest.mark.skipif(not (REAL_LOGS / "yolo_csv").is_dir(), reason="real logs not available")
def test_real_yolo_results():
    expected = {  # file: (epochs, first train loss, last train loss)
        "yolov5_helmet_3ep_results.csv": (3, 0.044359 + 0.058406 + 0.017296, 0.04333 + 0.064012 + 0.015731),
        "yolov5_old_results_mushrooms.txt": (100, 0.1918, 0.1083),
        "yolov5_old_results_wildfire_300ep.txt": (300, 0.2189, 0.05556),
        "yolov5_seatbelt_100ep_results.csv": (100, 0.10559 + 0.030307, 0.021866 + 0.012398),
        "yolov5_traffic_results.csv": (50, 0.069793 + 0.075461 + 0.020559, 0.019218 + 0.044568 + 0.0020579),
        "yolov8_style_results.csv": (34, 2.45106 + 4.35679 + 1.71101, 1.80398 + 1.43345 + 1.26951),
    }
    for name, (epochs, first, last) in expected.items():
        log = load_paths([REAL_LOGS / "yolo_csv" / name])
        validate_metrics(log.metrics)
        assert log.meta.format == "yolo_csv" and not log.warnings, name
        loss = log.series("loss")
        assert len(loss) == epochs and len(log.series("loss", "val")) == epochs, name
        assert loss["value"].iloc[0] == pytest.approx(first, rel=1e-12), name
        assert loss["value"].iloc[-1] == pytest.approx(last, rel=1e-12), name
    wildfire = load_paths([REAL_LOGS / "yolo_csv" / "yolov5_old_results_wildfire_300ep.txt"])
    row = wildfire.series("map", "val").iloc[3]
    assert (row["step"], row["line"], row["value"]) == (3, 4, 0.02947)
    v8 = load_paths([REAL_LOGS / "yolo_csv" / "yolov8_style_results.csv"])
    assert v8.series("lr").iloc[-1]["value"] == 0.006733
    assert v8.series("loss").iloc[-1]["wall_time"] == pytest.approx(6437.24 - 183.055)
