"""LD103-LD104: the loss stalls: flat from the start, or a plateau at a poor level early.

Texts (title, why, example, fix) live in `i18n/rules.toml` under `rules.<id>`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from diagnostics.context import Context
from diagnostics.features import Curve, LrDecay, lr_decays
from diagnostics.model import Evidence, Finding
from diagnostics.registry import RuleResult, rule
from diagnostics.rules._common import (
    QUALITY_METRICS,
    accuracy_at_chance_evidence,
    chance_evidence,
    fmt,
    resumed_late,
    symptom_result,
)


def _progress_reference(ctx: Context, curve: Curve) -> float:
    """Progress is measured against ln(C) when the run starts at chance, else against the start."""
    lnc = ctx.lnc
    if lnc is not None and ctx.at_chance(curve.start_level):
        return lnc
    return abs(curve.start_level) or 1.0


def _barely_dropped(ctx: Context, drop: float, ref: float) -> bool:
    """A drop (as a share of `ref`) too small to count as progress: the flat runs' threshold."""
    return drop < (ctx.params.flat_drop_lnc if ref == ctx.lnc else ctx.params.flat_drop)


class LastLrCut(NamedTuple):
    """The logged lr's last decay, placed on the loss curve's steps."""

    decay: LrDecay  # its step, the lr before and after, where it lies in the loss curve (0..1)
    final_over_peak: float  # the final lr / the peak lr


def last_lr_cut(ctx: Context, curve: Curve) -> LastLrCut | None:
    """The last decay of the logged lr (a fall below `ld104_lr_cut_factor` x the value before it),
    placed on the loss curve's steps; None without a logged lr or a decay."""
    lr = ctx.lr
    if lr is None or len(curve.steps) < 2:
        return None
    ok = np.isfinite(lr.values) & (lr.values > 0)
    v, steps = lr.values[ok], lr.steps[ok]
    if len(v) < 3:
        return None
    span = (float(curve.steps[0]), float(curve.steps[-1]))
    decays = lr_decays(steps, v, ctx.params.ld104_lr_cut_factor, span)
    if not decays:
        return None
    return LastLrCut(decays[-1], float(v[-1] / v.max()))


