"""LD101-LD102: the loss blows up: it turns non-finite (NaN/inf, Caffe's clamp) or diverges.

Texts (title, why, example, fix) live in `i18n/rules.toml` under `rules.<id>`.
"""

from __future__ import annotations

import math

import numpy as np

from diagnostics.context import Context
from diagnostics.features import Curve, kendall, lr_rose
from diagnostics.model import Evidence, Finding
from diagnostics.params import Params
from diagnostics.registry import RuleResult, rule
from diagnostics.rules._common import fmt, symptom_result
from diagnostics.rules.facts import lr_overshoot
from parsers.model import LogLine


# ----- LD101 -------------------------------------------------------------------------------------
@rule("LD101", "nonfinite-loss", symptom="nan")
def nonfinite_loss(ctx: Context) -> RuleResult | None:
    """The training loss becomes NaN/inf (or Caffe's clamp 87.3365) and stays there. A log without a
    training loss (LD117) is judged on its evaluation loss: a net whose weights turned NaN evaluates
    to NaN, the one curve rule that reads as well there."""
    p = ctx.params
    judged = (ctx.train_loss_raw, ctx.train_loss) if ctx.train_loss is not None else (ctx.val_loss,)
    firsts = {id(c): _first_bad(c) for c in judged if c is not None}
    curves = [c for c in judged if c is not None and firsts[id(c)] is not None]
    if not curves:
        return _counted_nan(ctx)
    curve = min(curves, key=lambda c: c.steps[firsts[id(c)]])
    first = firsts[id(curve)]
    assert first is not None
    after = curve.bad[first:]
    persistent = after.mean() >= p.nan_persist_fraction or bool(curve.bad[-1])
    value = float(curve.values[first])
    step = curve.step_at(first)
    evidence = [
        Evidence(
            "evidence.first_nonfinite",
            {"value": fmt(value), "step": step, "bad": int(after.sum()), "total": len(after)},
            step,
            ctx.curve_quote(curve, first),
        )
    ]
    if math.isfinite(value):
        evidence.append(Evidence("evidence.caffe_clamp", {"value": round(value, 4)}, step))
    growth = growth_before(curve, first, p)
    if growth is not None:
        evidence.append(Evidence("evidence.growth_before_nan", growth, growth["min_step"]))
    blown = companion_blown_up(ctx, step)
    if blown is not None:
        evidence.append(Evidence("evidence.companion_exploded", blown, blown["step"]))
    measurements = {
        "bad_share": float(after.mean()),
        "grew_before_nan": 1.0 if growth is not None or blown is not None else 0.0,
    }
    if not persistent:
        return RuleResult([Finding("LD101", "warning", evidence, step, None, curve.label, measurements)])
    confidence = (
        p.ld101_confidence_all_bad
        if after.mean() > p.ld101_all_bad_share or curve.bad[-1]
        else p.ld101_confidence
    )
    return symptom_result(ctx, "LD101", "nan", confidence, curve, step, evidence, measurements=measurements)


def _counted_nan(ctx: Context) -> RuleResult | None:
    """NaN iterations a counter reports while the logged loss stays finite: Megatron averages the loss
    over the iterations that were not NaN (`number of nan iterations`), so a run whose iterations turned
    NaN keeps printing a finite loss. The run is NaN from the first logging window in which most
    iterations were NaN, when the windows from there on stay so (`nan_persist_fraction`)."""
    p, rows = ctx.params, ctx.rows("nan_iters", "train")
    curve = ctx.train_loss
    if len(rows) < 2 or curve is None:
        return None
    steps, counts = rows["step"].to_numpy(), rows["value"].to_numpy(dtype=float)
    windows = np.diff(steps, prepend=steps[0] - (steps[1] - steps[0])).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        share = np.where(windows > 0, counts / windows, 0.0)
    mostly = np.nan_to_num(share) >= p.nan_persist_fraction
    persistent = np.flatnonzero(mostly & (np.cumsum(mostly[::-1])[::-1] == np.arange(len(mostly), 0, -1)))
    if not len(persistent):
        return None
    first = int(persistent[0])
    step = int(steps[first])
    evidence = [
        Evidence(
            "evidence.counted_nan",
            {"nan": int(np.nansum(counts[first:])), "total": int(windows[first:].sum()), "step": step},
            step,
            LogLine(str(rows["source"].iloc[first]), int(rows["line"].iloc[first]), ""),
        )
    ]
    measurements = {"bad_share": float(np.nanmean(share[first:])), "grew_before_nan": 0.0}
    return symptom_result(
        ctx, "LD101", "nan", p.ld101_confidence_all_bad, curve, step, evidence, measurements=measurements
    )


