"""Lightning CSVLogger metrics.csv (sparse rows) and hparams.yaml: exact values, lines, sniffing."""

import math
from pathlib import Path

import pytest

from parsers import load, load_paths, validate_metrics
from parsers.formats import lightning_csv, lightning_hparams
from parsers.registry import detect
from parsers.source import SourceFile

REAL_LOGS = Path(__file__).resolve().parents[2] / "../shared/real_logs"

METRICS = """\
epoch,epoch_time,step,train_loss_epoch,train_loss_step,train_perplexity_step,val_loss,lr-AdamW
0,,49,,7.628580570220947,2056.12939453125,,
0,,99,,nan,,,0.0003
0,,99,,,,4.132571697235107,
0,2517.1,99,4.776971817016602,,,,
1,,149,,7.25,1410.05,,
"""

HPARAMS = """\
# saved by save_hyperparameters()
learning_rate: 0.0003
batch_size: 64
max_epochs: 10
optimizer: AdamW
model:
  d_model: 512
  pretrained: "bert-base-uncased"
max_steps: -1
tags:
- lm
weight_decay: 0.01
"""


def _source(text: str, name: str = "metrics.csv") -> SourceFile:
    return SourceFile.from_bytes(name, text.encode())


def test_step_suffix_is_the_loss_and_epoch_suffix_its_own_metric():
    parsed = lightning_csv.parse(_source(METRICS))
    frame = parsed.metrics
    validate_metrics(frame)
    loss = frame[(frame["metric"] == "loss") & (frame["split"] == "train")]
    assert loss["step"].tolist() == [49, 99, 149]
    assert loss["line"].tolist() == [2, 3, 6]
    assert loss["name"].astype(str).unique().tolist() == ["train_loss_step"]
    assert loss["value"].iloc[0] == 7.628580570220947 and math.isnan(loss["value"].iloc[1])
    assert loss["epoch"].tolist() == [0.0, 0.0, 1.0]
    epoch_loss = frame[frame["metric"] == "loss_epoch"]
    assert epoch_loss[["step", "line", "value"]].values.tolist() == [[99, 5, 4.776971817016602]]
    val = frame[(frame["split"] == "val") & (frame["metric"] == "loss")]
    assert val[["step", "line", "value"]].values.tolist() == [[99, 4, 4.132571697235107]]
    assert val["name"].iloc[0] == "val_loss"


def test_empty_cells_are_not_values_and_rows_keep_file_order():
    frame = lightning_csv.parse(_source(METRICS)).metrics
    assert len(frame) == 9  # 2 + 2 + 1 + 2 + 2 non-empty cells
    assert frame["line"].is_monotonic_increasing
    assert frame.iloc[:2]["name"].astype(str).tolist() == ["train_loss_step", "train_perplexity_step"]
    assert (frame["segment"] == 0).all()


def test_lr_monitor_column_gives_lr_and_optimizer():
    parsed = lightning_csv.parse(_source(METRICS))
    lr = parsed.metrics[parsed.metrics["metric"] == "lr"]
    assert lr[["step", "value"]].values.tolist() == [[99, 0.0003]]
    assert lr["name"].iloc[0] == "lr-AdamW"
    assert parsed.meta.optimizer == "adamw" and parsed.meta.where["optimizer"].line == 1


def test_only_epoch_level_loss_becomes_the_loss():
    text = "epoch,step,train_loss_epoch,val_acc\n0,99,2.5,0.4\n1,199,2.1,0.5\n"
    frame = lightning_csv.parse(_source(text)).metrics
    loss = frame[frame["metric"] == "loss"]
    assert loss["value"].tolist() == [2.5, 2.1] and loss["step"].tolist() == [99, 199]
    assert frame[frame["metric"] == "accuracy"]["split"].astype(str).unique().tolist() == ["val"]


