"""LD109-LD111, LD115-LD117: facts about the curves that support causes (the loss at ln(C), a huge first
loss, the lr schedule, a loss that climbs back as the lr rises) or temper the verdict (a single loss
value, no training loss at all); they name no symptom.

Texts (title, why, example, fix) live in `i18n/rules.toml` under `rules.<id>`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from diagnostics.context import Context
from diagnostics.features import lr_decays
from diagnostics.model import Evidence, Finding
from diagnostics.registry import RuleResult, rule
from diagnostics.rules._common import (
    accuracy_at_chance_evidence,
    chance_evidence,
    first_is_initial,
    fmt,
)


@rule("LD109", "loss-at-chance-level", curves=("train_loss",))
def loss_at_chance(ctx: Context) -> RuleResult | None:
    """The loss sits at ln(C): the classifier predicts every class with probability 1/C."""
    curve = ctx.train_loss
    assert curve is not None
    if ctx.lnc is None or not len(curve.by) or not ctx.at_chance(curve.end_level):
        return None
    evidence = [chance_evidence(ctx, curve.end_level)]
    at_chance = accuracy_at_chance_evidence(ctx)
    if at_chance is not None:
        evidence.append(at_chance)
    return RuleResult([Finding("LD109", "warning", evidence, None, None, curve.label)])


@rule("LD110", "initial-loss-far-above-chance", curves=("train_loss",))
def initial_loss_high(ctx: Context) -> RuleResult | None:
    """The first loss is many times ln(C): the logits start huge (unscaled input or a wide init).
    Only for a classification loss (ln(C) means nothing for a detection loss such as SSD's
    MultiBoxLoss) and only when the first value is an initial loss, not that of a resumed run."""
    curve = ctx.train_loss
    assert curve is not None
    lnc, key = ctx.lnc, "evidence.initial_high"
    if lnc is None and ctx.one_classifier_loss:
        # A classifier of unknown C: no untrained one starts above ln(ld110_max_classes), so a first
        # loss many times that is a sum or huge logits.
        lnc, key = math.log(ctx.params.ld110_max_classes), "evidence.initial_high_any_c"
    elif ctx.logged_per_epoch():
        key = "evidence.initial_high_epoch"  # the first epoch's mean: huge from then on, not at the start
    if lnc is None or not first_is_initial(ctx, curve):
        return None
    first = float(curve.values[0])
    if not math.isfinite(first) or first < ctx.params.ld110_initial_ratio * lnc:
        return None
    params = {"first": fmt(first), "lnc": round(lnc, 4), "ratio": fmt(first / lnc)}
    if key == "evidence.initial_high_any_c":
        params["c"] = ctx.params.ld110_max_classes
    evidence = [Evidence(key, params, int(curve.steps[0]), ctx.curve_quote(curve, 0))]
    measurements = {"initial_over_lnc": first / lnc, "classes_unknown": float(ctx.lnc is None)}
    return RuleResult(
        [Finding("LD110", "warning", evidence, int(curve.steps[0]), None, curve.label, measurements)]
    )


@rule("LD111", "lr-schedule", curves=("lr",))
def lr_schedule(ctx: Context) -> RuleResult | None:
    """Recognises warm-up and decays in the logged lr, so the loss moves they cause are not alarms."""
    p, lr = ctx.params, ctx.lr
    assert lr is not None
    finite = np.isfinite(lr.values)
    v = lr.values[finite]
    if len(v) < 3 or v.max() <= 0:
        return None
    peak_i = int(np.argmax(v))
    warmup = peak_i > 0 and v[0] < p.ld111_warmup_share * v[peak_i]
    drops = len(lr_decays(lr.steps[finite], v, p.ld111_drop_factor))
    decay = v[-1] < p.ld111_decay_share * v[peak_i]
    if not (warmup or decay):
        return None
    evidence = [
        Evidence(
            "evidence.lr_schedule",
            {
                "start": fmt(float(v[0])),
                "peak": fmt(float(v[peak_i])),
                "end": fmt(float(v[-1])),
                "drops": drops,
            },
        )
    ]
    measurements = {"warmup": 1.0 if warmup else 0.0, "decay": 1.0 if decay else 0.0, "drops": float(drops)}
    return RuleResult([Finding("LD111", "info", evidence, None, None, lr.label, measurements)])


class LrOvershoot(NamedTuple):
    """Where the loss was lowest while the lr was still rising, and how far both moved after."""

    step: int  # the step of the lowest (smoothed) loss
    low: float  # that level
    end: float  # the loss's level at the end of the run
    gave_back: float  # (end - low) / (start - low): the share of the fall the loss gave back
    lr_at_low: float  # the logged lr at that step
    lr_peak: float  # the highest lr logged after it


def lr_overshoot(ctx: Context) -> LrOvershoot | None:
    """The loss fell, reached its lowest while the lr rose, and gave back at least `ld115_gave_back` of
    its fall as the lr went on rising past `ld115_lr_rise` x the lr at the lowest point and stayed
    there; None otherwise (also without a logged lr or a training loss). Measured once per run: LD102
    reads it too."""
    return ctx.measure("lr_overshoot", lambda: _measure_lr_overshoot(ctx))


def _measure_lr_overshoot(ctx: Context) -> LrOvershoot | None:
    p, curve, lr = ctx.params, ctx.train_loss, ctx.lr
    if curve is None or lr is None or len(curve.by) < p.ld115_min_buckets:
        return None
    ok = np.isfinite(lr.values) & (lr.values > 0)
    steps, values = lr.steps[ok], lr.values[ok]
    if len(values) < 3:
        return None
    start, low, end = curve.start_level, curve.min_level, curve.end_level
    fall = start - low
    if not (fall > 0 and math.isfinite(end)):
        return None  # it never fell: flat or blown up from the start, which other rules read
    gave_back = (end - low) / fall
    at_low = float(np.interp(curve.min_step, steps, values))
    after = values[steps >= curve.min_step]
    if gave_back < p.ld115_gave_back or not len(after):
        return None
    # The lr kept rising after the lowest loss and was still that high at the end: the rise, not a
    # decay or a restart of the schedule, is what the loss answered.
    risen = p.ld115_lr_rise * at_low
    if after.max() < risen or values[-1] < risen:
        return None
    return LrOvershoot(curve.min_step, low, end, gave_back, at_low, float(after.max()))


@rule("LD115", "loss-rises-with-lr", curves=("train_loss", "lr"))
def loss_rises_with_lr(ctx: Context) -> RuleResult | None:
    """The loss climbs back while the lr keeps rising: the run was its own lr range test, and the lr
    that was too large is read off the log (a warm-up to a peak the net does not tolerate)."""
    found = lr_overshoot(ctx)
    if found is None:
        return None
    curve = ctx.train_loss
    assert curve is not None
    params = {
        "step": found.step,
        "low": fmt(found.low),
        "lr_low": f"{found.lr_at_low:.3g}",
        "lr_peak": f"{found.lr_peak:.3g}",
        "end": fmt(found.end),
        "pct": round(100 * found.gave_back),
    }
    evidence = [Evidence("evidence.loss_rose_with_lr", params, found.step)]
    measurements = {
        "gave_back": found.gave_back,
        "lr_rise": found.lr_peak / found.lr_at_low,
        "lr_at_low": found.lr_at_low,
        "lr_peak": found.lr_peak,
    }
    return RuleResult([Finding("LD115", "warning", evidence, found.step, None, curve.label, measurements)])


@rule("LD116", "single-loss-value", curves=("train_loss",))
def single_loss_value(ctx: Context) -> RuleResult | None:
    """The log holds one finite training loss and nothing worse, nor an evaluation loss curve: no trend
    can be read, so a healthy verdict is a guess (the runner calls it uncertain). A NaN after it is
    LD101's to report."""
    curve, val = ctx.train_loss, ctx.val_loss
    assert curve is not None
    if len(curve) != 1 or not np.isfinite(curve.values[0]):
        return None
    if val is not None and int(np.isfinite(val.values).sum()) >= 2:
        return None  # the evaluation curve shows the trend
    step = int(curve.steps[0])
    params = {"loss": fmt(float(curve.values[0])), "step": step}
    evidence = [Evidence("evidence.single_loss_value", params, step, ctx.curve_quote(curve, 0))]
    return RuleResult([Finding("LD116", "info", evidence, step, None, curve.label)])


