"""LD106-LD107: the evaluation parts from training: overfitting, or a gap from early on.

Texts (title, why, example, fix) live in `i18n/rules.toml` under `rules.<id>`.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from diagnostics.context import Context
from diagnostics.features import Curve, kendall
from diagnostics.model import Evidence, Finding
from diagnostics.params import Params
from diagnostics.registry import RuleResult, rule
from diagnostics.rules._common import QUALITY_METRICS, fmt, median3, symptom_result, train_at


def _past_best(
    x: np.ndarray, y: np.ndarray, p: Params, start: float = -np.inf
) -> tuple[int, float, float] | None:
    """Where a lower-is-better evaluation series passes its best and ends `overfit_rise` worse:
    (index of the best, the best, the end level), or None. `start` is where the loss began when that
    is known apart from the series (the training loss's first level, for a validation loss)."""
    smooth = median3(y)
    i_best = int(np.argmin(smooth))
    low, end = float(smooth[i_best]), float(np.median(y[-max(1, len(y) // p.eval_tail_parts) :]))
    rise = (end - low) / max(abs(low), 1e-12)
    # A small rise counts when it is steady over many evaluations (a trend, not noise).
    after = y[i_best:]
    steady = len(after) >= p.overfit_steady_points and kendall(after) >= p.overfit_steady_tau
    if i_best >= len(y) - 1 or rise < (p.overfit_steady_rise if steady else p.overfit_rise):
        return None
    # Judged against how far the loss came down: a loss that fell from 2.3 to 0.001 and ends at 0.0016
    # rose 60 % of its minimum but 0.03 % of what it learned (noise around a fitted model, not overfitting).
    # The fall counts from where training began: a first evaluation after an epoch has most of it behind.
    if end - low < p.overfit_rise_of_fall * (max(float(smooth[0]), start) - low):
        return None
    # A minimum reached by a long fall is one the net learned its way to, and a rise from it that ends
    # overfit_rise above it is not noise, however early the minimum and however flat the level after
    # the rise (a tiny training set memorised within the first epochs). For a quality metric (passed
    # negated when higher is better) the same share is its relative gain to its best.
    if 0 < p.ld106_learned_fall <= validation_fall(start, y):
        return i_best, low, end
    # Best at the first evaluations (e.g. a resumed run): worse ever since, steadily, or twice as much
    # as the threshold with a moderate trend.
    tau = kendall(y)
    worse_from_start = tau >= p.overfit_rising_tau or (
        tau >= p.ld106_moderate_tau and rise >= p.ld106_moderate_rise_multiple * p.overfit_rise
    )
    if (x[i_best] - x[0]) < p.overfit_min_position * (x[-1] - x[0]) and not worse_from_start:
        return None
    if len(y) - i_best >= p.ld106_after_min_points and kendall(y[i_best:]) < p.ld106_after_tau:
        return None
    return i_best, low, end


def never_generalised(ctx: Context, steps: np.ndarray, val: np.ndarray) -> bool:
    """The validation loss (3-point median) never fell by `overfit_min_improvement` of where it began
    (its first evaluation or the training loss's start, the higher): overfitting generalises first, so
    a validation loss that rises without having come down was apart from training from the start.
    Judged only when the first evaluation saw the net before it learned (training had not yet fallen
    by that share: a fine-tune evaluated after it memorised may have generalised unseen) and the log
    holds one session (the last of several may start from the weights of the one before)."""
    p, train = ctx.params, ctx.train_loss
    if p.overfit_min_improvement <= 0 or not len(val) or train is None or train.first_finite is None:
        return False
    if ctx.log.metrics["segment"].nunique() > 1:
        return False
    first = train.first_finite
    then = train_at(ctx, steps[:1])
    if then is None or first - float(then[0]) > p.overfit_min_improvement * abs(first):
        return False
    return validation_fall(first, val) < p.overfit_min_improvement


def validation_fall(train_first: float, val: np.ndarray) -> float:
    """How far the validation loss (3-point median) came down, as a share of where it began: its first
    evaluation or the training loss's first value, the higher."""
    smooth = median3(val)
    began = max(float(smooth[0]), train_first)
    return (began - float(smooth.min())) / max(abs(began), 1e-12)


# ----- LD106 -------------------------------------------------------------------------------------
@rule("LD106", "val-loss-rises", curves=("train_loss",), symptom="overfitting")
def val_loss_rises(ctx: Context) -> RuleResult | None:
    """Validation loss passes a minimum and rises while the training loss keeps falling (without a
    validation loss: the evaluation's accuracy, mAP or WER passes its best and gets worse)."""
    p, val = ctx.params, ctx.val_loss
    if ctx.eval_never_beat_chance():
        return None  # overfitting generalises first; an evaluation that never worked is LD107's
    ok = None if val is None else np.isfinite(val.values) & ctx.before_breakdown(val.steps)
    if val is None or ok is None or np.count_nonzero(ok) < p.overfit_min_points:
        return _quality_worsens(ctx)  # also when the validation loss died with the training loss
    vx, vy = val.steps[ok], val.values[ok]
    first = ctx.train_loss.first_finite if ctx.train_loss else None
    start = first if first is not None else -np.inf  # the untrained loss: the run's first point
    found = _past_best(vx, vy, p, start)
    if found is None:
        return None
    i_min, low, end = found
    if never_generalised(ctx, vx, vy):
        return None  # a gap from the start, LD107's (e.g. a charLM on 24 sequences)
    base = max(abs(low), 1e-12)
    train = train_at(ctx, np.array([vx[i_min], vx[-1]]))
    if train is None or not train[1] < train[0]:
        return None
    onset = int(vx[i_min])
    quality_holds = _quality_improved_since(ctx, onset)
    evidence = [
        Evidence(
            "evidence.val_rises",
            {
                "min": fmt(low),
                "step": onset,
                "end": fmt(end),
                "rise_pct": round(100 * (end - low) / base),
                "train_then": fmt(float(train[0])),
                "train_end": fmt(float(train[1])),
            },
            onset,
            ctx.curve_quote(val, int(np.flatnonzero(ok)[i_min])),
        )
    ]
    strong = (end - low) > p.ld106_strong_rise_multiple * p.overfit_rise * base
    confidence = p.ld106_confidence_strong if strong else p.ld106_confidence
    measurements = {"rise": (end - low) / base, "quality_holds": 1.0 if quality_holds is not None else 0.0}
    if quality_holds is not None:
        evidence.append(Evidence("evidence.val_accuracy_holds", quality_holds))
        # Loss up while the accuracy (or error rate) still improves: over-confident predictions, not a
        # worse model. Loss up with the accuracy no better: the extra training only memorised.
        return RuleResult([Finding("LD106", "info", evidence, onset, None, val.label, measurements)])
    return symptom_result(
        ctx, "LD106", "overfitting", confidence, val, onset, evidence, "warning", measurements
    )


def _quality_worsens(ctx: Context) -> RuleResult | None:
    """Overfitting seen in the evaluation's quality metric when no validation loss is logged."""
    p = ctx.params
    for split in ("val", "test"):
        for metric, higher_is_better in QUALITY_METRICS:
            rows = ctx.rows(metric, split)
            values = rows["value"].to_numpy(dtype=float)
            rows = rows[np.isfinite(values) & ctx.before_breakdown(rows["step"].to_numpy())]
            if len(rows) < p.overfit_min_points:
                continue
            x, values = rows["step"].to_numpy(), rows["value"].to_numpy(dtype=float)
            found = _past_best(x, -values if higher_is_better else values, p)
            train = train_at(ctx, np.array([x[found[0]], x[-1]])) if found else None
            if found is None or train is None or not train[1] < train[0]:
                return None
            i_best = found[0]
            best, end = (
                float(median3(values)[i_best]),
                float(np.median(values[-max(1, len(values) // p.eval_tail_parts) :])),
            )
            quality = Curve.from_rows(rows, f"{split}/{metric}", p)
            fall = abs(end - best) / max(abs(best), 1e-12)
            evidence = [
                Evidence(
                    "evidence.val_quality_falls",
                    {
                        "metric": metric,
                        "best": fmt(best),
                        "step": int(x[i_best]),
                        "end": fmt(end),
                        "fall_pct": round(100 * abs(end - best) / max(abs(best), 1e-12)),
                        "train_then": fmt(float(train[0])),
                        "train_end": fmt(float(train[1])),
                    },
                    int(x[i_best]),
                    ctx.curve_quote(quality, i_best),
                )
            ]
            return symptom_result(
                ctx,
                "LD106",
                "overfitting",
                p.ld106_confidence_quality,
                quality,
                int(x[i_best]),
                evidence,
                "warning",
                {"quality_fall": fall, "quality_holds": 0.0},
            )
    return None


def _quality_improved_since(ctx: Context, step: int) -> dict | None:
    """The evaluation's quality metric (accuracy, mAP, or an error rate such as WER) ends at its best,
    more than `ld106_quality_tolerance` (of 1, or 100) better than it was at `step`, with a rising trend
    since (not a wobble around a flat level); None otherwise, or when none is logged."""
    p = ctx.params
    for split in ("val", "test"):
        for metric, higher_is_better in QUALITY_METRICS:
            rows = ctx.rows(metric, split)
            rows = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
            if len(rows) < p.ld106_quality_min_points:
                continue
            steps, values = rows["step"].to_numpy(), median3(rows["value"].to_numpy(dtype=float))
            then = float(values[min(int(np.searchsorted(steps, step)), len(values) - 1)])
            last = float(values[-1])
            tolerance = p.ld106_quality_tolerance * (100.0 if values.max() > 1.5 else 1.0)
            gain = (last - then) if higher_is_better else (then - last)
            below_best = (values.max() - last) if higher_is_better else (last - values.min())
            since = values[steps >= step]
            trend = kendall(since if higher_is_better else -since)
            if gain > tolerance and below_best <= tolerance and trend >= p.ld106_quality_tau:
                return {"metric": metric, "then": fmt(then), "last": fmt(last), "step": step}
            return None
    return None


# ----- LD107 -------------------------------------------------------------------------------------
class EvalPoints(NamedTuple):
    """The evaluations LD107 judges (after step 0, finite) with the training loss at their steps."""

    steps: np.ndarray
    val: np.ndarray
    train: np.ndarray


class LateGap(NamedTuple):
    """Where the evaluation ends above training, on the scale of the first loss logged."""

    late: int  # the late part is the last `late` evaluations
    val: float  # median of the late evaluation losses
    train: float  # median of the training loss at those steps
    first: float  # the first loss logged (training or evaluation, the larger)

    @property
    def height(self) -> float:
        return (self.val - self.train) / self.first


def eval_points(ctx: Context) -> EvalPoints | None:
    """None without `gap_min_points` evaluations, or with a validation loss not above 0 or a negative
    training loss (no ratios)."""
    p, val = ctx.params, ctx.val_loss
    if val is None or ctx.train_loss is None:
        return None
    ok = np.isfinite(val.values) & (val.steps > 0)
    vx, vy = val.steps[ok], val.values[ok]
    if len(vy) < p.gap_min_points:
        return None
    train = train_at(ctx, vx)
    if train is None or np.any(train < 0) or np.any(vy <= 0):
        return None
    if np.any(train == 0):
        # A loss printed as 0 (`Loss: 0.0000`) is below the printed precision: half the smallest
        # positive training loss logged, so that the ratios stay finite.
        logged = ctx.train_loss.values
        positive = logged[np.isfinite(logged) & (logged > 0)]
        if not len(positive):
            return None
        train = np.maximum(train, float(positive.min()) / 2)
    return EvalPoints(vx, vy, train)


def late_gap(ctx: Context, points: EvalPoints) -> LateGap:
    """Near zero training loss, relative progress saturates: what is left is how far the evaluation stays
    above training, on the scale of the first loss logged (a bucket median of a long run is already low)."""
    train_curve = ctx.train_loss
    assert train_curve is not None
    late = max(1, len(points.val) // ctx.params.ld107_early_parts)
    first = max(float(train_curve.trend_values[0]), float(points.val[0]))
    return LateGap(late, float(np.median(points.val[-late:])), float(np.median(points.train[-late:])), first)


@rule("LD107", "eval-loss-far-from-train", curves=("train_loss", "val_loss"), symptom="eval_gap")
def eval_gap(ctx: Context) -> RuleResult | None:
    """Validation loss far above training from early on, or far more erratic than training."""
    p, val = ctx.params, ctx.val_loss
    assert val is not None
    points = eval_points(ctx)
    if points is None:
        return None
    vx, vy, train = points
    if float(np.median(vy - train)) <= p.ld107_min_gap:
        return None  # both losses near zero (or val below train): the evaluation works
    ratio = vy / train
    early = ratio[: max(1, len(ratio) // p.ld107_early_parts)]
    # A validation loss that never came down was apart from training from the start, however close
    # the first evaluations were: overfitting generalises first.
    apart_from_start = never_generalised(ctx, vx, vy)
    far = float(np.median(ratio)) > p.gap_ratio and (
        float(np.median(early)) > p.ld107_early_ratio or apart_from_start
    )
    # A validation loss that rises steadily is overfitting's shape (LD106 judges it): once the training
    # set is memorised, any train/val ratio is huge without the evaluation being broken. Unless the
    # evaluated model never beat chance (never worked), or never generalised.
    never_worked = ctx.eval_never_beat_chance()
    far = far and (kendall(vy) < p.overfit_rising_tau or never_worked or apart_from_start)
    train_curve = ctx.train_loss
    assert train_curve is not None
    # Training far below ln(C) while the evaluation never beat chance is a gap however late it opened.
    if never_worked and ctx.lnc is not None and train_curve.end_level < p.ld107_trained_lnc_level * ctx.lnc:
        far = True
    val_var = float(np.median(np.abs(np.diff(np.log(vy))))) if len(vy) > 1 else 0.0
    train_var = float(np.median(np.abs(np.diff(np.log(train))))) if len(train) > 1 else 0.0
    erratic = val_var > p.ld107_min_val_variation and val_var > p.gap_erratic_ratio * max(
        train_var, p.ld107_train_variation_floor
    )
    # Validation that improves about as much as training is a generalisation gap, not a broken eval.
    train_progress = 1 - train_curve.end_level / train_curve.start_level if train_curve.start_level > 0 else 0
    gap = late_gap(ctx, points)
    val_progress = 1 - gap.val / float(vy[0])
    wide = p.gap_min_height > 0 and gap.height > p.gap_min_height
    # A validation loss that never came down and ends far above training is a gap however small the
    # ratio over the whole run (the first evaluations, before training learned, sit at 1): LD106 leaves
    # exactly these runs to this rule, so judging them by the whole-run ratio would leave them to none.
    far = far or (apart_from_start and wide)
    lagging = val_progress < p.gap_progress * train_progress or wide
    if not (far or erratic) or not lagging:
        return None
    evidence = [
        Evidence(
            "evidence.val_vs_train",
            {
                "ratio": round(float(np.median(ratio)), 1),
                "early_ratio": round(float(np.median(early)), 1),
                "val": fmt(float(np.median(vy))),
                "train": fmt(float(np.median(train))),
            },
            int(vx[0]),
        )
    ]
    if wide:
        evidence.append(
            Evidence(
                "evidence.val_gap_height",
                {
                    "val": fmt(gap.val),
                    "train": fmt(gap.train),
                    "pct": round(100 * gap.height),
                    "first": fmt(gap.first),
                },
                int(vx[-gap.late]),
            )
        )
    if erratic:
        evidence.append(
            Evidence(
                "evidence.val_erratic",
                {"val_pct": round(100 * val_var), "train_pct": round(100 * train_var, 1)},
            )
        )
    confidence = p.ld107_confidence_both if far and erratic else p.ld107_confidence
    measurements = {
        "ratio": float(np.median(ratio)),
        "far": 1.0 if far else 0.0,
        "height": gap.height,
        "val_erratic": 1.0 if erratic else 0.0,
    }
    return symptom_result(
        ctx, "LD107", "eval_gap", confidence, val, int(vx[0]), evidence, "warning", measurements
    )


# ----- LD114 -------------------------------------------------------------------------------------
@rule("LD114", "train-loss-multiple-of-eval-loss", curves=("train_loss", "val_loss"))
def train_loss_multiple_of_eval(ctx: Context) -> RuleResult | None:
    """The training loss is many times the evaluation loss at the same steps: it is summed over the
    batch while the evaluation averages (dropout and augmentation keep the two within ~2x)."""
    p, val = ctx.params, ctx.val_loss
    assert val is not None
    if ctx.optimizer_is_adaptive:
        return None  # Adam's steps do not grow with the loss's scale: a sum is only another unit
    ok = np.isfinite(val.values) & (val.values > 0)
    steps, eval_loss = val.steps[ok], val.values[ok]
    train = train_at(ctx, steps)
    if train is None:
        return None
    finite = np.isfinite(train) & (train > 0)
    if np.count_nonzero(finite) < p.ld114_min_points:
        return None
    ratios = train[finite] / eval_loss[finite]
    ratio = float(np.median(ratios))
    level = float(np.median(train[finite]))
    if ratio < p.ld114_train_over_eval or level < p.ld114_min_train_level * (ctx.lnc or 1.0):
        return None
    last = int(np.flatnonzero(finite)[-1])
    values = {
        "ratio": f"{ratio:.3g}",
        "points": len(ratios),
        "train": fmt(float(train[last])),
        "eval": fmt(float(eval_loss[last])),
        "step": int(steps[last]),
    }
    evidence = [Evidence("evidence.train_loss_multiple_of_eval", values, int(steps[last]))]
    finding = Finding("LD114", "warning", evidence, int(steps[0]), None, val.label, {"ratio": ratio})
    return RuleResult([finding])