def test_junk_and_short_lines_are_warned_and_counted():
    text = "epoch,step,train_loss_step\n0,9,1.5\n0,19,oops\n0,29\n0,,2.0\n0,39,1.25\n"
    parsed = lightning_csv.parse(_source(text))
    assert parsed.metrics["value"].tolist() == [1.5, 1.25]
    assert [w.line for w in parsed.warnings] == [3, 4, 5]
    assert parsed.skipped_lines == 2  # the short line and the line without a step


def test_step_going_back_starts_a_segment():
    text = "epoch,step,train_loss_step\n0,100,1.0\n0,200,0.9\n0,50,1.1\n0,150,1.0\n"
    frame = lightning_csv.parse(_source(text)).metrics
    assert frame["segment"].tolist() == [0, 0, 1, 1]


def test_sniff_prefers_lightning_over_other_csv():
    assert detect(_source(METRICS)) == ("lightning_csv", 0.85)
    assert lightning_csv.sniff(_source("epoch,loss,val_loss\n0,1,2\n")) == 0.0


def test_hparams_facts_and_lines():
    parsed = lightning_hparams.parse(_source(HPARAMS, "hparams.yaml"))
    meta = parsed.meta
    assert parsed.metrics is None
    assert (meta.base_lr, meta.batch_size, meta.epochs, meta.optimizer) == (0.0003, 64, 10, "adamw")
    assert meta.weight_decay == 0.01 and meta.max_iter is None
    assert meta.pretrained is True and meta.pretrained_from == "bert-base-uncased"
    assert meta.where["base_lr"].line == 2 and meta.where["base_lr"].text == "learning_rate: 0.0003"
    assert meta.where["pretrained"].line == 8
    assert meta.hyperparams["model.d_model"] == "512" and meta.hyperparams["max_steps"] == "-1"


def test_hparams_sniff_by_name_or_known_keys():
    assert lightning_hparams.sniff(_source(HPARAMS, "hparams.yaml")) == 0.8
    assert lightning_hparams.sniff(_source(HPARAMS, "config.yaml")) == 0.3
    assert lightning_hparams.sniff(_source("epoch,step,loss\n0,1,2\n", "hparams.yaml")) == 0.0
    assert lightning_hparams.sniff(_source("name: resnet\n", "x.yaml")) == 0.0


def test_metrics_and_hparams_load_as_one_run():
    log = load([("metrics.csv", METRICS.encode()), ("hparams.yaml", HPARAMS.encode())])
    assert log.meta.formats == ["lightning_csv", "lightning_hparams"]
    assert log.meta.base_lr == 0.0003 and log.meta.where["base_lr"].source == "hparams.yaml"
    assert log.series("loss")["value"].iloc[0] == 7.628580570220947


@pytest.mark.skipif(not (REAL_LOGS / "lightning_csv").is_dir(), reason="real logs not available")
def test_real_lightning_logs():
    expected_rows = {
        "slm_lm_version0_metrics.csv": 2814,
        "slm_lm_version5_resumed_metrics.csv": 1126,
        "slm_lm_version8_metrics.csv": 1511,
    }
    for name, rows in expected_rows.items():
        log = load_paths([REAL_LOGS / "lightning_csv" / name])
        validate_metrics(log.metrics)
        assert log.meta.format == "lightning_csv" and not log.warnings
        assert len(log.series("loss")) == rows, name
    log = load_paths([REAL_LOGS / "lightning_csv" / "slm_lm_version0_metrics.csv"])
    first_val = log.series("loss", "val").iloc[0]
    assert (first_val["step"], first_val["line"], first_val["value"]) == (14073, 283, 4.132571697235107)
    epoch_loss = log.series("loss_epoch").iloc[0]
    assert (epoch_loss["step"], epoch_loss["line"], epoch_loss["value"]) == (14073, 284, 4.776971817016602)
    resumed = load_paths([REAL_LOGS / "lightning_csv" / "slm_lm_version5_resumed_metrics.csv"])
    first_step = resumed.series("loss").iloc[0]
    assert (first_step["step"], first_step["epoch"], first_step["value"]) == (140749, 10.0, 3.708270311355591)