def _first_bad(curve: Curve) -> int | None:
    """The first non-finite point. A clamp value logged before the first update (Caffe's iteration 0)
    is the untrained net's loss, which LD110 judges, not the run turning non-finite."""
    idx = np.flatnonzero(curve.bad)
    if len(idx) and idx[0] == 0 and curve.steps[0] <= 0 and math.isfinite(curve.values[0]):
        idx = idx[1:]
    return int(idx[0]) if len(idx) else None


def growth_before(curve: Curve, first: int, p: Params) -> dict | None:
    """How much the finite loss rose from its minimum before the first non-finite value `first`."""
    start = 1 if curve.bad[0] and first > 0 else 0  # skip a pre-update clamp (see _first_bad)
    y = curve.values[start:first]
    n = len(y)
    if n < p.ld101_growth_min_points:
        return None
    i_min = int(np.argmin(y))
    tail = y[max(i_min, n - max(p.ld101_growth_tail_points, n // p.ld101_growth_tail_parts)) :]
    last = float(np.median(tail))
    low = float(y[i_min])
    if i_min >= n - p.ld101_growth_min_after or low <= 0 or last < p.ld101_growth_ratio * low:
        return None
    return {
        "min": fmt(low),
        "min_step": int(curve.steps[start + i_min]),
        "last": fmt(last),
        "ratio": round(last / low, 1),
    }


# Train metrics that are not a magnitude of the model's errors (or are the judged loss itself).
_NOT_COMPANIONS = (
    "loss",
    "loss_raw",
    "lr",
    "accuracy",
    "top5",
    "map",
    "epoch",
    "time",
    "data_time",
    "memory",
)


def companion_blown_up(ctx: Context, step: int) -> dict | None:
    """Another training metric (a loss component, MAE, grad_norm) that is still finite where the loss
    turns non-finite but `explode_ratio` times its usual size: the weights blew up (a logged average
    hides the growth of the loss itself), which a NaN in the data would not show."""
    m = ctx.log.metrics
    rows = m[(m["split"] == "train") & ~m["metric"].isin(_NOT_COMPANIONS)]
    if not len(rows):
        return None
    worst = None
    for name, series in rows.groupby("metric", observed=True):
        series = series.sort_values("step", kind="stable")
        steps, values = series["step"].to_numpy(), np.abs(series["value"].to_numpy(dtype=float))
        finite = np.isfinite(values)
        before = values[(steps < step) & finite]
        reference = before if len(before) >= ctx.params.ld101_companion_min_points else values[finite]
        usual = float(np.median(reference)) if len(reference) else 0.0
        at = np.flatnonzero(steps >= step)[:2]  # the record where the loss turned and the next one
        at = at[finite[at]]
        if not len(at) or usual <= 0:
            continue
        i = int(at[np.argmax(values[at])])
        ratio = float(values[i]) / usual
        if ratio >= ctx.params.explode_ratio and (worst is None or ratio > worst[0]):
            worst = (ratio, str(name), float(series["value"].iloc[i]), int(steps[i]), usual)
    if worst is None:
        return None
    ratio, name, value, at_step, usual = worst
    return {"name": name, "value": fmt(value), "step": at_step, "usual": fmt(usual), "ratio": fmt(ratio)}


# ----- LD102 -------------------------------------------------------------------------------------
def _untrained_loss(ctx: Context, curve: Curve) -> float:
    """The curve's first value when it was logged at the first update of an untrained net (not after an
    epoch or a logging window, not a fine-tune or a resumed run); NaN otherwise (no comparison holds)."""
    if not len(curve.trend_index) or not ctx.starts_untrained(curve):
        return math.nan
    first = float(curve.trend_values[0])
    return first if first > 0 else math.nan


@rule("LD102", "loss-diverges", curves=("train_loss",), symptom="diverging")
def loss_diverges(ctx: Context) -> RuleResult | None:
    """Finite loss growing: far above its running minimum with a rising trend, or exploding."""
    p, curve = ctx.params, ctx.train_loss
    assert curve is not None
    by, bx = curve.by, curve.bx
    if len(by) < p.ld102_min_buckets:
        return None
    start, low, end = curve.start_level, curve.min_level, curve.end_level
    i_min = curve.min_index
    peak = float(np.max(by[i_min:]))
    # A peak the loss came back from, to well below where it started, was a spike it learned past, not
    # a loss that grows (a blow-up that settles back at the start learned nothing, and stays one).
    came_back = end < p.ld102_back_below_start * start
    exploded = start > 0 and peak > p.explode_ratio * start and not came_back
    after = by[i_min:]
    span = len(after) / len(by)
    base = max(abs(low), 1e-12)
    rising = (
        end - low > (p.diverge_ratio - 1) * base
        and end - low > p.ld102_min_rise_of_start * abs(start)
        and span >= p.diverge_min_after
        and kendall(after) >= p.diverge_tau
        and curve.theil_slope(i_min) > 0
    )
    untrained = _untrained_loss(ctx, curve)
    # Blown up in the first updates and never back: the best level after them stays far above the loss
    # the untrained net started from (e.g. nanoGPT's `iter 0` at ln(vocab)), however it wobbles later.
    never_back = bool(low > p.diverge_ratio * untrained)
    if never_back:
        start = untrained  # the level the blow-up is measured from
        peak = float(np.max(by))  # the blow-up itself, before the best level after it
        exploded = exploded or peak > p.explode_ratio * untrained
    # A loss that climbed back above its start as the lr kept rising (LD115) undid all it had learned:
    # it grows, however small its rise looks against its minimum.
    overshoot = lr_overshoot(ctx)
    undone = overshoot is not None and end > start and kendall(after) >= p.diverge_tau
    if not (rising or exploded or never_back or undone):
        return None
    if never_back and not rising:
        onset_index = int(np.flatnonzero(by > p.diverge_ratio * untrained)[0])
    else:
        threshold = low + p.ld102_onset_share * (p.diverge_ratio - 1) * base
        above = np.flatnonzero(after > threshold)
        onset_index = i_min + (int(above[0]) if len(above) else 0)
    onset = int(bx[onset_index])
    confidence = (
        p.ld102_confidence_strong if exploded or end > p.ld102_strong_ratio * base else p.ld102_confidence
    )
    lr = ctx.lr
    rose = lr is not None and lr_rose(lr.steps, lr.values, int(bx[i_min]), int(bx[-1]), p.ld102_lr_rise_ratio)
    # A warm restart or a rising schedule explains part of the rise, unless the loss gave back most of what
    # it learned as the lr climbed and stayed high (LD115): then the rising lr is the fault, not an excuse.
    if rose and overshoot is None:
        confidence -= p.ld102_penalty_lr_rose
    per_1000 = curve.theil_slope(i_min) * 1000
    evidence = []
    if rising or not never_back:
        rose = {
            "min": fmt(low),
            "min_step": int(bx[i_min]),
            "end": fmt(end),
            "ratio": round(end / base, 1),
            "rate": fmt(per_1000),
        }
        evidence.append(Evidence("evidence.loss_rose", rose, onset))
    if never_back:
        first_step = int(curve.steps[curve.trend_index[0]])
        ratio = round(low / untrained, 1)
        back = {"first": fmt(untrained), "step": first_step, "best": fmt(low), "ratio": ratio}
        evidence.append(Evidence("evidence.never_back_to_start", back, onset))
    if exploded:
        evidence.append(Evidence("evidence.loss_exploded", {"peak": fmt(peak), "start": fmt(start)}))
    measurements = {"rise_ratio": end / base, "exploded": 1.0 if exploded else 0.0}
    if confidence < p.ld102_min_confidence:
        return RuleResult([Finding("LD102", "info", evidence, onset, None, curve.label, measurements)])
    return symptom_result(
        ctx, "LD102", "diverging", confidence, curve, onset, evidence, measurements=measurements
    )
