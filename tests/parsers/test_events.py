"""TrainingLog.events: loss-scaler, skipped-step, checkpoint, restart and fatal lines found in logs of any
format, placed at a step. Lines are quoted from public logs (named beside each)."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
from real_log_files import real_log
from test_llm_formats import DEEPSPEED, MEGATRON_BERT

from parsers import load, load_paths
from parsers.events import EVENT_COLUMNS, EVENT_KINDS, text_events
from parsers.model import purge_orphans

# HF Trainer stdout with DeepSpeed ZeRO overflows glued to tqdm bars (ymcui/Chinese-LLaMA-Alpaca issue #534)
HF_DEEPSPEED = (
    " 14%|█▍        | 378/2724 [13:58:09<86:18:35, 132.44s/it][2023-06-07 22:16:00,018] [INFO] "
    "[loss_scaler.py:181:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 64, "
    "reducing to 32\n"
    "\n"
    " 14%|█▍        | 380/2724 [14:02:33<86:01:24, 132.12s/it]\n"
    "{'loss': 2.0491, 'learning_rate': 0.0001961913563176343, 'epoch': 0.28}\n"
    " 14%|█▍        | 380/2724 [14:02:33<86:01:24, 132.12s/it][2023-06-07 22:20:23,340] [INFO] "
    "[loss_scaler.py:181:update_scale] [deepspeed] OVERFLOW! Rank 0 Skipping step. Attempted loss scale: 16, "
    "reducing to 8\n"
    "{'loss': 2.1, 'learning_rate': 0.0001961913563176343, 'epoch': 0.29}\n"
    "Exception: Current loss scale already at minimum - cannot decrease scale anymore. Exiting run.\n"
)
# Apex amp inside a print log (whai362/PVT issue #94, NVIDIA/apex issue #318)
APEX = (
    "Epoch: [0]  [  10/1251]  loss: 6.9120 (6.9167)  lr: 0.000001\n"
    "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 32768.0\n"
    "Epoch: [0]  [  20/1251]  loss: 6.9070 (6.9124)  lr: 0.000001\n"
    "Gradient overflow.  Skipping step, loss scaler 0 reducing loss scale to 8.165126103939127e-202\n"
    "Epoch: [0]  [  30/1251]  loss: 6.9050 (6.9101)  lr: 0.000001\n"
)


def _events(log) -> list[tuple]:
    return list(log.events[["step", "kind", "value", "line"]].itertuples(index=False, name=None))


def test_events_table_has_its_columns_and_dtypes():
    log = load([("train.log", MEGATRON_BERT.encode())])
    assert list(log.events.columns) == list(EVENT_COLUMNS)
    assert {c: str(log.events[c].dtype) for c in EVENT_COLUMNS} == EVENT_COLUMNS
    assert list(log.events["kind"].cat.categories) == list(EVENT_KINDS)


def test_deepspeed_scaler_lines_hysteresis_and_growth_of_skipped():
    log = load([("ds.log", DEEPSPEED.encode())])
    events = _events(log)
    assert [(step, kind, line) for step, kind, _, line in events] == [
        (10, "overflow", 2),
        (10, "overflow", 3),
        (10, "overflow", 4),
        (10, "skipped", 5),
    ]
    values = [value for _, _, value, _ in events]
    assert math.isnan(values[0]) and values[1:] == [32768.0, 16384.0, 6.0]  # hysteresis: no new scale
    assert log.events["detail"].iloc[0].endswith("Reducing hysteresis to 1")


def test_scaler_events_inside_hf_trainer_stdout_and_the_fatal_minimum():
    log = load([("stdout.txt", HF_DEEPSPEED.encode())])
    assert log.meta.format == "hf_stdout"
    events = _events(log)
    assert [(kind, value, line) for _, kind, value, line in events[:2]] == [
        ("overflow", 32.0, 1),
        ("overflow", 8.0, 5),
    ]
    assert events[2][1] == "fatal" and events[2][3] == 7
    # placed at the next logged dict's step (the Trainer counts dicts: 1, 2), the fatal at the last one
    assert [step for step, *_ in events] == [1, 2, 2]


def test_bf16_variant_without_a_scale_and_old_deepscale_tag():
    found = text_events(
        "[deepspeed] OVERFLOW! Rank 0 Skipping step.\n"
        "[2021-02-04 15:06:19,825] [INFO] [stage2.py:1357:step] [deepscale] OVERFLOW! Rank 0 Skipping step. "
        "Attempted loss scale: 134217728.0, reducing to 67108864.0\n"
    )
    assert [(kind, line) for kind, _, _, line, _ in found] == [("overflow", 1), ("overflow", 2)]
    assert math.isnan(found[0][1]) and found[1][1] == 67108864.0


def test_apex_amp_overflows_in_a_print_log():
    log = load([("train.log", APEX.encode())])
    # placed at the next line's record (print_style reads the overflow line's own numbers as a record too)
    assert _events(log) == [(20, "overflow", 32768.0, 2), (30, "overflow", 8.165126103939127e-202, 4)]


def test_megatron_counters_and_loss_scale_changes_are_events():
    log = load([("train.log", MEGATRON_BERT.encode())])
    assert [(s, k, v, line) for s, k, v, line in _events(log)] == [
        (10, "skipped", 10.0, 3),
        (20, "loss_scale", 32768.0, 5),
        (20, "skipped", 8.0, 5),
    ]
    assert log.events["detail"].tolist() == [
        "number of skipped iterations: 10",
        "loss scale: 8388608 → 32768",
        "number of skipped iterations: 8",
    ]


def test_restart_and_rollback_from_segments():
    text = "".join(
        f"step={step} loss={loss}\n"
        for step, loss in [(1, 2.0), (2, 1.9), (3, 1.8), (2, 1.85), (3, 1.7), (1, 2.1)]
    )
    log = load([("train.log", text.encode())])
    events = log.events[["step", "kind", "detail", "line"]].values.tolist()
    assert events == [[2, "rollback", "step 3 → 2", 4], [1, "restart", "step 3 → 1", 6]]


def test_real_fairseq_overflows_and_checkpoints():
    log = load_paths([real_log("fairseq/wav2vec2_pretrain_hydra_train.log")])
    events = log.events
    overflow = events[events["kind"] == "overflow"]
    assert len(overflow) == 19 and len(events[events["kind"] == "checkpoint_save"]) == 10
    assert overflow[["step", "value", "line"]].iloc[0].tolist() == [479, 128.0, 289]
    assert overflow["value"].iloc[-1] == 2.0 or overflow["value"].min() <= 8.0


def test_real_caffe_snapshots_name_their_step_and_glog_fatal_is_found():
    saves = load_paths([real_log("caffe/nvcaffe_mnist_lenet.log")]).events
    assert saves[["step", "kind", "line"]].values.tolist() == [
        [5000, "checkpoint_save", 881],
        [10000, "checkpoint_save", 1091],
    ]
    events = load_paths([real_log("caffe/squeezenet128_imagenet.log")]).events
    fatal = events[events["kind"] == "fatal"]
    assert fatal["line"].tolist() == [3335]
    assert fatal["detail"].iloc[0].startswith("F0604 20:56:03.521221   844 syncedmem.cpp:56] Check failed")


def test_real_mmdet_checkpoint_lines_and_appended_runs():
    saves = load_paths([real_log("mmdet_text/faster_rcnn_carafed_coco_1x.log")]).events
    assert saves["kind"].astype(str).unique().tolist() == ["checkpoint_save"] and len(saves) == 12
    assert saves["line"].iloc[0] == 424
    appended = load_paths([real_log("print_style/vit_cifar10_patch4_appended_runs.txt")]).events
    assert set(appended["kind"].astype(str)) == {"restart"}


def test_a_log_without_events_has_an_empty_table():
    log = load([("train.log", b"step=1 loss=2.0\nstep=2 loss=1.5\n")])
    assert log.events.empty and isinstance(log.events, pd.DataFrame)


def test_nanogpt_resume_line_is_a_checkpoint_load_beside_the_rollback():
    """nanoGPT's `init_from='resume'` prints `Resuming training from out`, then counts on from the
    checkpoint's iteration (sample_logs/llm/restart: killed after 350, resumed at 300)."""
    path = Path(__file__).resolve().parents[2] / "sample_logs/llm/restart/nanogpt_resumed_same_data.log"
    events = load_paths([path]).events
    resumed = events[events["kind"].isin(("checkpoint_load", "rollback"))]
    assert resumed[["step", "kind", "detail", "line"]].values.tolist() == [
        [300, "checkpoint_load", "Resuming training from out-llm-char", 46],
        [300, "rollback", "step 350 → 300", 47],
    ]