# ----- LD103 -------------------------------------------------------------------------------------
@rule("LD103", "loss-flat-from-start", curves=("train_loss",), symptom="flat")
def loss_flat(ctx: Context) -> RuleResult | None:
    """No real progress from the start: the best level is within a few percent of the first."""
    p, curve = ctx.params, ctx.train_loss
    assert curve is not None
    if len(curve.by) < p.ld103_min_buckets:
        return _at_chance_after_epochs(ctx, curve)
    start, end = curve.start_level, curve.end_level
    ref = _progress_reference(ctx, curve)
    drop = (start - curve.min_level) / ref
    barely_dropped = _barely_dropped(ctx, drop, ref)
    lnc = ctx.lnc
    learned_already = lnc is not None and start < p.ld103_learned_lnc_level * lnc
    # A classifier whose best loss never got clearly below ln(C), and that ends at or above it (worse
    # than guessing), has learned nothing, wherever it began (e.g. a blow-up in the first steps that
    # then settles, or a collapse onto uniform predictions).
    no_better_than_chance = ctx.at_chance(end) or (lnc is not None and end > lnc)
    never_beat_chance = (
        lnc is not None and no_better_than_chance and curve.min_level >= (1 - p.flat_drop_lnc) * lnc
    )
    # Whatever the training loss did (a blow-up that settles, a summed loss that shrinks), an evaluation
    # that never got above chance learned nothing: unless training memorised far below ln(C) (LD107).
    trained = lnc is not None and end < p.ld107_trained_lnc_level * lnc
    # An evaluation whose accuracy never moved says the same without C, unless the loss fell far.
    frozen = ctx.eval_accuracy_frozen() if drop < p.ld103_frozen_eval_drop else None
    # An evaluation accuracy that barely rose from a low first value while training learned no more
    # says the same whatever the loss did: a blow-up at the start that settles "falls" a long way.
    stalled = _eval_stalled(ctx) if frozen is None else None
    never_beat = ctx.eval_never_beat_chance()
    eval_at_chance = (
        p.ld103_eval_chance_is_flat
        and (never_beat or frozen is not None or stalled is not None)
        and not trained
    )
    if (not barely_dropped or learned_already) and not (never_beat_chance or eval_at_chance):
        return None
    if resumed_late(ctx, curve) and not (no_better_than_chance or eval_at_chance):
        return None
    long_curve = len(curve.by) >= p.ld103_trend_buckets
    steady = long_curve and curve.tau < p.ld103_steady_tau and drop >= p.ld103_steady_min_drop
    if not (no_better_than_chance or eval_at_chance) and steady:
        return None  # a small but steady decrease is slow progress (e.g. fine-tuning), not a flat run
    if never_beat_chance and not barely_dropped:  # it moved (a blow-up that settled), never below ln(C)
        assert ctx.classes is not None and lnc is not None
        values = {"best": fmt(curve.min_level), "end": fmt(end), "c": ctx.classes[0], "lnc": round(lnc, 4)}
        evidence = [Evidence("evidence.never_below_chance", values, int(curve.steps[0]))]
    elif eval_at_chance and not barely_dropped:
        evidence = []  # the loss fell a long way: the evaluation's evidence below is the reason
    else:
        values = {"start": fmt(start), "end": fmt(end), "drop_pct": round(100 * drop, 1)}
        values["points"] = len(curve)
        evidence = [Evidence("evidence.no_progress", values, int(curve.steps[0]))]
    measurements = {
        "drop": drop,
        "at_chance": 1.0 if no_better_than_chance else 0.0,
        "eval_at_chance": float(eval_at_chance),
    }
    if eval_at_chance:
        if never_beat:
            evidence.append(_eval_chance_evidence(ctx))
        elif frozen is not None:
            evidence.append(_frozen_evidence(frozen))
        else:
            assert stalled is not None
            evidence.append(Evidence("evidence.eval_stalled", stalled))
    improved = None if no_better_than_chance or eval_at_chance else _evaluation_improved(ctx)
    if improved is not None:
        # The net learned: a flat training loss under heavy augmentation or warm-up is not a stuck run.
        evidence.append(Evidence("evidence.eval_improved", improved))
        return RuleResult(
            [Finding("LD103", "info", evidence, int(curve.steps[0]), None, curve.label, measurements)]
        )
    if ctx.at_chance(end):
        evidence.append(chance_evidence(ctx, end))
    confidence = (
        p.ld103_confidence_at_chance
        if no_better_than_chance or eval_at_chance
        else p.ld103_confidence
        if long_curve
        else p.ld103_confidence_short
    )
    return symptom_result(
        ctx, "LD103", "flat", confidence, curve, int(curve.steps[0]), evidence, measurements=measurements
    )


def _at_chance_after_epochs(ctx: Context, curve: Curve) -> RuleResult | None:
    """Too few points for a shape, but not for a level: a loss at ln(C) with the accuracy at chance,
    logged after whole epochs of training (not the untrained net's first loss), learned nothing."""
    if not ctx.logged_per_epoch() or not ctx.at_chance(curve.end_level):
        return None
    at_chance = accuracy_at_chance_evidence(ctx)
    if at_chance is None:
        return None
    evidence = [chance_evidence(ctx, curve.end_level), at_chance]
    measurements = {"drop": 0.0, "at_chance": 1.0, "eval_at_chance": 1.0}
    step = int(curve.steps[0])
    confidence = ctx.params.ld103_confidence_short
    return symptom_result(ctx, "LD103", "flat", confidence, curve, step, evidence, measurements=measurements)


def _eval_stalled(ctx: Context) -> dict | None:
    """The evaluation accuracy gained less than `eval_gain` over its first value at
    `frozen_accuracy_evals` or more evaluations and never reached `ld103_stalled_eval_level`, while the
    evaluation loss ended within `ld103_stalled_eval_loss_ratio` x the training loss (training did not
    pull away from the evaluation): the model did not learn, whatever its loss did."""
    p, accuracy = ctx.params, ctx.eval_accuracy()
    train, val = ctx.train_loss, ctx.val_loss
    if p.ld103_stalled_eval_level <= 0 or accuracy is None or train is None or val is None:
        return None
    values, scale = accuracy
    best = float(values.max())
    if len(values) < p.frozen_accuracy_evals or best >= p.ld103_stalled_eval_level * scale:
        return None
    if best - values[0] >= p.eval_gain * scale:
        return None
    train_end, val_end = train.end_level, val.end_level
    if not (np.isfinite(train_end) and np.isfinite(val_end) and train_end > 0):
        return None
    if val_end > p.ld103_stalled_eval_loss_ratio * train_end:
        return None
    return {"first": fmt(float(values[0])), "best": fmt(best), "evals": len(values)}


