"""Large-model log formats (Megatron-LM, DeepSpeed, nanoGPT, torchtitan): exact values from lines these tools
really printed, quoted from public logs (the source of each excerpt is named beside it)."""

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from text_logs import parse_text, rows

from parsers import load, validate_metrics
from parsers.formats import _llm, deepspeed, megatron, nanogpt, torchtitan
from parsers.formats._textlog import Unsupported
from parsers.model import RunMeta
from parsers.registry import detect
from parsers.source import ParseError, SourceFile

# bigscience-workshop/bigscience train/tr8-104B-wide/chronicles.md (BLOOM-104B, fp16), validation line too
MEGATRON_104B = (
    " iteration     6900/  159576 | consumed samples:       251312 | elapsed time per iteration (ms): 18495.6 | "
    "learning rate: 6.000E-05 | global batch size:    96 | lm loss: 6.365808E+00 | loss scale: 4096.0 | "
    "grad norm: 95313.572 | num zeros: 0.0 | number of skipped iterations:   0 | number of nan iterations:   0 |\n"
    " iteration     6930/  159576 | consumed samples:       254192 | elapsed time per iteration (ms): 18564.1 | "
    "learning rate: 6.000E-05 | global batch size:    96 | lm loss: 9.121927E+00 | loss scale: 4096.0 | "
    "grad norm: 283384.130 | num zeros: 0.0 | number of skipped iterations:   0 | number of nan iterations:   0 |\n"
    " validation loss at iteration 7000 | lm loss value: 7.174200E+00 | lm loss PPL: 1.305315E+03 |\n"
)
# NVIDIA/nccl issue #743 (Megatron-LM BERT): the first window is all skipped, so no `lm loss` is printed;
# BERT adds `sop loss`
MEGATRON_BERT = (
    "training ...\n"
    "[before the start of training step] datetime: 2022-10-31 08:35:51 \n"
    " iteration       10/ 1000000 | consumed samples:           40 | elapsed time per iteration (ms): 356.2 | "
    "learning rate: 0.000E+00 | global batch size:     4 | loss scale: 8388608.0 | "
    "number of skipped iterations:  10 | number of nan iterations:   0 |\n"
    "time (ms) | forward-compute: 193.77 | backward-compute: 73.02 | optimizer: 63.01 | batch-generator: 25.27\n"
    " iteration       20/ 1000000 | consumed samples:           80 | elapsed time per iteration (ms): 140.6 | "
    "learning rate: 2.020E-08 | global batch size:     4 | lm loss: 1.005022E+01 | sop loss: 8.174902E-01 | "
    "loss scale: 32768.0 | grad norm: 217.199 | number of skipped iterations:   8 | number of nan iterations:   0 |\n"
)
# DeepSpeed issue #931 (hysteresis, then halvings), issue #1825 (engine progress), CogVideo issue #233
DEEPSPEED = (
    "Beginning of Epoch 1/16, Total Micro Batches 1840\n"
    "[2023-04-28 06:51:29,903] [INFO] [loss_scaler.py:188:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping "
    "step. Attempted loss scale: 65536, but hysteresis is 2. Reducing hysteresis to 1\n"
    "[2023-04-28 06:51:30,648] [INFO] [loss_scaler.py:181:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping "
    "step. Attempted loss scale: 65536, reducing to 32768\n"
    "[2023-04-28 06:51:31,392] [INFO] [loss_scaler.py:181:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping "
    "step. Attempted loss scale: 32768, reducing to 16384\n"
    "[2023-04-28 06:52:58,985] [INFO] [logging.py:96:log_dist] [Rank 0] step=10, skipped=6, lr=[5e-05], "
    "mom=[[0.9, 0.999]]\n"
    "[2023-04-28 06:52:58,985] [INFO] [timer.py:189:stop] 0/10, SamplesPerSec=83.48609168106144, "
    "MemAllocated=0.26GB, MaxMemAllocated=9.02GB\n"
    "[2023-04-28 06:53:14,130] [INFO] [logging.py:96:log_dist] [Rank 0] step=20, skipped=6, lr=[4.9e-05], "
    "mom=[[0.9, 0.999]]\n"
)
# karpathy/nanoGPT README and issue #178 (the -100.00% placeholder); issue #215 for a timestamped NaN run
NANOGPT = (
    "step 0: train loss 4.2874, val loss 4.2823\n"
    "iter 0: loss 4.2648, time 9371.81ms, mfu -100.00%\n"
    "iter 10: loss 3.2202, time 893.76ms, mfu 16.68%\n"
    "iter 240: loss 1.6524, time 895.31ms, mfu 16.62%\n"
    "step 250: train loss 1.5440, val loss 1.7220\n"
    "saving checkpoint to out-shakespeare-char\n"
    "2023-03-22 09:32:41 iter 3000: loss 4.2490, time 35392.33ms, mfu 13.85%\n"
    "2023-03-22 09:32:52 iter 3010: loss nan, time 1019.95ms, mfu 14.12%\n"
)
# pytorch/torchtitan PR #3393 (grad_norm, [rank0]: prefix), PR #950 (no grad_norm, thousands commas);
# the colour codes are those metrics.py wraps every field in
ESC = "\x1b"
TORCHTITAN = (
    "[rank0]:[titan] 2026-05-18 16:04:46,338 - root - INFO - "
    f"{ESC}[31mstep: 14  {ESC}[32mloss:  3.24405  {ESC}[33mgrad_norm:  0.8319  {ESC}[38;2;180;60;0mmemory:  9.46GiB(64.99%)  "
    f"{ESC}[34mtps: 7,282  {ESC}[36mtflops: 0.52  {ESC}[35mmfu: 0.17%{ESC}[39m\n"
    "[rank1]:[titan] 2026-05-18 16:04:46,340 - root - INFO - step: 14  loss:  3.24405  grad_norm:  0.8319  "
    "memory:  9.46GiB(64.99%)  tps: 7,280  tflops: 0.52  mfu: 0.17%\n"
    "[rank0]:[titan] 2026-05-18 16:04:47,456 - root - INFO - step: 15  loss:  3.10680  grad_norm:  0.8587  "
    "memory:  9.46GiB(64.99%)  tps: 7,334  tflops: 0.53  mfu: 0.17%\n"
    "[rank0]:[titan] 2026-05-18 16:04:50,000 - root - INFO - validate step: 15  loss:  3.3012  "
    "memory:  9.46GiB(64.99%)\n"
    "[rank0]:[titan] 2025-03-12 11:10:21,511 - root - INFO - step: 22  loss:  6.2250  memory:  1.41GiB(1.79%)  "
    "tps: 193,831  tflops: 18.36  mfu: 1.86%\n"
)


