"""Generic JSON-lines logs: DeiT/DETR per-epoch log.txt, LLaMA-Factory trainer_log.jsonl, the sniffing order."""

import math

import pytest
from real_log_files import real_log

from parsers import load_paths, validate_metrics
from parsers.formats import jsonl_epochs
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

DETR = """\
{"train_lr": 9.99e-05, "train_class_error": 41.68, "train_loss": 18.2231, "train_loss_ce": 1.0488, \
"test_class_error": 21.50, "test_loss": 14.3629, "test_coco_eval_bbox": [0.0123, 0.0345, 0.008, -1.0], \
"epoch": 0, "n_parameters": 43196001}
{"train_lr": 9.99e-05, "train_loss": NaN, "test_loss": 13.97, "test_coco_eval_bbox": [0.0456, 0.1], \
"epoch": 1, "n_parameters": 43196001}
"""

TRAINER_LOG = """\
{"current_steps": 10, "total_steps": 23800, "loss": 3.9862, "reward": null, "learning_rate": 4.99e-05, \
"epoch": 0.02, "percentage": 0.04, "elapsed_time": "0:00:28", "remaining_time": "18:44:40"}
{"current_steps": 20, "total_steps": 23800, "eval_loss": 2.5, "epoch": 0.04, "elapsed_time": "1 day, 2:00:38"}
{"current_steps": 10, "total_steps": 23800, "loss": 3.1, "learning_rate": 4.99e-05, "epoch": 0.02}
{"total_steps": 23800, "loss": 3.0}
"""


def _parse(text: str, name: str = "log.txt"):
    return jsonl_epochs.parse(SourceFile(name, text.encode()))


def test_detr_epochs_with_coco_map_and_test_split():
    frame = _parse(DETR).metrics
    validate_metrics(frame)
    rows = frame[["step", "epoch", "split", "metric", "name", "line"]].astype(str).values.tolist()
    assert rows == [
        ["0", "0.0", "train", "lr", "train_lr", "1"],
        ["0", "0.0", "train", "class_error", "train_class_error", "1"],
        ["0", "0.0", "train", "loss", "train_loss", "1"],
        ["0", "0.0", "train", "loss_ce", "train_loss_ce", "1"],
        ["0", "0.0", "test", "class_error", "test_class_error", "1"],
        ["0", "0.0", "test", "loss", "test_loss", "1"],
        ["0", "0.0", "test", "map", "test_coco_eval_bbox", "1"],
        ["1", "1.0", "train", "lr", "train_lr", "2"],
        ["1", "1.0", "train", "loss", "train_loss", "2"],
        ["1", "1.0", "test", "loss", "test_loss", "2"],
        ["1", "1.0", "test", "map", "test_coco_eval_bbox", "2"],
    ]
    values = frame["value"].tolist()
    assert values[2] == 18.2231 and values[6] == 0.0123 and values[10] == 0.0456 and math.isnan(values[8])
    assert frame["wall_time"].isna().all() and (frame["segment"] == 0).all()


def test_trainer_log_steps_wall_time_segments_and_total_steps():
    parsed = _parse(TRAINER_LOG, "trainer_log.jsonl")
    frame = parsed.metrics
    rows = frame[["step", "split", "metric", "name", "line", "segment"]].astype(str).values.tolist()
    assert rows == [
        ["10", "train", "loss", "loss", "1", "0"],
        ["10", "train", "lr", "learning_rate", "1", "0"],
        ["20", "val", "loss", "eval_loss", "2", "0"],
        ["10", "train", "loss", "loss", "3", "1"],
        ["10", "train", "lr", "learning_rate", "3", "1"],
    ]
    wall = frame["wall_time"].tolist()
    assert wall[0] == 28.0 and wall[2] == 86400 + 2 * 3600 + 38 and math.isnan(wall[3])
    assert frame["epoch"].tolist()[:3] == [0.02, 0.02, 0.04]
    assert parsed.skipped_lines == 1 and parsed.warnings[0].line == 4
    assert parsed.meta.max_iter == 23800 and parsed.meta.where["max_iter"].line == 1


def test_no_counter_is_a_parse_error():
    with pytest.raises(ParseError):
        _parse('{"loss": 1.0}\n{"loss": 0.9}\n')


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"epoch": 3, "train_loss": 0.5}', "jsonl_epochs"),
        ('{"iteration": 19, "total_loss": 1.75, "lr": 1.6e-05}', "detectron2_json"),
        ('{"mode": "train", "epoch": 1, "iter": 50, "lr": 0.00099, "loss": 2.68}', "mmdet_json"),
        ('{"lr": 0.02, "loss": 1.71, "epoch": 1, "iter": 69, "memory": 3060, "step": 69}', "mmengine_json"),
        ('{"epoch": 1, "update": 0.416, "loss": "9.276", "num_updates": "200"}', "fairseq_json"),
    ],
)
def test_specific_json_formats_win_over_the_fallback(line, expected):
    assert jsonl_epochs.sniff(SourceFile("log.txt", line.encode())) == 0.5
    assert detect(SourceFile("log.txt", (line + "\n").encode()))[0] == expected


REAL = {
    # file: (loss points, (step, loss) checked by hand, last (split, metric, value) checked by hand)
    "chatglm2_lora_50ep_trainer_log.jsonl": (2380, (10000, 0.044), ("train", "lr", 1.7641715416294445e-11)),
    "deit_style_log_cfvit.txt": (300, (149, 4.6168316494664765), ("test", "384_acc5", 86.47800252723694)),
    "detr_style_log_conditional_swin_detr.txt": (
        50,
        (0, 18.223146938848735),
        ("test", "map", 0.426505715014377),
    ),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_json_lines_logs(name):
    log = load_paths([real_log(f"other/{name}")])
    points, (step, value), (split, metric, last) = REAL[name]
    loss = log.series("loss")
    assert log.meta.format == "jsonl_epochs" and len(loss) == points
    assert loss.loc[loss["step"] == step, "value"].tolist() == [value]
    assert log.series(metric, split)["value"].iloc[-1] == last
    assert not log.warnings and (log.metrics["segment"] == 0).all()


def test_real_trainer_log_wall_time_matches_elapsed_time():
    log = load_paths([real_log("other/chatglm2_lora_50ep_trainer_log.jsonl")])
    loss = log.series("loss")
    assert loss.loc[loss["step"] == 10000, "wall_time"].tolist() == [2 * 3600 + 45 * 60 + 59]
    assert log.meta.max_iter == 23800
