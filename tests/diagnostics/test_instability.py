"""Large-model instability measurements (diagnostics/instability.py) and their rules LD112 / LD211."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from diagnostics import diagnose, fitted
from diagnostics.context import Context
from diagnostics.instability import classify_spikes, leading_jump, loss_scale_history, warmup_end
from diagnostics.rules.instability import RESTART_KINDS, _restart_shift, scale_history
from parsers import ParseError, load, load_paths

REAL = Path(__file__).resolve().parents[3] / "shared" / "real_logs"
DETECTOR = {"window": 25, "robust_z": 12.0, "min_ratio": 2.0, "fast_points": 25}


def _noisy_level(n: int, level: float = 2.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return level * np.exp(rng.normal(0, 0.02, n))


def test_a_spike_that_halves_back_at_once_is_fast():
    y = _noisy_level(300)
    y[150] = 8.0
    y[151] = 3.0
    spikes = classify_spikes(np.arange(300) * 10, y, **DETECTOR)
    assert [(s.step, s.kind) for s in spikes] == [(1500, "fast")]
    assert spikes[0].recovered_step == 1510
    assert spikes[0].height == pytest.approx(4.0, rel=0.05)


def test_a_spike_that_takes_longer_than_the_recovery_span_is_slow():
    y = _noisy_level(400)
    y[150:] = 2.0 + 6.0 * np.exp(-np.arange(250) / 60.0)  # below 2x the base after ~66 points
    spikes = classify_spikes(np.arange(400), y, **DETECTOR)
    assert [s.kind for s in spikes] == ["slow"]
    assert 60 < spikes[0].recovery_steps < 75


def test_a_jump_to_a_new_level_is_a_level_shift_and_ends_the_search():
    y = _noisy_level(300)
    y[150:] = _noisy_level(150, level=7.0, seed=1)
    y[200] = 40.0  # judged against the old level no more
    spikes = classify_spikes(np.arange(300), y, **DETECTOR)
    assert [(s.step, s.kind) for s in spikes] == [(150, "level_shift")]
    assert spikes[0].peak == pytest.approx(float(np.max(y[150:175])))
    assert spikes[0].recovered_step is None and spikes[0].recovery_steps is None


def test_minibatch_noise_and_a_steady_decline_have_no_spikes():
    rng = np.random.default_rng(3)
    decline = 5.0 * np.exp(-np.arange(2000) / 500) + 0.5
    noisy = decline * np.exp(rng.normal(0, 0.15, 2000))
    assert classify_spikes(np.arange(2000), noisy, **DETECTOR) == []


def test_spikes_in_the_last_recovery_span_are_not_judged_yet():
    y = _noisy_level(300)
    y[290] = 9.0
    assert classify_spikes(np.arange(300), y, **DETECTOR) == []


def test_curves_that_cannot_be_judged_give_no_spikes():
    assert classify_spikes(np.arange(10), np.ones(10), **DETECTOR) == []
    y = _noisy_level(300)
    y[40] = math.nan
    assert classify_spikes(np.arange(300), y, **DETECTOR) == []


def test_a_grad_norm_jump_before_the_loss_spike_is_found_with_its_lead():
    steps = np.arange(0, 1000, 10)
    grad = np.full(100, 1.5)
    grad[60:] = 6.0  # from step 600
    assert leading_jump(steps, grad, at_step=620, lookback_steps=100, window=25, ratio=2.0) == (600, 4.0)
    assert leading_jump(steps, grad, at_step=500, lookback_steps=100, window=25, ratio=2.0) is None


def test_warmup_end_is_the_first_point_at_the_peak_lr():
    steps = np.arange(0, 100)
    lr = np.minimum(steps / 20, 1.0) * 3e-4 + 1e-7
    assert warmup_end(steps, lr, warmup_share=0.5) == 20
    assert warmup_end(steps, np.full(100, 3e-4), warmup_share=0.5) is None  # no warm-up


def test_loss_scale_history_counts_halvings_and_the_slide():
    steps = np.array([0, 100, 200, 300, 400, 500])
    scale = np.array([65536.0, 32768.0, 65536.0, 1024.0, 4.0, 1.0])
    h = loss_scale_history(steps, scale)
    assert h is not None
    assert (h.peak, h.peak_step, h.end, h.minimum, h.halvings) == (65536.0, 0, 1.0, 1.0, 4)
    assert h.slide_doublings == 16.0


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_logs is absent")
def test_a_healthy_fp16_fairseq_run_keeps_its_loss_scale_and_is_not_blamed_on_it():
    """wav2vec 2.0 pre-training in fp16 (fairseq-hydra-train): the scale saw-tooths 128 -> 256 -> 8 -> 16,
    four halvings below its peak, which is a dynamic scaler at work, not a collapse."""
    log = load_paths([REAL / "fairseq" / "wav2vec2_pretrain_hydra_train.log"])
    h = scale_history(Context(log, fitted.PARAMS))
    assert h is not None
    assert (h.start, h.peak, h.peak_step, h.minimum, h.end) == (128.0, 256.0, 400, 8.0, 16.0)
    d = diagnose(log)
    assert d.symptom.symptom == "healthy"
    assert "LD211" not in {f.rule for f in d.findings}


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_logs is absent")
def test_adam_beta2_is_read_from_echoed_settings_and_judged_only_on_unstable_runs():
    """Gemma-2 LoRA (HF Trainer stdout) echoes `adam_beta2=0.999` and trains steadily: no LD313.
    fairseq's hydra dict gives `'adam_betas': '(0.9,0.98)'`."""
    gemma = load_paths([REAL / "hf_stdout" / "gemma2_lmsys_cls_stdout.log"])
    assert gemma.meta.adam_beta2 == 0.999
    assert gemma.meta.where["adam_beta2"].text == "adam_beta2=0.999,"
    d = diagnose(gemma)
    assert d.symptom.symptom == "healthy" and "LD313" not in {f.rule for f in d.findings}
    wav2vec = load_paths([REAL / "fairseq" / "wav2vec2_pretrain_hydra_train.log"])
    assert wav2vec.meta.adam_beta2 == 0.98