def _detect(text: str) -> str | None:
    return detect(SourceFile.from_bytes("train.log", text.encode()))[0]


@pytest.mark.parametrize(
    ("text", "fmt"),
    [
        (MEGATRON_104B, "megatron"),
        (MEGATRON_BERT, "megatron"),
        (DEEPSPEED, "deepspeed"),
        (NANOGPT, "nanogpt"),
        (TORCHTITAN, "torchtitan"),
    ],
)
def test_detected_by_content(text, fmt):
    assert _detect(text) == fmt


def test_megatron_reads_every_key_value_of_the_104b_lines():
    _, parsed = parse_text(megatron, MEGATRON_104B)
    frame = parsed.metrics
    validate_metrics(frame)
    assert rows(frame, "loss") == [(6900, 6.365808, 1), (6930, 9.121927, 2)]
    assert rows(frame, "grad_norm") == [(6900, 95313.572, 1), (6930, 283384.13, 2)]
    assert rows(frame, "lr") == [(6900, 6e-05, 1), (6930, 6e-05, 2)]
    assert rows(frame, "loss_scale") == [(6900, 4096.0, 1), (6930, 4096.0, 2)]
    assert rows(frame, "skipped_iters") == [(6900, 0.0, 1), (6930, 0.0, 2)]
    assert rows(frame, "nan_iters") == [(6900, 0.0, 1), (6930, 0.0, 2)]
    assert rows(frame, "num_zeros") == [(6900, 0.0, 1), (6930, 0.0, 2)]
    assert rows(frame, "loss", "val") == [(7000, 7.1742, 3)]
    assert rows(frame, "perplexity", "val") == [(7000, 1305.315, 3)]
    # BLOOM ramped its batch size up: 251,312 samples by iteration 6900, not 6900 x 96
    assert rows(frame, "consumed_samples") == [(6900, 251312.0, 1), (6930, 254192.0, 2)]
    names = set(frame["name"].astype(str))
    assert {"lm loss", "grad norm", "lm loss value", "lm loss PPL", "consumed samples"} <= names
    assert not {"elapsed time per iteration (ms)", "global batch size"} & names
    assert parsed.meta.batch_size == 96 and parsed.meta.where["batch_size"].line == 1


