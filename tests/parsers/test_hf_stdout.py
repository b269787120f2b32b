"""HuggingFace Trainer stdout: printed dicts among tqdm bars (bare CR), steps counted from logging_steps."""

import math
from pathlib import Path

import numpy as np
import pytest
from real_log_files import real_log
from text_logs import parse_text, rows

from parsers import load_paths, validate_metrics
from parsers.formats import hf_stdout
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

HF_RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "hf_tensorboard"

BAR = "  2%|██▊                                   | {0}/8264 [23:37<15:44:25,  7.03s/it]"
STDOUT = (
    "wandb: Tracking run with wandb version 0.16.6\n"
    "arg is Namespace(learning_rate=7e-05, num_train_epochs=2, logging_steps=10, per_device_train_batch_size=1)\n"
    + BAR.format(1)
    + "\r"
    + BAR.format(2)
    + "{'loss': 12.4476, 'grad_norm': 35.8388, 'learning_rate': 2.3333e-05, 'epoch': 0.0}\n"
    "{'loss': nan, 'grad_norm': inf, 'learning_rate': 4.6667e-05, 'epoch': 0.0}\n"
    "\r"
    + BAR.format(20)
    + "{'eval_loss': 0.5166, 'eval_runtime': 642.6463, 'eval_samples_per_second': 4.587, "
    "'eval_steps_per_second': 4.587, 'epoch': 0.05}\n"
    "{'loss': 0.5311, 'grad_norm': 1.3892, 'learning_rate': 6.9917e-05, 'epoch': 0.05}\n"
    "{'train_runtime': 61.2, 'train_samples_per_second': 9.8, 'train_loss': 4.44, 'epoch': 0.05}\n"
)


def test_dicts_glued_to_progress_bars():
    source, parsed = parse_text(hf_stdout, STDOUT)
    frame = parsed.metrics
    validate_metrics(frame)
    assert hf_stdout.sniff(source) == 0.85
    loss = rows(frame, "loss")
    assert [(s, ln) for s, _, ln in loss] == [(10, 4), (20, 5), (30, 8)]  # line 3/4: the bar split at CR
    assert loss[0][1] == 12.4476 and math.isnan(loss[1][1]) and loss[2][1] == 0.5311
    assert rows(frame, "grad_norm")[1][1] == math.inf
    assert rows(frame, "lr")[0] == (10, 2.3333e-05, 4)
    assert rows(frame, "loss", "val") == [(20, 0.5166, 7)]  # at the last train step before it
    assert frame.loc[frame["metric"] == "loss", "name"].tolist() == ["loss", "loss", "eval_loss", "loss"]
    assert frame.loc[frame["line"] == 8, "epoch"].iloc[0] == 0.05
    assert not {"runtime", "samples_per_second", "train_loss"} & set(frame["metric"])  # summary dict skipped
    assert parsed.warnings == []
    assert (parsed.meta.base_lr, parsed.meta.epochs, parsed.meta.batch_size) == (7e-05, 2, 1)


def test_without_logging_steps_the_dict_count_is_the_step_and_a_warning_says_so():
    _, parsed = parse_text(
        hf_stdout, "{'loss': 0.9, 'learning_rate': 1e-05, 'epoch': 0.1}\n{'loss': 0.8, 'epoch': 0.2}\n"
    )
    assert [s for s, _, _ in rows(parsed.metrics, "loss")] == [1, 2]
    assert parsed.warnings[0].line == 0 and "logging_steps" in parsed.warnings[0].message


def test_logging_first_step_and_an_appended_run():
    text = (
        "TrainingArguments(\nlogging_first_step=True,\nlogging_steps=50,\n)\n"
        "{'loss': 2.3, 'learning_rate': 1e-05, 'epoch': 0.01}\n"
        "{'loss': 1.9, 'learning_rate': 2e-05, 'epoch': 0.5}\n"
        "{'loss': 2.4, 'learning_rate': 1e-05, 'epoch': 0.01}\n"
    )
    frame = parse_text(hf_stdout, text)[1].metrics
    loss = frame[frame["metric"] == "loss"]
    assert list(zip(loss["step"], loss["segment"], strict=True)) == [(1, 0), (50, 0), (1, 1)]


def test_other_printed_dicts_are_not_metrics():
    with pytest.raises(ParseError):
        parse_text(hf_stdout, "{'lr': 0.001, 'epochs': 10}\n{'input_ids': 1}\n")


def test_real_gemma2_stdout():
    path = real_log("hf_stdout/gemma2_lmsys_cls_stdout.log")
    assert detect(SourceFile.from_bytes(path.name, path.read_bytes()))[0] == "hf_stdout"
    log = load_paths([path])
    loss = log.series("loss")
    assert len(loss) == 24
    assert tuple(loss[["line", "step", "value"]].iloc[0]) == (512, 10, 12.4476)  # glued to a bar
    assert tuple(loss[["line", "step", "value"]].iloc[-1]) == (6627, 240, 0.488)
    val = log.series("loss", "val")
    assert tuple(val[["line", "step", "value"]].iloc[0]) == (6495, 200, 0.516632080078125)
    meta = log.meta
    assert (meta.base_lr, meta.optimizer, meta.clip_gradients, meta.epochs) == (7e-05, "adamw", 1.0, 2)
    assert meta.hyperparams["logging_steps"] == "10"
    assert meta.where["base_lr"].line == 235


@pytest.mark.parametrize("run", ["", "sgd_lr0.5_healthy", "sgd_lr2_nan"])
def test_transformers_5_prints_its_values_as_strings(run):
    """transformers 5 prints `{'loss': '3.704', 'grad_norm': 'nan', ...}`: a real run's console output
    (`tests/fixtures/hf_tensorboard/`) gives its trainer_state.json's curve, to the 4 digits printed."""
    folder = HF_RUNS / run
    printed = load_paths([folder / "stdout.log"]).series("loss")["value"].to_numpy()
    saved = load_paths([folder / ("output/trainer_state.json" if not run else "trainer_state.json")])
    expected = saved.series("loss")["value"].to_numpy()
    assert len(printed) == len(expected) >= 12
    assert np.array_equal(np.isnan(printed), np.isnan(expected))
    finite = ~np.isnan(expected)
    assert np.allclose(printed[finite], expected[finite], rtol=5e-4, atol=0)