def evaluation_quality(ctx: Context) -> tuple[str, bool, np.ndarray] | None:
    """The first evaluation quality metric with two or more finite values: (metric, higher is better,
    values); None when the log has none."""
    for split in ("val", "test"):
        for metric, higher_is_better in QUALITY_METRICS:
            values = ctx.rows(metric, split)["value"].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if len(values) >= 2:
                return metric, higher_is_better, values
    return None


def _evaluation_improved(ctx: Context) -> dict | None:
    """The evaluation's quality metric got better by at least `eval_gain` (of 1, or of 100) from its
    first value (None otherwise, or when no quality metric is logged)."""
    quality = evaluation_quality(ctx)
    return _improvement(ctx, quality) if quality is not None else None


def _improvement(ctx: Context, quality: tuple[str, bool, np.ndarray]) -> dict | None:
    """`_evaluation_improved` of a quality metric already read."""
    metric, higher_is_better, values = quality
    best = float(values.max() if higher_is_better else values.min())
    scale = 100.0 if values.max() > 1.5 else 1.0
    gain = (best - values[0]) if higher_is_better else (values[0] - best)
    if gain >= ctx.params.eval_gain * scale:
        return {"metric": metric, "first": fmt(float(values[0])), "best": fmt(best)}
    return None


def made_progress(ctx: Context, curve: Curve) -> bool:
    """The run got somewhere: its loss fell by `flat_drop` of its start and, when the log has an
    evaluation quality metric, that metric improved too (a summed loss that settles after blowing up
    falls a long way without the model learning anything)."""
    if curve.drop() < ctx.params.flat_drop:
        return False
    quality = evaluation_quality(ctx)
    return quality is None or _improvement(ctx, quality) is not None


# ----- LD104 -------------------------------------------------------------------------------------
def _frozen_evidence(frozen: tuple[float, int]) -> Evidence:
    """The evaluation accuracy never moved (`Context.eval_accuracy_frozen`)."""
    return Evidence("evidence.eval_frozen", {"accuracy": fmt(frozen[0]), "evals": frozen[1]})


def _eval_chance_evidence(ctx: Context) -> Evidence:
    """The evaluation's accuracy never above twice chance (`Context.eval_never_beat_chance`)."""
    assert ctx.classes is not None
    c = ctx.classes[0]
    values, scale = ctx.eval_accuracy()
    params = {"accuracy": fmt(float(values.max())), "c": c, "chance": fmt(scale / c)}
    return Evidence("evidence.accuracy_at_chance", params)