def test_megatron_layouts_vary_line_to_line_and_other_losses_keep_their_names():
    _, parsed = parse_text(megatron, MEGATRON_BERT)
    frame = parsed.metrics
    assert rows(frame, "loss") == [(20, 10.05022, 5)]  # the all-skipped window printed no loss
    assert rows(frame, "sop_loss") == [(20, 0.8174902, 5)]
    assert rows(frame, "loss_scale") == [(10, 8388608.0, 3), (20, 32768.0, 5)]
    assert rows(frame, "skipped_iters") == [(10, 10.0, 3), (20, 8.0, 5)]
    assert rows(frame, "grad_norm") == [(20, 217.199, 5)]


def test_megatron_timestamp_prefix_moe_losses_and_a_resumed_run():
    text = (
        "[2024-06-13 10:11:12.500000] iteration      100/    1000 | consumed samples:        12800 | "
        "learning rate: 3.000000E-04 | global batch size:   128 | lm loss: 4.500000E+00 | "
        "load_balancing_loss: 1.020000E+00 | z_loss: 3.100000E-01 | mtp_1 loss: 4.700000E+00 | "
        "loss scale: 1.0 | grad norm: 0.812 | number of skipped iterations:   0 | number of nan iterations:   0 |\n"
        "[2024-06-13 10:12:12.750000] iteration      110/    1000 | consumed samples:        14080 | "
        "learning rate: 3.000000E-04 | global batch size:   128 | lm loss: nan | "
        "load_balancing_loss: 1.030000E+00 | z_loss: 3.000000E-01 | mtp_1 loss: 4.600000E+00 | "
        "loss scale: 1.0 | grad norm: 0.805 | number of skipped iterations:   0 | number of nan iterations:   3 |\n"
        "[2024-06-13 11:00:00.000000] iteration      101/    1000 | consumed samples:        12928 | "
        "learning rate: 3.000000E-04 | global batch size:   128 | lm loss: 4.400000E+00 | "
        "load_balancing_loss: 1.010000E+00 | z_loss: 3.000000E-01 | mtp_1 loss: 4.600000E+00 | "
        "loss scale: 1.0 | grad norm: 0.790 | number of skipped iterations:   0 | number of nan iterations:   0 |\n"
        " validation loss at iteration 110 on validation set | lm loss value: 4.400000E+00 | "
        "lm loss PPL: 8.145087E+01 |\n"
    )
    _, parsed = parse_text(megatron, text)
    frame = parsed.metrics
    loss = rows(frame, "loss")
    assert [(s, line) for s, _, line in loss] == [(100, 1), (110, 2), (101, 3)]
    assert loss[0][1] == 4.5 and math.isnan(loss[1][1]) and loss[2][1] == 4.4
    assert [v for _, v, _ in rows(frame, "load_balancing_loss")] == [1.02, 1.03, 1.01]
    assert [v for _, v, _ in rows(frame, "mtp_1_loss")] == [4.7, 4.6, 4.6]
    assert rows(frame, "loss", "val") == [(110, 4.4, 4)]
    train = frame[frame["metric"] == "loss"]
    assert train["segment"].tolist() == [0, 0, 1, 1]  # the resumed run (step 101 after 110)
    assert train["wall_time"].tolist()[:3] == [0.0, 60.25, 2927.5]


def test_megatron_line_cut_off_keeps_the_fields_that_end_in_a_bar():
    text = (
        " iteration       10/     100 | consumed samples:          160 | learning rate: 1.000E-04 | "
        "lm loss: 3.300000E+00 | loss scale: 65536.0 | grad norm: 1.5\n"
    )
    _, parsed = parse_text(megatron, text)
    assert rows(parsed.metrics, "loss") == [(10, 3.3, 1)]
    assert rows(parsed.metrics, "loss_scale") == [(10, 65536.0, 1)]
    assert rows(parsed.metrics, "grad_norm") == []  # cut before its `|`: maybe cut mid-number too


@pytest.mark.parametrize(
    ("module", "named"),
    [(megatron, "Megatron"), (deepspeed, "DeepSpeed"), (nanogpt, "nanoGPT"), (torchtitan, "torchtitan")],
)
def test_a_file_without_records_is_a_clear_error(module, named):
    with pytest.raises(ParseError, match=named):
        parse_text(module, "training ...\nnothing here, step: 3 and iteration 4\n")


