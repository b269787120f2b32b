"""LD112, LD113, LD211, LD313: large-model instabilities: how the loss spikes recover, a loss that settles
higher after a restart, an fp16 loss scale that collapses, and Adam's beta2 on an unstable run.

LD112 describes; it names no symptom, so the verdict stays LD108's. LD211 is the cause a dynamic loss
scaler points at when the run failed. Their numbers come from the fitted spike detector (LD108's
window, robust z, ratio and recovery) and from the loss scaler's own arithmetic (see `Params`).
Texts live in `i18n/rules.toml` under `rules.<id>`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from diagnostics import fixes
from diagnostics.context import Context
from diagnostics.features import spikes_are_noise
from diagnostics.instability import (
    LossScaleHistory,
    Spike,
    classify_spikes,
    leading_jump,
    loss_scale_history,
    warmup_end,
)
from diagnostics.model import Evidence, Finding
from diagnostics.params import Params
from diagnostics.registry import RuleResult, rule
from diagnostics.rules._common import fmt
from diagnostics.rules.causes import BLOW_UP, STALLED, UNSTABLE, _cause, _symptom
from parsers.model import LogLine


def loss_spikes(ctx: Context) -> list[Spike]:
    """The training loss's spikes, classified (fast / slow / level shift), from the raw per-step loss
    where the log has it; empty when they are too many to be spikes (noise)."""
    p = ctx.params
    curve = ctx.train_loss_raw or ctx.train_loss
    if curve is None:
        return []
    idx = curve.trend_index
    found = classify_spikes(
        curve.steps[idx],
        curve.values[idx],
        window=p.spike_window,
        robust_z=p.spike_mad,
        min_ratio=p.spike_ratio,
        fast_points=p.spike_recover_points,
    )
    if spikes_are_noise(len(found), len(idx), p):
        return []
    return found


@rule("LD112", "loss-spike-recovery", curves=("train_loss",))
def spike_recovery(ctx: Context) -> RuleResult | None:
    """How each spike of the loss ended, whether the grad norm jumped first, and whether the spikes
    gather where the warm-up ends."""
    p = ctx.params
    found = loss_spikes(ctx)
    if not found:
        return None
    kinds = {k: sum(s.kind == k for s in found) for k in ("fast", "slow", "level_shift")}
    tallest = max(found, key=lambda s: s.height)
    slowest = max((s.recovery_steps or 0 for s in found), default=0)
    evidence = [
        Evidence(
            "evidence.spike_recovery",
            {
                "count": len(found),
                **kinds,
                "height": f"{tallest.height:.3g}",
                "step": tallest.step,
                "slowest": slowest,
            },
            tallest.step,
        )
    ]
    shift = next((s for s in found if s.kind == "level_shift"), None)
    if shift is not None:
        evidence.append(
            Evidence(
                "evidence.spike_level_shift",
                {"step": shift.step, "base": fmt(shift.base), "end": fmt(_end_level(ctx))},
                shift.step,
            )
        )
    led, at_warmup = _grad_norm_led(ctx, found), _at_warmup_end(ctx, found)
    extras = (
        ("evidence.grad_norm_first", led, "grad_step"),
        ("evidence.spikes_at_warmup_end", at_warmup, "warmup_end"),
    )
    evidence += [Evidence(key, numbers, numbers[at]) for key, numbers, at in extras if numbers]
    measurements = {
        **{k: float(v) for k, v in kinds.items()},
        "grad_norm_led": 1.0 if led else 0.0,
        "at_warmup_end": 1.0 if at_warmup else 0.0,
        "first_spike_step": float(found[0].step),
        "tallest_step": float(tallest.step),
    }
    severity = "warning" if shift is not None and len(found) >= p.ld112_min_spikes_warning else "info"
    curve = ctx.train_loss_raw or ctx.train_loss
    return RuleResult(
        [
            Finding(
                "LD112", severity, evidence, found[0].step, None, curve.label if curve else None, measurements
            )
        ]
    )


def _end_level(ctx: Context) -> float:
    curve = ctx.train_loss
    return curve.end_level if curve is not None else float("nan")


def _grad_norm_led(ctx: Context, found: list[Spike]) -> dict | None:
    """The first spike whose loss jump the grad norm preceded (within the spike detector's recovery
    span of steps), as evidence numbers."""
    rows = ctx.rows("grad_norm", "train")
    if len(rows) < ctx.params.spike_window:
        return None
    steps, values = rows["step"].to_numpy(), rows["value"].to_numpy(dtype=float)
    spacing = max(1, int(np.median(np.diff(steps)))) if len(steps) > 1 else 1
    lookback = ctx.params.spike_recover_points * spacing
    for spike in found:
        jump = leading_jump(
            steps, values, spike.step, lookback, ctx.params.spike_window, ctx.params.spike_ratio
        )
        if jump is not None and jump[0] < spike.step:
            return {
                "grad_step": jump[0],
                "ratio": f"{jump[1]:.3g}",
                "loss_step": spike.step,
                "lead": spike.step - jump[0],
            }
    return None


def _at_warmup_end(ctx: Context, found: list[Spike]) -> dict | None:
    """Spikes within one warm-up length after the warm-up ends, where the gradients are largest
    (BLOOM-104B's chronicles), as evidence numbers."""
    lr = ctx.lr
    if lr is None:
        return None
    end = warmup_end(lr.steps, lr.values, ctx.params.ld111_warmup_share)
    if end is None:
        return None
    length = end - int(lr.steps[0])
    near = [s for s in found if end - length // 2 <= s.step <= end + length]
    if not near:
        return None
    return {"count": len(near), "warmup_end": end, "warmup_steps": length}


# ----- LD113 -------------------------------------------------------------------------------------
RESTART_KINDS = ("restart", "rollback", "checkpoint_load")


@rule("LD113", "loss-level-after-restart", curves=("train_loss",))
def level_after_restart(ctx: Context) -> RuleResult | None:
    """The loss settled clearly higher after the job was restarted than it was at the same steps (or
    just) before: the resumed job does not train on what the old one did (another shard, a reset data
    order or tokenizer, a half-written checkpoint), not a property of the curve."""
    p = ctx.params
    rows = ctx.log.series("loss", "train")
    events = ctx.log.events
    restarts = events[events["kind"].isin(RESTART_KINDS)]
    if not len(restarts) or len(rows) < 2 * p.ld113_window + p.ld113_skip_points:
        return None
    findings = []
    curve = ctx.train_loss.label if ctx.train_loss is not None else None
    seen: set[tuple[str, int]] = set()
    for event in restarts.itertuples(index=False):
        shift = _restart_shift(rows, str(event.source), int(event.line), p)
        if shift is None or (str(event.source), shift["first_line"]) in seen:
            continue  # one restart often shows as a resume line and a step that goes back
        seen.add((str(event.source), shift["first_line"]))
        if shift["ratio"] < p.ld113_min_ratio or shift["z"] < p.ld113_min_z:
            continue
        where = LogLine(str(event.source), int(event.line), str(event.detail))
        numbers = {
            "restart": int(event.step),
            "before": fmt(shift["before"]),
            "after": fmt(shift["after"]),
            "ratio": f"{shift['ratio']:.2f}",
            "from_step": shift["from_step"],
            "to_step": shift["to_step"],
            "before_from": shift["before_from"],
            "before_to": shift["before_to"],
        }
        evidence = [Evidence("evidence.level_after_restart", numbers, int(event.step), where)]
        measurements = {"ratio": shift["ratio"], "z": shift["z"]}
        findings.append(
            Finding("LD113", "warning", evidence, int(event.step), shift["to_step"], curve, measurements)
        )
    return RuleResult(findings) if findings else None


def _restart_shift(rows: pd.DataFrame, source: str, line: int, p: Params) -> dict | None:
    """The loss level of the points logged after a restart line (past the first few) against the points
    logged before it up to the same steps: for a rollback, the old job's points at those steps."""
    same = rows[rows["source"] == source]
    values, lines, steps = (
        same["value"].to_numpy(dtype=float),
        same["line"].to_numpy(),
        same["step"].to_numpy(),
    )
    after_at = np.flatnonzero(lines >= line)  # a step that went back is dated at its own row
    before_at = np.flatnonzero(lines < line)
    window, skip = p.ld113_window, p.ld113_skip_points
    if len(after_at) < skip + window or len(before_at) < window:
        return None
    if steps[after_at[0]] <= steps[before_at].min():
        return None  # counted again from the run's first step: a new run from scratch, not a resume
    after_at = after_at[skip : skip + window]
    last_step = steps[after_at[-1]]
    before_at = before_at[steps[before_at] <= last_step][-window:]
    after, before = values[after_at], values[before_at]
    both = np.concatenate([after, before])
    if len(before) < window or not (np.all(np.isfinite(both)) and np.all(both > 0)):
        return None  # non-finite or non-positive losses have no level to compare on a log scale
    log_before = np.log(before)
    centre = float(np.median(log_before))
    spread = max(1.4826 * float(np.median(np.abs(log_before - centre))), 1e-3)
    gap = float(np.median(np.log(after))) - centre
    return {
        "first_line": int(lines[after_at[0]]),
        "before": float(np.exp(centre)),
        "after": float(np.exp(centre + gap)),
        "ratio": float(np.exp(gap)),
        "z": gap / spread,
        "from_step": int(steps[after_at[0]]),
        "to_step": int(last_step),
        "before_from": int(steps[before_at[0]]),
        "before_to": int(steps[before_at[-1]]),
    }


# ----- LD211 -------------------------------------------------------------------------------------
def scale_history(ctx: Context) -> LossScaleHistory | None:
    """The loss scale as logged (Megatron, fairseq), else as the scaler's overflow lines set it
    (DeepSpeed's `reducing to N`, Apex, fairseq notes: the events table)."""
    rows = ctx.rows("loss_scale", "train")
    if len(rows) >= 2:
        return loss_scale_history(rows["step"].to_numpy(), rows["value"].to_numpy(dtype=float))
    events = ctx.log.events
    scaled = events[events["kind"].isin(["overflow", "loss_scale"]) & events["value"].notna()]
    if len(scaled) < 2:
        return None
    return loss_scale_history(scaled["step"].to_numpy(), scaled["value"].to_numpy(dtype=float))


def _skipped(ctx: Context) -> tuple[int, int] | None:
    """(skipped steps, steps) from a skipped-iterations counter: Megatron's counts per logging window,
    DeepSpeed's running total (`skipped=`)."""
    for metric, running in (("skipped_iters", False), ("skipped_steps", True)):
        rows = ctx.rows(metric, "train")
        if len(rows) < 2:
            continue
        steps, values = rows["step"].to_numpy(), rows["value"].to_numpy(dtype=float)
        total = int(steps[-1] - steps[0])
        skipped = values[-1] - values[0] if running else np.nansum(values[1:])
        return int(skipped), max(total, 1)
    return None


def _at_floor(ctx: Context) -> Evidence | None:
    """The scaler's own fatal line: the scale is at its minimum and the run stopped."""
    events = ctx.log.events
    fatal = events[
        (events["kind"] == "fatal") & events["detail"].str.contains("minimum", case=False, na=False)
    ]
    if not len(fatal):
        return None
    first = fatal.iloc[0]
    where = LogLine(str(first["source"]), int(first["line"]), str(first["detail"]))
    return Evidence("evidence.loss_scale_fatal", {"step": int(first["step"])}, int(first["step"]), where)


@rule("LD211", "loss-scale-collapse", curves=("train_loss",), cause="fp16_overflow")
def loss_scale_collapse(ctx: Context) -> RuleResult | None:
    """The fp16 dynamic loss scale slid far below its peak, hit its floor, or skipped many steps: the
    gradients overflow fp16 again and again, the updates are skipped or made at a useless scale."""
    s, p = _symptom(ctx), ctx.params
    if s not in (*UNSTABLE, *STALLED):
        return None
    history = scale_history(ctx)
    skipped = _skipped(ctx)
    evidence: list[Evidence] = []
    score = 0.0
    fatal = _at_floor(ctx)
    if fatal is not None:
        score = p.ld211_score_floor
        evidence.append(fatal)
    if history is not None:
        if history.minimum <= p.ld211_scale_floor and fatal is None:
            score = max(score, p.ld211_score_floor)
            evidence.append(Evidence("evidence.loss_scale_floor", {"value": fmt(history.minimum)}))
        if history.slide_doublings >= p.ld211_slide_doublings:
            score = max(score, p.ld211_score_slide)
            evidence.append(
                Evidence(
                    "evidence.loss_scale_slide",
                    {
                        "peak": fmt(history.peak),
                        "peak_step": history.peak_step,
                        "end": fmt(history.end),
                        "end_step": history.end_step,
                        "halvings": history.halvings,
                    },
                    history.peak_step,
                )
            )
    if skipped is not None and skipped[0] >= p.ld211_skipped_share * skipped[1]:
        score = max(score, p.ld211_score_skipped)
        evidence.append(Evidence("evidence.skipped_steps", {"skipped": skipped[0], "steps": skipped[1]}))
    if not evidence:
        return None
    if s in BLOW_UP:
        score += p.ld211_bonus_blowup
    fix_list = [
        fixes.bf16(ctx),
        fixes.loss_scale_settings(ctx),
        *fixes.change_lr(ctx, 1 / p.lr_cut, "fixes.lower_lr"),
        fixes.clip_gradients(ctx),
    ]
    if history is not None and history.slide_doublings >= p.ld211_slide_doublings:
        fix_list.append(fixes.rollback_scale(history.peak_step))
    return _cause(ctx, "fp16_overflow", "LD211", score, evidence, fix_list, [])


# ----- LD313 -------------------------------------------------------------------------------------
@rule("LD313", "adam-beta2-slow-for-unstable-run", meta=("adam_beta2",))
def adam_beta2_slow(ctx: Context) -> RuleResult | None:
    """Adam with beta2 0.999 on a run that spikes, oscillates or blows up: its second-moment estimate
    averages ~1,000 steps, too slow to follow a sudden gradient growth (beta2 0.95 steadied the
    spiky loss of large models: BLOOM-104B, OPT)."""
    beta2 = ctx.meta.adam_beta2
    assert beta2 is not None
    if beta2 < ctx.params.ld313_beta2_slow or not set(UNSTABLE) & set(ctx.symptoms):
        return None
    evidence = [
        Evidence(
            "evidence.adam_beta2",
            {"beta2": f"{beta2:g}", "window": round(1 / (1 - beta2)) if beta2 < 1 else "inf"},
            quote=ctx.quote("adam_beta2"),
        )
    ]
    return RuleResult([Finding("LD313", "warning", evidence)])
