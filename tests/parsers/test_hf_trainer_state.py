"""HuggingFace trainer_state.json: exact values and key lines, eval split, the skipped summary entry."""

import math

import pytest
from real_log_files import real_log

from parsers import load_paths, validate_metrics
from parsers.formats import hf_trainer_state
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

STATE = """\
{
  "best_metric": 0.7431560204762965,
  "epoch": 0.39,
  "global_step": 50,
  "log_history": [
    {
      "epoch": 0.19,
      "grad_norm": 3.1554,
      "learning_rate": 4.6e-07,
      "loss": 0.3048,
      "mean_token_accuracy": 0.58,
      "num_tokens": 61440.0,
      "step": 25
    },
    {
      "epoch": 0.38,
      "learning_rate": 9.6e-07,
      "loss": NaN,
      "step": 50
    },
    {
      "epoch": 0.38,
      "eval_loss": 0.4200145900249481,
      "eval_runtime": 1710.8673,
      "eval_samples_per_second": 2.621,
      "eval_wer": 0.7449,
      "step": 50
    },
    {
      "epoch": 0.39,
      "step": 50,
      "total_flos": 5.27e+20,
      "train_loss": 0.0189,
      "train_runtime": 77350.9963,
      "train_samples_per_second": 3.232
    }
  ],
  "logging_steps": 25,
  "max_steps": 5000,
  "num_train_epochs": 39,
  "total_flos": 5.27162132754432e+20,
  "train_batch_size": 16,
  "trial_name": null
}
"""


def _parse(text: str, name: str = "trainer_state.json"):
    return hf_trainer_state.parse(SourceFile(name, text.encode()))


def test_train_and_eval_entries_with_the_line_of_each_key():
    frame = _parse(STATE).metrics
    validate_metrics(frame)
    rows = frame[["step", "split", "metric", "name", "line"]].astype(str).values.tolist()
    assert rows == [
        ["25", "train", "grad_norm", "grad_norm", "8"],
        ["25", "train", "lr", "learning_rate", "9"],
        ["25", "train", "loss", "loss", "10"],
        ["25", "train", "mean_token_accuracy", "mean_token_accuracy", "11"],
        ["50", "train", "lr", "learning_rate", "17"],
        ["50", "train", "loss", "loss", "18"],
        ["50", "val", "loss", "eval_loss", "23"],
        ["50", "val", "wer", "eval_wer", "26"],
    ]
    assert frame["value"].iloc[2] == 0.3048 and frame["epoch"].iloc[2] == 0.19
    assert math.isnan(frame["value"].iloc[5])  # "loss": NaN is a value, not a dropped line
    assert frame["value"].iloc[6] == 0.4200145900249481
    assert (frame["segment"] == 0).all() and frame["wall_time"].isna().all()
    assert str(frame["step"].dtype) == "int64" and str(frame["epoch"].dtype) == "float64"


def test_the_summary_entry_does_not_become_a_loss_point():
    frame = _parse(STATE).metrics
    assert "train_loss" not in set(frame["name"].astype(str))
    assert frame.loc[frame["metric"] == "loss", "value"].iloc[-1] == 0.4200145900249481


def test_run_facts_from_top_level_keys():
    meta = _parse(STATE).meta
    assert (meta.max_iter, meta.epochs, meta.batch_size, meta.base_lr) == (5000, 39, 16, None)
    assert meta.where["max_iter"].line == 39 and meta.where["max_iter"].text == '"max_steps": 5000'
    assert meta.where["batch_size"].line == 42
    assert meta.hyperparams["logging_steps"] == "25" and meta.hyperparams["trial_name"] == "None"
    assert "log_history" not in meta.hyperparams


def test_cut_off_file_keeps_the_entries_before_the_cut():
    parsed = _parse(STATE[: STATE.index('"eval_runtime"')])
    assert parsed.metrics["step"].tolist() == [25, 25, 25, 25, 50, 50]
    assert parsed.skipped_lines == 2 and parsed.warnings[0].line == 21


def test_resumed_history_starts_a_segment():
    text = '{"log_history": [{"loss": 2.0, "step": 20}, {"loss": 1.5, "step": 10}], "max_steps": 0}'
    frame = _parse(text).metrics
    assert frame["segment"].tolist() == [0, 1] and frame["line"].tolist() == [1, 1]


def test_no_log_history_is_a_parse_error():
    with pytest.raises(ParseError):
        _parse('{"global_step": 3}')
    with pytest.raises(ParseError):
        _parse('{"log_history": []}')


def test_sniff_by_content_not_name():
    assert detect(SourceFile("state.txt", STATE.encode()))[0] == "hf_trainer_state"
    assert hf_trainer_state.sniff(SourceFile("trainer_state.json", b'{"loss": 1, "step": 2}\n')) == 0.0


REAL = {
    # file: (train loss points, val loss points, (step, loss) checked by hand, max_steps)
    "chatglm2_lora_50ep_trainer_state.json": (2380, 0, (23800, 0.0018), 23800),
    "t5_summarization_trainer_state.json": (430, 0, (500, 1.9963), 215337),
    "tinyllama_sft_trainer_state.json": (186, 14, (15, 2.0762), 2808),
    "whisper_large_v2_ja_trainer_state.json": (200, 5, (5000, 0.0002), 5000),
}


@pytest.mark.parametrize("name", sorted(REAL))
def test_real_trainer_states(name):
    path = real_log(f"hf_trainer_state/{name}")
    log = load_paths([path])
    train_points, val_points, (step, value), max_steps = REAL[name]
    assert log.meta.format == "hf_trainer_state" and log.meta.max_iter == max_steps
    loss = log.series("loss")
    assert len(loss) == train_points and len(log.series("loss", "val")) == val_points
    assert loss.loc[loss["step"] == step, "value"].tolist() == [value]
    assert not log.warnings


def test_real_whisper_eval_wer_and_last_train_step():
    path = real_log("hf_trainer_state/whisper_large_v2_ja_trainer_state.json")
    log = load_paths([path])
    wer = log.series("wer", "val")
    assert wer["step"].tolist() == [1000, 2000, 3000, 4000, 5000]
    assert wer["value"].iloc[-1] == 0.7449365679946583 and wer["line"].iloc[-1] == 1252
    # the summary's train_loss 0.0189 must not replace the last logged loss
    assert log.series("loss")["value"].iloc[-1] == 0.0002