def test_purge_orphans_lets_a_resumed_jobs_relogged_steps_replace_the_old_jobs_points():
    """TensorBoard's purge: nanoGPT killed after 350 and resumed at 300 logs 300-350 twice; the curve
    keeps the resumed job's points there, in step order (the chart and the diagnosis read it so)."""
    path = Path(__file__).resolve().parents[2] / "sample_logs/llm/restart/nanogpt_resumed_dirty_shard.log"
    series = load_paths([path]).series("loss", "train")
    shown = purge_orphans(series)
    steps = shown["step"].to_numpy()
    assert len(series) == 67 and len(shown) == 61 and bool(np.all(np.diff(steps) > 0))
    assert shown.loc[shown["step"] == 300, "value"].tolist() == [3.042]


def test_purge_orphans_keeps_a_run_appended_from_its_first_step_whole():
    text = "".join(
        f"step={step} loss={loss}\n"
        for step, loss in [(1, 2.0), (2, 1.9), (3, 1.8), (2, 1.85), (3, 1.7), (1, 2.1)]
    )
    shown = purge_orphans(load([("train.log", text.encode())]).series("loss", "train"))
    assert shown[["step", "value"]].values.tolist() == [[1, 2.0], [2, 1.85], [3, 1.7], [1, 2.1]]