def test_deepspeed_progress_lines():
    _, parsed = parse_text(deepspeed, DEEPSPEED)
    frame = parsed.metrics
    validate_metrics(frame)
    assert rows(frame, "lr") == [(10, 5e-05, 5), (20, 4.9e-05, 7)]
    assert rows(frame, "momentum") == [(10, 0.9, 5), (20, 0.9, 7)]
    assert rows(frame, "skipped_steps") == [(10, 6.0, 5), (20, 6.0, 7)]
    assert frame["wall_time"].drop_duplicates().tolist() == [0.0, 15.145]


def test_nanogpt_iter_and_eval_lines():
    _, parsed = parse_text(nanogpt, NANOGPT)
    frame = parsed.metrics
    validate_metrics(frame)
    loss = rows(frame, "loss")
    assert loss[:4] == [(0, 4.2648, 2), (10, 3.2202, 3), (240, 1.6524, 4), (3000, 4.249, 7)]
    assert loss[4][0] == 3010 and math.isnan(loss[4][1])
    assert rows(frame, "loss", "val") == [(0, 4.2823, 1), (250, 1.722, 5)]
    assert rows(frame, "train_loss_estimate") == [(0, 4.2874, 1), (250, 1.544, 5)]
    assert set(frame["metric"].astype(str)) == {"loss", "train_loss_estimate"}  # no mfu, no time


def test_nanogpt_without_mfu_stays_a_print_style_log():
    """The pre-2023 `iter N: loss X, time Yms` is also what hand-written loops print (the corpus does)."""
    assert (
        _detect("iter 1631: loss 4.0863, time 561.94ms\niter 1632: loss 3.7441, time 563.15ms\n") != "nanogpt"
    )


def test_torchtitan_colours_ranks_commas_and_validation():
    _, parsed = parse_text(torchtitan, TORCHTITAN)
    frame = parsed.metrics
    validate_metrics(frame)
    assert rows(frame, "loss") == [(14, 3.24405, 1), (15, 3.1068, 3), (22, 6.225, 5)]  # rank 0 only
    assert rows(frame, "grad_norm") == [(14, 0.8319, 1), (15, 0.8587, 3)]  # step 22: an older line
    assert rows(frame, "loss", "val") == [(15, 3.3012, 4)]
    assert set(frame["metric"].astype(str)) == {"loss", "grad_norm"}
    assert frame["wall_time"].tolist()[:3] == [0.0, 0.0, 1.118]
    assert frame["segment"].max() == 0


def test_new_formats_load_through_parsers_load():
    log = load([("titan.log", TORCHTITAN.encode())])
    assert log.meta.format == "torchtitan"
    assert log.series("loss")["value"].tolist() == [3.24405, 3.1068, 6.225]


# HF Trainer (transformers >= 4.38 logs grad_norm beside loss); a DeepSpeed fp16 run whose every step
# overflowed (huggingface/transformers issue #14531: `skipped=1995` of 2000, `'loss': 0.0`), with the
# grad_norm newer versions add, which is NaN in such a window
HF_STDOUT = (
    "{'loss': 6.2645, 'grad_norm': 35.8388, 'learning_rate': 0.001, 'epoch': 0.02}\n"
    "{'loss': 0.0, 'grad_norm': nan, 'learning_rate': 0.001, 'epoch': 0.04}\n"
)
HF_STATE = (
    '{\n  "global_step": 50,\n  "log_history": [\n'
    '    {"epoch": 0.02, "grad_norm": 1.0528, "learning_rate": 4.8e-06, "loss": 0.1677, "step": 25},\n'
    '    {"epoch": 0.04, "grad_norm": NaN, "learning_rate": 4.6e-06, "loss": 0.0, "step": 50}\n'
    "  ]\n}\n"
)


@pytest.mark.parametrize(("name", "text"), [("stdout.txt", HF_STDOUT), ("trainer_state.json", HF_STATE)])
def test_hf_trainer_keeps_grad_norm_beside_the_loss(name, text):
    log = load([(name, text.encode())])
    grad_norm = log.series("grad_norm")["value"].tolist()
    assert len(grad_norm) == 2 and grad_norm[0] in (35.8388, 1.0528) and math.isnan(grad_norm[1])
    assert log.series("loss")["step"].tolist() == log.series("grad_norm")["step"].tolist()


