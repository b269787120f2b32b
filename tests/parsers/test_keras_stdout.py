"""Keras fit() stdout: one record per epoch from the epoch-final progress line; interleaved runs."""

import math

import pytest
from real_log_files import real_log
from text_logs import parse_text, rows

from parsers import load_paths, validate_metrics
from parsers.formats import keras_stdout
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

BAR = "[==============================]"
FIT = f"""\
Using TensorFlow backend.
Train on 10000 samples, validate on 5000 samples
Epoch 1/3

  256/10000 [..............................] - ETA: 57s - loss: 0.6828 - acc: 0.5469
 9984/10000 [============================>.] - ETA: 0s - loss: 0.5566 - acc: 0.6936
10000/10000 {BAR} - 51s 5ms/step - loss: 0.5565 - acc: 0.6937 - val_loss: 0.6758 - val_acc: 0.5144
Epoch 2/3
10000/10000 {BAR} - 49s 5ms/step - loss: nan - acc: 0.8732 - val_loss: nan - val_acc: 0.6726
Epoch 3/3
 - 48s - loss: nan - acc: 0.1000 - val_loss: nan - val_acc: 0.1000
Epoch 1/2
313/313 {BAR} - 2s 6ms/step - loss: 0.9000 - accuracy: 0.7000
"""


def test_epoch_final_lines():
    source, parsed = parse_text(keras_stdout, FIT, "nohup.out")
    frame = parsed.metrics
    validate_metrics(frame)
    assert keras_stdout.sniff(source) == 0.9
    loss = rows(frame, "loss")
    assert [(s, ln) for s, _, ln in loss] == [(1, 7), (2, 9), (3, 11), (1, 13)]
    assert loss[0][1] == 0.5565 and math.isnan(loss[1][1]) and loss[3][1] == 0.9
    assert rows(frame, "loss", "val")[0] == (1, 0.6758, 7)
    assert rows(frame, "accuracy", "val")[2] == (3, 0.1, 11)
    assert rows(frame, "accuracy")[3] == (1, 0.7, 13)
    assert frame.loc[frame["metric"] == "accuracy", "name"].tolist()[:2] == ["acc", "val_acc"]
    assert frame.groupby("line")["segment"].first().to_dict() == {7: 0, 9: 0, 11: 0, 13: 1}
    assert frame.groupby("line")["wall_time"].first().to_dict() == {7: 0.0, 9: 49.0, 11: 97.0, 13: 0.0}
    assert frame.loc[frame["line"] == 11, "epoch"].iloc[0] == 3.0
    assert parsed.warnings == []
    assert (parsed.meta.epochs, parsed.meta.where["epochs"].line) == (3, 3)


def test_interleaved_fit_calls_are_told_apart():
    text = (
        "Epoch 1/2\n"
        "  256/1000 [======>.......................] - ETA: 9s - loss: 0.9000 - acc: 0.5000\n"
        "Epoch 7/60\n"
        "  256/1000 [======>.......................] - ETA: 1s - loss: 0.3000 - acc: 0.9000\n"
        "  768/1000 [======================>.......] - ETA: 0s - loss: 0.3100 - acc: 0.9000\n"
        f" 1000/1000 {BAR} - 1s 1ms/step - loss: 0.2900 - acc: 0.9100\n"
        "  512/1000 [==============>...............] - ETA: 5s - loss: 0.8800 - acc: 0.5100"
        "Epoch 8/60\n"  # the other process's header glued to this progress line
        f" 1000/1000 {BAR} - 9s 9ms/step - loss: 0.8700 - acc: 0.5200\n"
        "Epoch 2/2\n"
        f" 1000/1000 {BAR} - 9s 9ms/step - loss: 0.8500 - acc: 0.5300\n"
    )
    frame = parse_text(keras_stdout, text)[1].metrics
    loss = frame[frame["metric"] == "loss"]
    triples = list(zip(loss["value"], loss["step"], loss["segment"], strict=True))
    assert triples == [(0.29, 7, 1), (0.87, 1, 0), (0.85, 2, 0)]


def test_a_summary_no_open_epoch_claims_is_reported():
    text = f"Epoch 1/1\n 10/10 {BAR} - 1s - loss: 0.5\n 10/10 {BAR} - 1s - loss: 0.4\n"
    parsed = parse_text(keras_stdout, text)[1]
    assert rows(parsed.metrics, "loss") == [(1, 0.5, 2)]
    message = "epoch summary that no open epoch claims (interleaved output?); skipped"
    assert [(w.line, w.message) for w in parsed.warnings] == [(3, message)]


def test_not_keras():
    with pytest.raises(ParseError):
        parse_text(keras_stdout, "Epoch 1/10 starting\nloss: 0.5\n")
    assert keras_stdout.sniff(SourceFile.from_bytes("x", b"Epoch [1/10], Step [1/6], Loss: 2.3")) == 0.0


def test_real_autotrainer_nohup_out():
    path = real_log("other/keras_stdout_autotrainer.out")
    assert detect(SourceFile.from_bytes(path.name, path.read_bytes()))[0] == "keras_stdout"
    log = load_paths([path])
    assert log.metrics["segment"].nunique() == 7  # 7 fit() sessions, 4 of them interleaved
    assert len(log.series("loss")) == 234  # of 240 epochs; 6 summaries lost in the interleaving
    assert len(log.warnings) == 6
    first = log.series("loss", segment=0)
    assert tuple(first[["line", "step", "value"]].iloc[0]) == (105, 1, 0.5565)
    assert tuple(first[["line", "step", "wall_time"]].iloc[1]) == (147, 2, 49.0)
    sixty = log.series("loss", segment=1)
    assert tuple(sixty[["line", "step", "value"]].iloc[0]) == (1467, 1, 2.1504)
    last = log.series("loss", segment=6)
    assert len(last) == 30
    assert tuple(last[["line", "step", "value"]].iloc[-1]) == (10694, 30, 0.0096)
    assert tuple(log.series("loss", "val", segment=6)[["line", "value"]].iloc[-1]) == (10694, 1.4388)


def test_a_log_of_many_runs_gives_each_run_its_segment_and_epochs():
    """Runs one after another (`Epoch 1/2` again each time), one left unfinished at epoch 1 while the
    next starts: each epoch-final line goes to the run that opened it."""
    run = "Epoch 1/2\n10/10 {bar} - 1s - loss: {a}\nEpoch 2/2\n10/10 {bar} - 1s - loss: {b}\n"
    text = "".join(run.format(bar=BAR, a=i + 0.5, b=i + 0.25) for i in range(300))
    text += "Epoch 1/2\n10/10 " + BAR + " - 1s - loss: 9.5\nEpoch 1/2\n"
    text += "Epoch 2/2\n10/10 " + BAR + " - 1s - loss: 9.25\n"
    _, parsed = parse_text(keras_stdout, text)
    frame = parsed.metrics
    assert len(frame) == 602
    assert frame["segment"].tolist()[-4:] == [299, 299, 300, 300]
    assert frame["step"].tolist()[-4:] == [1, 2, 1, 2]
    assert frame["value"].tolist()[-4:] == [299.5, 299.25, 9.5, 9.25]
