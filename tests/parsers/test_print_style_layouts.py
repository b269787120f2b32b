"""The whole-file reader of print_style (one line per layout, numbers by numpy) against the per-line reader
it replaces: both must give the same table, value for value, on every log."""

import math
import random

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from real_log_files import real_log

from parsers.formats import print_style
from parsers.formats._textlog import LineLayouts, Rows, Unsupported, floats_at, normal_pages
from parsers.hparams import _trigger_offsets


def _per_line(text: str) -> Rows:
    rows = Rows()
    for record, at in print_style._place(print_style._line_records(text)):
        for split, metric, name, value in record.values:
            rows.add(at, split, metric, name, value)
    print_style._name_losses(rows)
    return rows


def _by_layout(text: str) -> Rows:
    rows = Rows()
    print_style._read_layouts(LineLayouts(text), rows)
    print_style._name_losses(rows)
    return rows


def _assert_same(text: str) -> None:
    slow, fast = _per_line(text), _by_layout(text)
    assert fast._out_of_range == slow._out_of_range
    if not len(slow):
        assert not len(fast)
        return
    pd.testing.assert_frame_equal(fast.frame("log"), slow.frame("log"), check_exact=True)


# Line shapes seen in real print() / logging logs; {n} is a counter, {v} a value.
_TEMPLATES = [
    "Epoch [{n}/{n}], Step [{n}/{n}], Loss: {v}, lr: {v}",
    "epoch {n} iter {n} loss={v} lr={v}",
    "Epoch {n} | Step {n}/{n} | Loss: {v} | PPL: {v} | LR: {v}",
    "{iso} INFO:Epoch {n}: Train Loss={v}, Val Loss={v}",
    "{iso} - INFO - Epoch {n} - Batch loss: {v}",
    "{ctime} Epoch {n}, lr: {v}, val loss: {v}, acc: {v}",
    "Epoch: [{n}]  [{n}/{n}]  eta: 0:02:10  lr: {v}  loss: {v} ({v})  acc1: {v} ({v})  acc5: {v} ({v})",
    "Train: {n} [{n}/{n} ({n}%)]  Loss: {v} ({v})  Time: {v}s  LR: {v}",
    "INFO - {short} - 0:00:30 - Epoch: [{n}][{n}]\tTime {v} ({v})\tLoss {v} ({v})",
    "[{n}, {n}] loss: {v}",
    "Test: [{n}/{n}]  Acc@1 {v}  Acc@5 {v}  BLEU-{d}: {v}",
    "val loss: {v}, acc: {v}",
    "Evaluation Results:",
    "  Loss: {v}",
    "  Accuracy: {v}",
    "📊 Evaluation Results:",
    "  保存最佳模型 (val_loss={v})",
    "Epoch {n}/{n} - Train Loss: {v}, Val Loss: {v}",
    "Final Results: Loss={v}",
    "UserWarning: loss {v} is large",
    "step {n}: train loss {v}, val loss {v}",
    "epoch {n} step {n} val_loss {v} val_acc {v}",
    "epoch {n} step {n} loss {v} lr {v}",
    "Validation loss improved",
    "{iso} INFO:accelerate: loss {v} top1 {v}",
    "[{yearless} d2.engine]: iter: {n}  loss: {v}",
    "Train Epoch: {n} [{n}/{n} ({n}%)]\tLoss: {v}",
    "Test set: Average loss: {v}, Accuracy: {n}/{n} ({v}%)",
]
_VALUES = [
    "0.5",
    "2.2715",
    "10.0",
    "123.456789",
    "nan",
    "-inf",
    "inf",
    "1e-05",
    "3.2E+4",
    "-0.0",
    "+7",
    ".5",
    "5.",
]
_VALUES += ["0.16882541572506504", "99999999999999999999", "1" * 30, "٣.٥"]


@st.composite
def print_logs(draw: st.DrawFn) -> str:
    """A log of lines of a few shapes with numbers of varying widths, as long logs write them."""
    shapes = draw(st.lists(st.sampled_from(_TEMPLATES), min_size=1, max_size=4))
    rng = random.Random(draw(st.integers(0, 2**32)))
    counter = draw(st.integers(0, 3))
    lines = []
    for _ in range(draw(st.integers(1, 60))):
        counter += rng.choice([0, 1, 1, 1, 7, -3])
        template = rng.choice(shapes)
        lines.append(
            template.replace(
                "{iso}",
                f"2023-0{rng.randint(1, 9)}-1{rng.randint(0, 9)} 2{rng.randint(0, 5)}:50:17,3{rng.randint(10, 99)}",
            )
            .replace("{ctime}", f"Wed Oct 2{rng.randint(0, 9)} 02:1{rng.randint(0, 9)}:41 2020")
            .replace("{short}", f"09/0{rng.randint(1, 9)}/20 14:18:0{rng.randint(0, 9)}")
            .replace("{yearless}", f"11/1{rng.randint(0, 9)} 18:14:12")
            .replace("{d}", str(rng.randint(1, 4)))
            .format(n=abs(counter) * rng.choice([1, 1, 10, 1000]), v="{v}")
            .replace("{v}", "\0")
        )
        while "\0" in lines[-1]:
            lines[-1] = lines[-1].replace(
                "\0",
                rng.choice(_VALUES)
                if rng.random() < 0.2
                else f"{rng.random() * 10 ** rng.randint(0, 4):.{rng.randint(1, 6)}f}",
                1,
            )
    return "\n".join(lines) + rng.choice(["", "\n"])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(print_logs())