@rule("LD104", "loss-plateaus-early", curves=("train_loss",), symptom="plateau")
def loss_plateau(ctx: Context) -> RuleResult | None:
    """Some progress, then stuck at a poor level early in the run."""
    p, curve = ctx.params, ctx.train_loss
    assert curve is not None
    by, bx = curve.by, curve.bx
    if len(by) < p.ld104_min_buckets or resumed_late(ctx, curve):
        return None
    start, end = curve.start_level, curve.end_level
    ref = _progress_reference(ctx, curve)
    drop = (start - curve.min_level) / ref
    lnc = ctx.lnc
    progress = (start - end) / ref
    if _barely_dropped(ctx, drop, ref) or progress <= 0:
        return None  # that is flat (or ends worse than it started), not a plateau
    if lnc is not None and end > (1 + p.lnc_tolerance) * lnc:
        return None  # worse than guessing: a blow-up or swings (LD102/LD105), not a plateau
    if ctx.meta.pretrained and lnc is None:
        return None
    # Without ln(C) the level cannot be judged, only the size of the drop: demand a smaller one.
    # An evaluation accuracy that never moved says the level is poor without it.
    frozen = ctx.eval_accuracy_frozen()
    poor = frozen is not None or (
        end > p.plateau_lnc_level * lnc
        if lnc is not None
        else drop < p.plateau_max_drop * p.ld104_no_lnc_drop_share
    )
    # Windows that must show no gain, each with the level it counts as poor: the last half of the run;
    # the run since its last lr decay (a decay that ends the progress at a poor level); the run since an
    # lr cut by 100x in its first third (no schedule cuts that early; a drop under 30% is poor then);
    # and, for a classifier still above half of ln(C), everything after the first 20% of the run.
    windows = [(1 - p.plateau_stall_fraction, poor, "half")]
    cut = last_lr_cut(ctx, curve)
    early = (
        cut is not None
        and cut.decay.fraction_of_run <= p.ld104_early_cut_position
        and cut.final_over_peak <= p.ld104_early_cut_ratio
    )
    if cut is not None and cut.decay.fraction_of_run <= 1 - p.plateau_stall_fraction / 2:
        windows.append(
            (
                cut.decay.fraction_of_run + p.ld104_after_cut_margin,
                poor or (early and drop < p.plateau_max_drop),
                "lr_cut",
            )
        )
    if lnc is not None:
        windows.append((p.plateau_long_from, end > p.plateau_long_lnc_level * lnc, "long"))
    # The first poor window without gain; the added windows must not have risen either (a loss that
    # learned and then fell back onto ln(C) did not stall there, it collapsed).
    gains = [((curve.level_at(frac) - end) / ref, kind) for frac, is_poor, kind in windows if is_poor]
    # An evaluation whose answers never changed learned nothing, though its loss still creeps down.
    stall_gain = max(p.plateau_stall_gain, p.ld104_frozen_stall_gain if frozen is not None else 0.0)
    stalls = [
        (g, kind) for g, kind in gains if g < stall_gain and (kind == "half" or g > -p.plateau_stall_gain)
    ]
    if not stalls:
        return None
    gain, kind = stalls[0]
    # A steady but tiny decrease is slow progress when the level cannot be judged (a fine-tune); a
    # classifier still near ln(C) that gains under 2% of ln(C) in half the run has stalled all the same,
    # and so has a run whose lr was cut early (its slow progress is the symptom).
    steady = curve.tau_between(1 - p.plateau_stall_fraction, 1.0) < p.ld104_steady_tau
    excused = steady and lnc is None and not early and frozen is None
    if gain >= stall_gain or excused:
        return None
    reached = np.flatnonzero(by <= curve.min_level + p.ld104_onset_share * (start - curve.min_level))
    onset = int(bx[reached[0]]) if len(reached) else int(bx[len(bx) // 2])
    evidence = [
        Evidence(
            "evidence.stalled",
            {
                "start": fmt(start),
                "end": fmt(end),
                "drop_pct": round(100 * drop, 1),
                "step": onset,
                "gain_pct": round(100 * gain, 2),
            },
            onset,
        )
    ]
    after_decay = kind == "lr_cut" and cut is not None
    if after_decay:
        # The progress ended with an lr decay: the lr after it is too small for what is left to learn.
        assert cut is not None
        decay = cut.decay
        params = {"step": decay.step, "before": fmt(decay.before), "after": fmt(decay.after)}
        evidence.append(Evidence("evidence.stalled_after_lr_decay", params, decay.step))
    if frozen is not None:
        evidence.append(_frozen_evidence(frozen))
    if lnc is not None and ctx.classes:
        evidence.append(
            Evidence(
                "evidence.level_vs_chance",
                {"end": fmt(end), "c": ctx.classes[0], "lnc": round(lnc, 4), "pct": round(100 * end / lnc)},
            )
        )
    confidence = p.ld104_confidence_lnc if lnc is not None else p.ld104_confidence
    measurements = {"drop": drop, "gain": gain, "stalled_after_lr_decay": 1.0 if after_decay else 0.0}
    return symptom_result(
        ctx,
        "LD104",
        "plateau",
        confidence,
        curve,
        onset,
        evidence,
        severity="warning",
        measurements=measurements,
    )