LLM = Path(__file__).resolve().parents[2] / "sample_logs" / "llm"


def test_a_real_fp16_loss_scale_collapse_is_nan_blamed_on_fp16_with_its_steps():
    """The Megatron-format sample trained in fp16 with a real dynamic scaler at lr 0.3: the printed loss
    stays finite (Megatron averages the non-NaN iterations), the NaN-iterations counter and the scaler's
    fatal line tell the rest."""
    d = diagnose(load_paths([LLM / "megatron_fp16_loss_scale_collapse.log"]))
    assert (d.symptom.symptom, d.symptom.onset_step) == ("nan", 400)
    nan = next(f for f in d.findings if f.rule == "LD101")
    assert nan.evidence[0].params == {"nan": 9, "total": 10, "step": 400}
    cause = d.causes[0]
    assert cause.id == "fp16_overflow" and "lr_too_high" in [c.id for c in d.causes]
    assert [e.key for e in cause.evidence] == ["evidence.loss_scale_fatal", "evidence.loss_scale_slide"]
    assert cause.evidence[1].params["peak_step"] == 210 and cause.evidence[1].params["end"] == "32"
    keys = [f.key for f in cause.fixes]
    assert keys[:2] == ["fixes.use_bf16", "fixes.loss_scale_settings"] and "fixes.rollback_scale" in keys
    assert cause.fixes[0].snippet == "--bf16  # ⟦instead_of_fp16⟧"  # a Megatron run gets Megatron's flag
    assert next(f for f in cause.fixes if f.key == "fixes.rollback_scale").params == {"target": 210}


def test_a_healthy_fp16_run_with_a_few_overflows_is_not_blamed_on_them():
    d = diagnose(load_paths([LLM / "megatron_fp16_healthy.log"]))
    assert d.symptom.symptom == "healthy"
    assert "LD211" not in {f.rule for f in d.findings} and not d.causes


@pytest.mark.parametrize(("beta2", "flagged"), [(0.999, True), (0.95, False)])
def test_adam_beta2_is_flagged_on_a_run_that_blows_up_and_lr_too_high_offers_095(beta2, flagged):
    """A char-LM whose Adam lr warms up to 300x the tuned one (it diverges; a real run of LD115's test
    fixtures); the trainer_state it logs does not echo beta2, so the setting is stated as HF's
    `training_args.json` would."""
    log = load_paths(
        [Path(__file__).resolve().parents[1] / "fixtures" / "lr_overshoot" / "charlm_023_overshoot_x300"]
    )
    log.meta.adam_beta2 = beta2
    d = diagnose(log)
    assert d.symptom.symptom == "diverging"
    assert ("LD313" in {f.rule for f in d.findings}) is flagged
    lr_fixes = next(c for c in d.causes if c.id == "lr_too_high").fixes
    beta_fix = [f for f in lr_fixes if f.key == "fixes.adam_beta2"]
    assert bool(beta_fix) is flagged
    if flagged:
        assert beta_fix[0].params == {"old": "0.999", "new": "0.95"}


def test_without_a_logged_scale_the_overflow_events_give_the_scales_history():
    """DeepSpeed prints the scale only in its OVERFLOW lines: with the Megatron sample's `loss scale` column
    left out, its five `reducing to 16 ... 1` lines tell the slide to the floor."""
    log = load_paths([LLM / "megatron_fp16_loss_scale_collapse.log"])
    log.metrics = log.metrics[log.metrics["metric"] != "loss_scale"]
    h = scale_history(Context(log, fitted.PARAMS))
    assert h is not None and (h.minimum, h.end) == (1.0, 1.0)
    assert h.halvings >= 4
    d = diagnose(log)
    assert d.causes[0].id == "fp16_overflow"


# ----- LD113: the loss after a restart ---------------------------------------------------------------
RESTARTS = Path(__file__).resolve().parents[2] / "sample_logs" / "llm" / "restart"
CORPORA = [Path(__file__).resolve().parents[2] / "sample_logs" / name for name in ("corpus", "corpus_fresh")]