# Names listed in LD117's evidence: enough to recognise the log, not a dump of a wide CSV's columns.
LISTED_METRICS = 4


@rule("LD117", "no-training-loss")
def no_training_loss(ctx: Context) -> RuleResult | None:
    """The log holds no training loss: the curve rules read it (LD101 alone falls back on a NaN in the
    evaluation loss), so a healthy verdict would only say nothing was checked (the runner calls it
    uncertain). The evaluation loss, when there is one, is summarised so that a rise in it is not hidden
    behind that verdict; so is the HF Trainer's end-of-run mean training loss, the one training number
    such a log may hold."""
    if ctx.train_loss is not None:
        return None
    pairs = ctx.log.metrics[["split", "metric"]].drop_duplicates()  # a few rows, not one per value
    names = sorted(f"{split}/{metric}" for split, metric in zip(pairs["split"], pairs["metric"], strict=True))
    listed = ", ".join(names[:LISTED_METRICS]) + (", ..." if len(names) > LISTED_METRICS else "")
    evidence = [Evidence("evidence.no_training_loss", {"metrics": listed or "-"})]
    mean = ctx.meta.train_loss_mean
    if mean is not None:
        quote = ctx.meta.where.get("train_loss_mean")
        evidence.append(Evidence("evidence.train_loss_summary", {"value": fmt(mean)}, quote=quote))
    val = ctx.val_loss
    if val is not None:
        finite = np.isfinite(val.values)
        params = {
            "curve": val.label,
            "points": len(val),
            "first": fmt(float(val.values[0])),
            "last": fmt(float(val.values[-1])),
            "low": fmt(float(val.values[finite].min())) if finite.any() else "nan",
            "nonfinite": int((~finite).sum()),
        }
        evidence.append(Evidence("evidence.eval_loss_only", params, int(val.steps[-1])))
    series = val.label if val is not None else None
    return RuleResult([Finding("LD117", "info", evidence, None, None, series)])
