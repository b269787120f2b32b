"""Input built to make a parser's patterns backtrack: every format reads it (or refuses it with a
ParseError) within a generous bound. Before the patterns were made linear (possessive runs, a key
never started inside a word), a 2 KB print log of digits glued to a letter took 51 s.

Each case is the worst text found for a pattern of that format, in lines just under the line cap
(longer lines are skipped, see `MAX_LINE_CHARS`), repeated to about 1 MB. The parse runs in a forked
process, so that a regression fails after the bound instead of hanging the suite."""

import contextlib
import multiprocessing
import time

import pytest

from parsers import ParseError, detect, load
from parsers.source import MAX_LINE_CHARS, SourceFile

BOUND_SECONDS = 10
MEGABYTE = 1_000_000
RUN = MAX_LINE_CHARS - 2_000  # a run of worst-case characters that stays within the line cap
DIGITS = "1" * RUN
GLOG = "I0101 00:00:00.000000  4242 solver.cpp:218] "


def _repeated(line: str, count: int | None = None) -> str:
    """`line` on `count` lines, by default as many as make about 1 MB."""
    return (line + "\n") * (count or max(1, MEGABYTE // (len(line) + 1)))


# (format, what the text attacks, the text)
CASES = [
    ("print_style", "digits glued to a letter after a key", _repeated("Epoch 1 loss " + DIGITS + "x")),
    ("print_style", "blanks between key and value", _repeated("Epoch 1 loss" + " " * RUN + "x")),
    ("print_style", "digits between letters", _repeated("Epoch 1 loss: 1 a" + DIGITS + "x")),
    (
        "print_style",
        "a key run of letters and digits",
        _repeated("Epoch 1 loss: 1 " + "a1" * (RUN // 2) + ":"),
    ),
    ("print_style", "counter digits before a letter", _repeated("Train: " + DIGITS + "x loss: 1")),
    ("print_style", "a counter too long for an integer", _repeated("Epoch " + DIGITS + " loss: 1")),
    ("print_style", "a tqdm counter of digits", _repeated("loss " + "1/" + DIGITS + "x")),
    ("print_style", "a hand-written CSV row", _repeated("epoch,loss\n" + DIGITS + "x")),
    ("print_style", "a Namespace( echo of one long word", _repeated("Namespace(" + "a_" * (RUN // 2) + ")")),
    (
        "print_style",
        "a requires_grad line with long blanks",
        _repeated("layer" + " " * RUN + "x requires_grad"),
    ),
    # a header-less table of number rows is only looked for in files of at most 8 lines
    ("generic_csv", "rows of digits glued to a letter", _repeated(DIGITS + "x", 4)),
    ("caffe_prototxt", "a number glued to a letter", _repeated("base_lr: " + DIGITS + "x")),
    (
        "caffe_glog",
        "an iteration number glued to a letter",
        _repeated(GLOG + "Iteration " + DIGITS + "x, loss = 1"),
    ),
    (
        "mxnet_log",
        "a long metric name",
        _repeated("Epoch[0] Batch [10]\tSpeed: 1.0 samples/sec\tTrain-" + "a" * RUN),
    ),
    ("fairseq_json", "a long key in a train_inner line", _repeated("epoch 001:   10 / 20 " + "a" * RUN)),
    ("fairseq_json", "repeated epoch counters on one line", _repeated("epoch 100: 1 / 2 " * (RUN // 17))),
    ("mmdet_json", "a long word in the config", _repeated('{"config": "' + "a" * RUN + '"}')),
    ("mmdet_text", "a long key", _repeated("Epoch [1][10/100]\tlr: 1.0, " + "a" * RUN + ": 1")),
    ("hf_stdout", "digits glued to a letter", _repeated("{'loss': " + DIGITS + "x, 'epoch': 1}")),
    ("keras_stdout", "digits glued to a letter", _repeated("1/1 [====] - 1s - loss: " + DIGITS + "x")),
    (
        "detectron2_text",
        "digits glued to a letter",
        _repeated("[11/18 18:14:12 d2.utils.events]: iter: " + DIGITS + "x"),
    ),
    ("jsonl_epochs", "digits glued to a letter", _repeated('{"epoch": 1, "loss": ' + DIGITS + "x}")),
    ("lightning_csv", "digits glued to a letter", _repeated("epoch,step,train_loss\n0," + DIGITS + "x,1")),
    # the large-model formats read every line with one findall over the record lines and Megatron's
    # fields by layout: colons without a closing `|`, blanks before a missing number, a long prefix
    ("megatron", "colons after the last bar", _repeated(" iteration 1/ 2 | lm loss: 1 |" + ":" * RUN)),
    ("megatron", "many colons in one field", _repeated(" iteration 1/ 2 | lm loss:" + ":" * RUN + "|")),
    ("megatron", "blanks before the step", _repeated(" iteration" + " " * RUN + "x | lm loss: 1 |")),
    ("deepspeed", "digits glued to a letter", _repeated("step=1, skipped=0, lr=[" + DIGITS + "x")),
    ("nanogpt", "a long prefix of `iter`", _repeated("iter " * (RUN // 5) + "1: loss 1, time 1ms, mfu 1%")),
    ("torchtitan", "blanks before the loss", _repeated("step: 1" + " " * RUN + "x loss: 1  memory: 1GiB")),
    ("torchtitan", "a long prefix of `step:`", _repeated("step: " * (RUN // 6) + "1  loss: 1  memory: 1GiB")),
]


def _read(fmt: str, data: bytes) -> None:
    """Sniff with every format, then parse with `fmt`; a ParseError is a fine answer."""
    detect(SourceFile.from_bytes("adversarial.log", data))
    with contextlib.suppress(ParseError):
        load([("adversarial.log", data)], fmt=fmt)


def _finishes_in_time(fmt: str, data: bytes) -> float:
    """Seconds `_read` took, in a forked process killed at the bound (then: the bound + 1)."""
    context = multiprocessing.get_context("fork")
    process = context.Process(target=_read, args=(fmt, data))
    started = time.perf_counter()
    process.start()
    process.join(BOUND_SECONDS)
    if process.is_alive():
        process.kill()
        process.join()
        return BOUND_SECONDS + 1.0
    assert process.exitcode == 0, f"{fmt} raised something other than ParseError"
    return time.perf_counter() - started


@pytest.mark.parametrize(("fmt", "attack", "text"), CASES, ids=[f"{c[0]}: {c[1]}" for c in CASES])
def test_worst_case_text_is_read_in_linear_time(fmt, attack, text):
    assert _finishes_in_time(fmt, text.encode()) < BOUND_SECONDS


@pytest.mark.parametrize("fmt", ["print_style", "hf_stdout", "mmdet_text", "fairseq_json", "jsonl_epochs"])
def test_one_megabyte_without_a_line_break_is_skipped_not_scanned(fmt):
    data = ("Epoch 1 loss: " + DIGITS[:40] + "x " + "a1" * 20 + " ").encode() * 11_000
    assert b"\n" not in data and len(data) > MEGABYTE
    assert _finishes_in_time(fmt, data) < BOUND_SECONDS


def test_a_line_over_the_cap_is_skipped_and_reported_and_the_rest_is_read(monkeypatch):
    good = "".join(f"Epoch {e} | Step 10/100 | Loss: {1 / (e + 1):.4f}\n" for e in range(6))
    long_line = "Epoch 9 | Step 10/100 | Loss: 9.0 " + "x" * MAX_LINE_CHARS + "\n"
    log = load([("train.log", (good + long_line + good).encode())])
    assert log.series("loss")["line"].tolist() == [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12, 13]
    assert 9.0 not in log.series("loss")["value"].tolist()
    assert log.skipped_lines == 1
    assert any(w.line == 7 and "longer than 65,536 characters" in w.message for w in log.warnings)
    monkeypatch.setenv("LOSS_DOCTOR_MAX_LINE_CHARS", "20")  # the operator's cap: every line is longer
    with pytest.raises(ParseError, match=r"13 line\(s\) longer than 20 characters were skipped"):
        load([("train.log", (good + long_line + good).encode())], fmt="print_style")


def test_a_json_lines_record_over_the_cap_is_skipped_and_reported():
    records = "".join(f'{{"epoch": {e}, "loss": {1 / (e + 1)}}}\n' for e in range(5))
    huge = '{"epoch": 5, "loss": 0.1, "note": "' + "x" * MAX_LINE_CHARS + '"}\n'
    log = load([("metrics.jsonl", (records + huge).encode())])
    assert log.series("loss")["step"].tolist() == [0, 1, 2, 3, 4]
    assert log.skipped_lines == 1 and any(w.line == 6 for w in log.warnings)