@pytest.mark.parametrize(("name", "text"), [("stdout.txt", HF_STDOUT), ("trainer_state.json", HF_STATE)])
def test_hf_hidden_nan_is_nan_not_a_perfect_loss(name, text):
    loss = load([(name, text.encode())]).series("loss")["value"].tolist()
    assert math.isnan(loss[1])


def test_a_corrupt_step_is_skipped_with_a_warning():
    text = NANOGPT.replace("iter 10:", "iter 99999999999999999999999999:")
    _, parsed = parse_text(nanogpt, text)
    assert 10 not in rows(parsed.metrics, "loss") and parsed.skipped_lines == 1
    assert [(s, v) for s, v, _ in rows(parsed.metrics, "loss")][:2] == [(0, 4.2648), (240, 1.6524)]
    assert "out of range" in parsed.warnings[0].message


_STAMPED = _llm.LineKind.of("rec ", r"(?P<prefix>.*?)rec (?P<step>\d+): loss (?P<loss>\S+)")


def _wall_times(prefixes: list[str], read=_llm.read_records) -> np.ndarray | None:
    text = "".join(f"{prefix}rec {i}: loss 1.5\n" for i, prefix in enumerate(prefixes))
    return _llm.wall_times(read(text, (_STAMPED,))[0].stamps)


@pytest.mark.parametrize("read", [_llm._by_layout, lambda text, kinds: [_llm._by_line(text, kinds[0])]])
def test_wall_times_read_every_stamp_layout_by_layout_and_line_by_line(read):
    """Fractions of one to nine digits (the first six count), `.` or `,`, `T` or a blank between date and
    time; a record without a stamp has none; an impossible date gives no wall times at all."""
    prefixes = [
        "[2024-06-13 10:11:12.5] ",
        "[rank0]:[titan] 2024-06-13T10:11:13,123456789 - root - INFO - ",
        "no stamp here ",
        "[2024-06-13 10:11:14] [2024-06-13 10:11:59.9] ",  # the first stamp of the prefix
        "2024-06-14 00:00:00.000001",
    ]
    elapsed = _wall_times(prefixes, read)
    assert elapsed[[0, 1, 3, 4]].tolist() == [0.0, 0.623456, 1.5, 49727.500001]
    assert math.isnan(elapsed[2])
    assert _wall_times(["no stamp ", "[2024-06-13 10:11:12] "], read) is None


def test_a_stamp_that_is_no_date_leaves_the_file_without_wall_times():
    """30 February: the layout reader gives up on it and the line reader's NumPy dates refuse it."""
    with pytest.raises(Unsupported):
        _llm._by_layout("[2024-02-30 00:00:00] rec 1: loss 1.5\n", (_STAMPED,))
    assert _wall_times(["[2024-02-30 00:00:00] ", "[2024-06-13 10:11:12] "]) is None


def test_record_rows_come_record_by_record_in_the_order_the_columns_were_added():
    records = _llm.RecordRows(np.array([10.0, 20.0, 30.0]), np.array([1, 2, 3]))
    records.add(np.array([1.0, 2.0, 3.0]), np.array([True, False, True]), "train", "loss", "loss")
    records.add(np.array([4.0, 5.0, 6.0]), np.array([False, True, True]), "val", "loss", "val loss")
    records.add(np.array([7.0, 8.0, 9.0]), np.array([True, False, False]), "train", "lr", "lr")
    frame = records.parsed("train.log", RunMeta(), "nothing").metrics
    assert frame["line"].tolist() == [1, 1, 2, 3, 3]
    assert frame["value"].tolist() == [1.0, 7.0, 5.0, 3.0, 6.0]
    assert frame["name"].astype(str).tolist() == ["loss", "lr", "val loss", "loss", "val loss"]


def test_torchtitan_validation_read_from_the_prefix_before_step():
    text = (
        "[titan] 2026-05-18 16:04:46,338 - root - INFO - step: 1  loss:  3.5  memory:  9.46GiB(64.99%)\n"
        "[titan] 2026-05-18 16:04:47,338 - root - INFO - validate validate step: 1  loss:  3.75  memory:  1GiB\n"
        "[titan] 2026-05-18 16:04:48,338 - root - INFO - validate step: x step: 2  loss:  3.25  memory:  1GiB\n"
        "[titan] 2026-05-18 16:04:49,338 - root - INFO - validate  step: 3  loss:  3.0  memory:  1GiB\n"
    )
    _, parsed = parse_text(torchtitan, text)
    frame = parsed.metrics
    assert rows(frame, "loss") == [(1, 3.5, 1), (2, 3.25, 3), (3, 3.0, 4)]  # `validate  step`: not validation
    assert rows(frame, "loss", "val") == [(1, 3.75, 2)]
    assert frame["wall_time"].tolist() == [0.0, 1.0, 2.0, 3.0]