def test_layout_reader_equals_the_per_line_reader(text):
    try:
        _by_layout(text)
    except Unsupported:
        assume(False)  # read by the per-line reader: equal by construction
    _assert_same(text)


def test_a_layout_with_varying_digits_reads_every_line_exactly():
    text = "".join(
        f"Epoch [{e}/12], Step [{s}/40], Loss: {v}, lr: 0.05\n"
        for e, s, v in [(1, 10, "2.2715"), (1, 20, "12.5"), (2, 10, "0.10400"), (12, 40, "nan")]
    )
    frame = _by_layout(text).frame("log")
    loss = frame[frame["metric"] == "loss"]
    assert loss["step"].tolist() == [10, 20, 50, 480]
    assert loss["value"].tolist()[:3] == [2.2715, 12.5, 0.104] and math.isnan(loss["value"].iloc[3])
    assert loss["line"].tolist() == [1, 2, 3, 4]
    _assert_same(text)


def test_words_with_digits_split_a_layout():
    """`acc@1` and `acc@5` lines share a layout (digits read as 0) but not a metric."""
    text = "step 1 acc@1 0.5 loss 2.0\nstep 2 acc@5 0.9 loss 1.0\nstep 3 acc@1 0.6 loss 0.5\n"
    frame = _by_layout(text).frame("log")
    assert sorted(set(frame["name"])) == ["acc@1", "acc@5", "loss"]
    assert frame[frame["name"] == "acc@5"][["step", "value"]].values.tolist() == [[2, 0.9]]
    _assert_same(text)


def test_an_evaluation_block_gives_its_split_to_the_lines_under_it():
    text = "step 1 loss 2.0\nstep 2 loss 1.5\nEvaluation Results:\n  Loss: 1.7\n  Accuracy: 40.5\nstep 3 loss 1.2\n"
    frame = _by_layout(text).frame("log")
    val = frame[frame["split"] == "val"]
    assert val[["metric", "step", "value", "line"]].values.tolist() == [
        ["loss", 2, 1.7, 4],
        ["accuracy", 2, 40.5, 5],
    ]
    _assert_same(text)


def test_timestamps_give_the_same_wall_time():
    text = "2023-05-15 22:50:17,398 INFO:Epoch 1: Train Loss=0.07\n2023-05-15 22:51:40,3 INFO:Epoch 2: Train Loss=0.03\n"
    frame = _by_layout(text).frame("log")
    assert frame["wall_time"].tolist() == pytest.approx([0.0, 82.902])
    _assert_same(text)


def test_yearless_stamps_are_left_to_the_per_line_reader():
    with pytest.raises(Unsupported):
        _by_layout("[11/18 18:14:12 d2.engine]: iter: 19  loss: 1.5\n")


@pytest.mark.parametrize(
    "layout", ["{:.4f}", "-{:.9f}", "+{:.1f}", "{:.0f}.", "{:.7f}", "{:.8f}", "{:.13f}", "{:.0f}"]
)
def test_numbers_read_by_columns_round_as_float(layout):
    rng = random.Random(5)
    tokens = [layout.format(rng.random() * 10 ** rng.randint(0, 2)) for _ in range(5000)]
    width = len(tokens[0])
    tokens = [t for t in tokens if len(t) == width]  # one layout: one width
    layouts = LineLayouts("\n".join(tokens))
    read = floats_at(layouts, layouts.byte_start[: len(tokens)], tokens[0], 0, width)
    assert read.tolist() == [float(t) for t in tokens]
    assert [math.copysign(1, v) for v in read.tolist()] == [math.copysign(1, float(t)) for t in tokens]


@pytest.mark.parametrize(
    "name",
    [
        "gpt2_lora_alpaca.log",
        "t5_finetune_batchloss_bleu.log",
        "vit_cifar10_patch4_appended_runs.txt",
        "numpy_mlp_mnist.log",
        "emotion_tcn_logging.log",
    ],
)
def test_real_print_logs_read_the_same_by_layout(name):
    text = (
        real_log(f"print_style/{name}").read_bytes().decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")
    )
    _assert_same(text)
    assert len(_by_layout(text))


def test_trigger_words_are_found_in_layouts_as_by_find():
    text = (
        "Namespace(lr=0.1)\n"
        + "📊 step 1 loss 2.0\n" * 50
        + "load_state_dict from scratch x\nreezing roze\n" * 3
    )
    with_layouts = _trigger_offsets(text, 0, LineLayouts(text))
    by_find = _trigger_offsets(text, 0, None)
    assert with_layouts == by_find and len(by_find) == 13
    assert _trigger_offsets(text, 500, LineLayouts(text)) == _trigger_offsets(text, 500, None)
    assert np.all(np.diff(with_layouts) > 0)


def test_normal_pages_switches_numpy_hugepages_off_and_back():
    switch = np._core.multiarray._set_madvise_hugepage
    before = switch(True)
    with normal_pages():
        assert switch(False) is False  # off inside
    assert switch(before) is True  # back on after
