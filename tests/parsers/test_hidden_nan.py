"""HF Trainer's hidden NaN (a window of NaN steps logged as `loss: 0.0` beside `grad_norm: nan`) is NaN in
every format the Trainer reports to, not only its stdout and `trainer_state.json`: real Trainer runs
(`tests/fixtures/hf_tensorboard/`, SGD at lr 2 blows up, at lr 0.5 trains) read alike from their
TensorBoard event files, and an MLflow run logged so is read so too."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from diagnostics import diagnose
from parsers import load_paths
from parsers.model import frame_from_columns, reveal_hidden_nan
from parsers.runs import load_run

HF = Path(__file__).resolve().parents[1] / "fixtures" / "hf_tensorboard"
EXPECTED = json.loads((HF / "expected.json").read_text())
FILES = ["trainer_state.json", "events.out.tfevents.hf_trainer", "stdout.log"]


@pytest.mark.parametrize("name", FILES)
def test_a_real_trainer_run_that_blew_up_is_nan_in_every_file_it_wrote(name):
    log = load_paths([HF / "sgd_lr2_nan" / name])
    loss = log.series("loss")
    hidden = EXPECTED["sgd_lr2_nan"]["hidden_nan_windows"]
    assert hidden > 0 and int(loss["value"].isna().sum()) == hidden
    assert (loss["value"] == 0.0).sum() == 0
    assert any("0.0 beside a NaN/inf grad_norm" in w.message for w in log.warnings)
    d = diagnose(log)
    assert d.symptom.symptom == "nan" and d.causes[0].id == "lr_too_high"


@pytest.mark.parametrize("name", FILES)
def test_the_same_run_at_a_quarter_of_the_lr_is_healthy_in_every_file(name):
    log = load_paths([HF / "sgd_lr0.5_healthy" / name])
    assert not log.series("loss")["value"].isna().any()
    assert diagnose(log).healthy


def _frame(loss: list[float], grad_norm: list[float], steps: list[int]):
    n = len(steps)
    return frame_from_columns(
        {
            "step": steps * 2,
            "split": ["train"] * 2 * n,
            "metric": ["loss"] * n + ["grad_norm"] * n,
            "name": ["loss"] * n + ["grad_norm"] * n,
            "value": np.asarray(loss + grad_norm, dtype=np.float64),
        }
    )


def test_only_a_zero_loss_beside_a_broken_grad_norm_of_the_same_step_is_nan():
    frame = _frame([0.0, 0.0, 0.0, 1.0], [1.0, math.nan, math.inf, math.nan], [10, 20, 30, 40])
    assert reveal_hidden_nan(frame) == 2
    loss = frame.loc[frame["metric"] == "loss", "value"].tolist()
    assert loss[0] == 0.0 and math.isnan(loss[1]) and math.isnan(loss[2]) and loss[3] == 1.0
    shifted = _frame([0.0], [math.nan], [10])
    shifted.loc[shifted["metric"] == "grad_norm", "step"] = 11  # another step's grad norm says nothing
    assert reveal_hidden_nan(shifted) == 0


def test_an_mlflow_run_of_the_trainer_reads_the_hidden_nan(tmp_path):
    run = tmp_path / "run"
    (run / "metrics").mkdir(parents=True)
    (run / "meta.yaml").write_text("run_id: abc\nrun_name: hf\n")
    (run / "metrics" / "loss").write_text("1000 2.5 5\n1001 0.0 10\n")
    (run / "metrics" / "grad_norm").write_text("1000 1.5 5\n1001 nan 10\n")
    files = [(str(p.relative_to(run)), p.read_bytes()) for p in sorted(run.rglob("*")) if p.is_file()]
    log = load_run(files)
    loss = log.series("loss")["value"].tolist()
    assert loss[0] == 2.5 and math.isnan(loss[1])