# --- the layout reader against the line reader ---------------------------------------------------------
_KINDS = {
    "megatron": (megatron._LINE,),
    "deepspeed": (deepspeed._RECORD,),
    "nanogpt": (nanogpt._ITER, nanogpt._EVAL),
    "torchtitan": (torchtitan._RECORD,),
}


def _assert_same_fields(text: str, kinds) -> None:
    by_line = [_llm._by_line(text, kind) for kind in kinds]
    try:
        by_layout = _llm._by_layout(text, kinds)
    except Unsupported:
        return
    for fast, slow in zip(by_layout, by_line, strict=True):
        assert fast.lines.tolist() == slow.lines.tolist()
        assert list(fast.numbers) == list(slow.numbers)  # fields in the order they first appear
        for name, (values, present) in slow.numbers.items():
            assert fast.numbers[name][1].tolist() == present.tolist(), name
            np.testing.assert_array_equal(fast.numbers[name][0][present], values[present])
        assert fast.stamps.tolist() == slow.stamps.tolist()


def _bench_log(fmt: str, seed: int, tmp_path) -> str:
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
    from llm_parse_bench import write_log

    path = tmp_path / f"{fmt}.log"
    write_log(path, fmt, 0.3, seed)
    return path.read_text()


@pytest.mark.parametrize("fmt", sorted(_KINDS))
def test_layout_reader_reads_as_the_line_reader_on_generated_logs(fmt, tmp_path):
    """Tens of layouts per log (counters and values changing width, scaler and checkpoint lines between)."""
    for seed in (1, 2):
        _assert_same_fields(_bench_log(fmt, seed, tmp_path), _KINDS[fmt])


_EXCERPTS = [MEGATRON_104B, MEGATRON_BERT, DEEPSPEED, NANOGPT, TORCHTITAN]


@given(
    st.sampled_from(_EXCERPTS),
    st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from("0123456789.-+eE ,:|xN\x1b[m")), max_size=6),
)
@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_layout_reader_reads_as_the_line_reader_on_mutated_excerpts(excerpt, edits):
    """Characters replaced anywhere in real excerpts (numbers cut, signs, commas, bars, colour codes)."""
    text = list(excerpt * 3)
    for position, char in edits:
        text[position % len(text)] = char
    text = "".join(text)
    for kinds in _KINDS.values():
        _assert_same_fields(text, kinds)


def test_too_many_layouts_are_read_line_by_line(monkeypatch):
    expected = _llm.read_records(NANOGPT, (nanogpt._ITER, nanogpt._EVAL))
    monkeypatch.setattr(_llm, "_MAX_LAYOUTS", 1)
    with pytest.raises(Unsupported):
        _llm._by_layout(NANOGPT, (nanogpt._ITER,))
    fallback = _llm.read_records(NANOGPT, (nanogpt._ITER, nanogpt._EVAL))
    for fast, slow in zip(expected, fallback, strict=True):
        assert fast.lines.tolist() == slow.lines.tolist()
        np.testing.assert_array_equal(fast.number("loss")[0], slow.number("loss")[0])


def test_megatron_empty_field_is_absent_not_minus_one():
    """NumPy's string reader returned -1 for an empty field among others; an empty value is no value."""
    text = MEGATRON_104B.replace("grad norm: 95313.572", "grad norm:  ").replace(
        "learning rate: 6.000E-05 |", "learning rate: |", 1
    )
    for read in (_llm._by_layout, lambda t, kinds: [_llm._by_line(t, kinds[0])]):
        (fields,) = read(text, (megatron._LINE,))
        assert fields.number("grad norm")[1].tolist() == [False, True, False]
        assert fields.number("learning rate")[1].tolist() == [False, True, False]
    _, parsed = parse_text(megatron, text)
    assert [v for _, v, _ in rows(parsed.metrics, "grad_norm")] == [283384.13]
