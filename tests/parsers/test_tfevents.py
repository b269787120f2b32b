"""TensorBoard event files from bytes: SummaryWriter round trip, TF2 tensors, cut-off files, real files."""

import math
import struct
from pathlib import Path

import numpy as np
import pytest
from tensorboardX import SummaryWriter
from tensorboardX.proto.event_pb2 import Event
from tensorboardX.proto.summary_pb2 import Summary, SummaryMetadata
from tensorboardX.proto.tensor_pb2 import TensorProto

from parsers import load_paths, validate_metrics
from parsers.formats import tfevents
from parsers.registry import detect
from parsers.source import SourceFile

REAL_LOGS = Path(__file__).resolve().parents[2] / "../shared/real_logs"


def _record(event: Event) -> bytes:
    payload = event.SerializeToString()
    return struct.pack("<Q", len(payload)) + b"\0" * 4 + payload + b"\0" * 4  # CRCs are not checked


def _file(*events: Event) -> SourceFile:
    header = Event(wall_time=1000.0, file_version="brain.Event:2")
    return SourceFile.from_bytes("events.out.tfevents.1.host", b"".join(map(_record, (header, *events))))


def _scalar(tag: str, step: int, value: float, wall_time: float) -> Event:
    return Event(
        wall_time=wall_time, step=step, summary=Summary(value=[Summary.Value(tag=tag, simple_value=value)])
    )


def test_summary_writer_round_trip_keeps_nan_inf_and_every_point(tmp_path):
    written = {
        "Loss/train": [2.5, 1.25, math.nan, math.inf, 0.5],
        "Loss/val": [3.0, -math.inf, 2.0, 1.5, 1.0],
        "learning_rate": [0.1, 0.05, 0.025, 0.0125, 0.001],
    }
    writer = SummaryWriter(str(tmp_path))
    for step in range(5):
        for tag, values in written.items():
            writer.add_scalar(tag, values[step], global_step=step * 10)
    writer.close()
    (path,) = tmp_path.glob("events.out.tfevents.*")
    source = SourceFile.from_bytes(path.name, path.read_bytes())
    assert detect(source) == ("tfevents", 0.95)
    parsed = tfevents.parse(source)
    frame = parsed.metrics
    validate_metrics(frame)
    assert len(frame) == 15 and not parsed.warnings
    expected = {
        "Loss/train": ("train", "loss"),
        "Loss/val": ("val", "loss"),
        "learning_rate": ("train", "lr"),
    }
    for tag, values in written.items():
        rows = frame[frame["name"] == tag]
        assert (rows["split"].iloc[0], rows["metric"].iloc[0]) == expected[tag]
        assert rows["step"].tolist() == [0, 10, 20, 30, 40]
        np.testing.assert_array_equal(rows["value"].to_numpy(), np.asarray(values, dtype=np.float32))
    assert frame["line"].tolist() == list(range(2, 17))  # record 1 is the file_version event
    assert (frame["wall_time"] >= 0).all() and frame["wall_time"].is_monotonic_increasing
    assert (frame["segment"] == 0).all()


def test_tf2_scalar_tensors_with_metadata_only_on_the_first_event():
    scalars = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(plugin_name="scalars"))
    first = Summary.Value(tag="epoch_loss", metadata=scalars, tensor=TensorProto(dtype=1, float_val=[0.75]))
    second = Summary.Value(
        tag="epoch_loss", tensor=TensorProto(dtype=2, tensor_content=np.float64(0.3125).tobytes())
    )
    text = Summary.Value(tag="notes", tensor=TensorProto(dtype=7, string_val=[b"hello"]))
    parsed = tfevents.parse(
        _file(
            Event(wall_time=1001.5, step=0, summary=Summary(value=[first, text])),
            Event(wall_time=1003.0, step=1, summary=Summary(value=[second])),
        )
    )
    frame = parsed.metrics
    assert frame[["step", "value", "wall_time", "line"]].values.tolist() == [
        [0, 0.75, 1.5, 2],
        [1, 0.3125, 3.0, 3],
    ]
    assert (frame["split"].iloc[0], frame["metric"].iloc[0]) == ("train", "loss")
    assert parsed.meta.framework == "keras" and "split cannot be told" in parsed.warnings[0].message


def test_cut_off_last_record_keeps_the_rest_with_a_warning():
    data = _file(_scalar("total_loss", 19, 2.5, 1001.0), _scalar("total_loss", 39, 2.0, 1002.0)).data
    parsed = tfevents.parse(SourceFile.from_bytes("events.out.tfevents.2", data[:-10]))
    assert parsed.metrics[["step", "value"]].values.tolist() == [[19, 2.5]]
    assert parsed.warnings[0].line == 3 and "ends inside record 3" in parsed.warnings[0].message
    assert parsed.meta.framework == "pytorch"