def _shifts(log) -> list[dict]:
    """LD113's measurement at each restart event of the log (where it has enough points to judge)."""
    rows, events = log.series("loss", "train"), log.events
    found = [
        _restart_shift(rows, str(e.source), int(e.line), fitted.PARAMS)
        for e in events[events["kind"].isin(RESTART_KINDS)].itertuples(index=False)
    ]
    return [s for s in found if s is not None]


def _level_after_restart(path: Path) -> list:
    return [f for f in diagnose(load_paths([path])).findings if f.rule == "LD113"]


def test_a_job_resumed_onto_a_dirty_shard_settles_higher_and_is_told_with_its_resume_line():
    """nanoGPT killed after iteration 350, resumed from its iteration-300 checkpoint; the new loader reads
    a copy of the text with 30 % of the characters random: the loss goes from ~1.8 to ~2.9 and stays."""
    (found,) = _level_after_restart(RESTARTS / "nanogpt_resumed_dirty_shard.log")
    assert found.severity == "warning" and found.step == 300 and found.step_end == 410
    (evidence,) = found.evidence
    assert evidence.quote is not None and evidence.quote.line == 46
    assert evidence.quote.text == "Resuming training from out-llm-char"
    assert evidence.params["from_step"] == 320 and evidence.params["before_to"] == 350
    assert found.measurements["ratio"] > 1.4
    assert "1.8" in evidence.params["before"] and evidence.params["after"].startswith("2.8")


def test_a_megatron_job_resumed_onto_a_dirty_shard_is_told_with_its_checkpoint_line():
    """The fp16 Megatron-format loop, killed after iteration 350 and loaded from its iteration-300
    checkpoint (loss scaler included), its data then 30 % random characters."""
    (found,) = _level_after_restart(RESTARTS / "megatron_fp16_resumed_dirty_shard.log")
    (evidence,) = found.evidence
    assert found.step == 300 and evidence.quote is not None and evidence.quote.line == 56
    assert evidence.quote.text == "loading checkpoint from checkpoints/gpt-char at iteration 300"
    assert evidence.params["from_step"] == 330 and found.measurements["ratio"] > 1.4


@pytest.mark.parametrize("name", ["nanogpt_resumed_same_data.log", "megatron_fp16_resumed_same_data.log"])
def test_the_same_job_resumed_onto_the_same_data_is_left_alone(name):
    assert _level_after_restart(RESTARTS / name) == []


def _resumed_runs() -> list[Path]:
    runs = []
    for corpus in CORPORA:
        if (corpus / "labels.csv").exists():
            runs += sorted((corpus / "runs").glob("*_healthy_resumed"))
    return runs


@pytest.mark.parametrize("run", _resumed_runs(), ids=lambda p: p.name)
def test_healthy_resumed_corpus_runs_are_left_alone(run):
    """Resumed with re-logged steps (a rollback in the events): the loss picks up where it was."""
    log = load_paths([run])
    assert log.events["kind"].isin(RESTART_KINDS).any()
    # where both sides have enough points (not the short per-epoch logs), it picks up where it was
    assert all(s["ratio"] < 1.1 for s in _shifts(log))
    assert _level_after_restart(run) == []


@pytest.mark.skipif(not REAL.is_dir(), reason="../shared/real_logs absent")
def test_real_logs_with_restarts_are_left_alone():
    """Several fit() sessions appended to one Keras stdout, resumed Caffe, Lightning and mmdet runs."""
    with (REAL / "MANIFEST.csv").open(encoding="utf-8") as fh:
        files = [REAL / row["file"] for row in csv.DictReader(fh)]
    restarted = 0
    for path in files:
        try:
            log = load_paths([path])
        except (ParseError, OSError, ValueError):  # unreadable logs are the parsers' tests' business
            continue
        if not log.events["kind"].isin(RESTART_KINDS).any():
            continue
        restarted += 1
        # appended Keras fit() sessions move the level by up to ~1.4x, but within the loss's own noise
        assert all(s["z"] < 2 for s in _shifts(log)), path.name
        assert not [f for f in diagnose(log).findings if f.rule == "LD113"], path.name
    assert restarted >= 5


def test_a_restart_with_non_finite_or_negative_losses_around_it_is_not_judged():
    """NaN, inf and negative losses (an ELBO) have no level on a log scale: no finding, no error; the
    same log with a finite loss there is warned."""
    for value, warned in (("1.0", True), ("nan", False), ("inf", False), ("-0.5", False)):
        lines = [
            f"iter {i}: loss {value if i == 330 else 1.0}, time 20.00ms, mfu 0.02%\n"
            for i in range(0, 360, 10)
        ]
        lines += ["Resuming training from out\n"]
        lines += [f"iter {i}: loss 3.0, time 20.00ms, mfu 0.02%\n" for i in range(300, 600, 10)]
        d = diagnose(load([("train.log", "".join(lines).encode())]))
        assert d.errors == [] and bool([f for f in d.findings if f.rule == "LD113"]) == warned, value