def test_undecodable_record_is_skipped_and_step_going_back_starts_a_segment():
    garbage = struct.pack("<Q", 3) + b"\0" * 4 + b"\xff\xff\xff" + b"\0" * 4
    good = _file(
        _scalar("train/loss", 100, 1.0, 1001.0),
        _scalar("train/loss", 200, 0.5, 1002.0),
        _scalar("train/loss", 0, 2.0, 1003.0),
    ).data
    parsed = tfevents.parse(SourceFile.from_bytes("events.out.tfevents.3", good + garbage))
    assert parsed.metrics["segment"].tolist() == [0, 0, 1]
    assert parsed.skipped_lines == 1 and parsed.warnings[0].line == 5


def test_yolo_tags_get_the_summed_loss_and_epoch():
    events = [
        _scalar(tag, 0, value, 1001.0)
        for tag, value in [
            ("train/box_loss", 0.5),
            ("train/obj_loss", 0.25),
            ("train/cls_loss", 0.125),
            ("x/lr0", 0.01),
        ]
    ]
    frame = tfevents.parse(_file(*events)).metrics
    loss = frame[frame["metric"] == "loss"]
    assert loss[["step", "value", "line", "epoch"]].values.tolist() == [[0, 0.875, 2, 0.0]]
    assert frame[frame["name"] == "x/lr0"]["metric"].iloc[0] == "lr"


@pytest.mark.parametrize(
    ("tag", "expected"),
    [
        ("Loss/train", ("train", "loss")),
        ("loss/val", ("val", "loss")),
        ("Accuracy/test", ("test", "accuracy")),
        ("metrics/mAP_0.5", ("val", "map")),
        ("metrics/mAP_0.5:0.95", ("val", "map_0.5:0.95")),
        ("val/obj_loss", ("val", "obj_loss")),
        ("total_loss", ("train", "loss")),
        ("bbox/AP50", ("val", "bbox_ap50")),
        ("train/learning_rate", ("train", "lr")),
    ],
)
def test_tag_names(tag, expected):
    assert tfevents.tag_split_metric(tag, {tag}) == expected


def test_lightning_and_keras_tags_keep_the_per_step_series_as_the_loss():
    tags = {"train_loss_step", "train_loss_epoch", "epoch", "hp_metric"}
    assert tfevents.framework_of(tags) == "lightning"
    assert tfevents.tag_split_metric("train_loss_epoch", tags, "lightning") == ("train", "loss_epoch")
    assert tfevents.tag_split_metric("train_loss_step", tags, "lightning") == ("train", "loss")
    keras = {"batch_loss", "epoch_loss", "epoch_accuracy", "evaluation_loss_vs_iterations"}
    assert tfevents.framework_of(keras) == "keras"
    assert tfevents.tag_split_metric("batch_loss", keras, "keras") == ("train", "loss")
    assert tfevents.tag_split_metric("epoch_loss", keras, "keras") == ("train", "loss_epoch")
    assert tfevents.tag_split_metric("epoch_accuracy", {"epoch_accuracy"}, "keras") == ("train", "accuracy")
    assert tfevents.tag_split_metric("evaluation_loss_vs_iterations", keras, "keras") == ("val", "loss")


def test_sniff_rejects_text():
    assert tfevents.sniff(SourceFile.from_bytes("a.csv", b"epoch,loss\n0,1\n")) == 0.0


@pytest.mark.skipif(not (REAL_LOGS / "tfevents").is_dir(), reason="real logs not available")
def test_real_event_files():
    expected = {  # file: (loss points, first step, first loss, last loss)
        "detectron2_balloon_small.tfevents": (15, 19, 2.632075786590576, 0.42860373854637146),
        "detectron2_pothole.tfevents": (90, 19, 86.47283172607422, 1.1743965148925781),
        "yolov5_mushrooms_exp2.tfevents": (100, 0, 0.1918283998966217, 0.10825284570455551),
        "yolov5_wildfire_exp3.tfevents": (300, 0, 0.21888071298599243, 0.05555914138676599),
    }
    for name, (points, first_step, first, last) in expected.items():
        log = load_paths([REAL_LOGS / "tfevents" / name])
        validate_metrics(log.metrics)
        assert log.meta.format == "tfevents" and log.meta.framework == "pytorch" and not log.warnings
        loss = log.series("loss")
        assert len(loss) == points and loss["step"].iloc[0] == first_step, name
        assert loss["value"].iloc[0] == pytest.approx(first, rel=1e-12), name
        assert loss["value"].iloc[-1] == pytest.approx(last, rel=1e-12), name
    mushrooms = load_paths([REAL_LOGS / "tfevents" / "yolov5_mushrooms_exp2.tfevents"])
    box = mushrooms.series("box_loss").iloc[0]  # results.txt of the same run: 0.09831
    assert (box["step"], box["line"], box["value"]) == (0, 3, float(np.float32(0.09831075)))
    assert mushrooms.series("map", "val").iloc[0]["value"] == float(np.float32(0.005486893467605114))
    balloon = load_paths([REAL_LOGS / "tfevents" / "detectron2_balloon_small.tfevents"])
    assert balloon.series("map", "val")["step"].tolist() == [99, 199, 300]
    assert len(balloon.metrics) == 267 and balloon.series("lr").iloc[-1]["value"] == float(
        np.float32(0.00024916749)
    )
