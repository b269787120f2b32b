"""LD1xx: what the curves do. Each rule measures one shape and, when present, names the symptom.

Texts (title, why, example, fix) live in `i18n/rules.toml` under `rules.<id>`.
"""

from __future__ import annotations

import math

import numpy as np

from diagnostics.context import Context
from diagnostics.features import Curve, kendall, spikes, swing
from diagnostics.model import Evidence, Finding, Severity, SymptomResult
from diagnostics.registry import RuleResult, rule


def _result(
    rule_id: str,
    symptom: str,
    confidence: float,
    curve: Curve,
    step: int | None,
    evidence: list[Evidence],
    severity: Severity = "critical",
) -> RuleResult:
    """A symptom with the finding that shows it (shaded on the chart from `step`)."""
    finding = Finding(rule_id, severity, evidence, step, None, curve.label)
    return RuleResult([finding], SymptomResult(symptom, min(confidence, 0.99), step, curve.label, rule_id))


def _resumed_late(ctx: Context, curve: Curve) -> bool:
    """The log starts far into training (a resumed run): its first value is not an initial loss."""
    first = int(curve.steps[0]) if len(curve) else 0
    last = int(curve.steps[-1]) if len(curve) else 0
    return (ctx.meta.resumed and first > 0.1 * max(last, 1)) or first > 0.3 * max(last, 1) > 0


def _first_is_initial(ctx: Context, curve: Curve) -> bool:
    """The first logged value is the loss of an untrained net (no resumed state behind it)."""
    if ctx.meta.resumed and len(curve) and curve.steps[0] > 0:
        return False
    return not _resumed_late(ctx, curve)


# ----- LD101 -------------------------------------------------------------------------------------
@rule("LD101", "nonfinite-loss", curves=("train_loss",), symptom="nan")
def nonfinite_loss(ctx: Context) -> RuleResult | None:
    """The training loss becomes NaN/inf (or Caffe's clamp 87.3365) and stays there."""
    p = ctx.params
    firsts = {id(c): _first_bad(c) for c in (ctx.train_loss_raw, ctx.train_loss) if c is not None}
    curves = [c for c in (ctx.train_loss_raw, ctx.train_loss) if c is not None and firsts[id(c)] is not None]
    if not curves:
        return None
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
            {"value": _fmt(value), "step": step, "bad": int(after.sum()), "total": len(after)},
            step,
            ctx.curve_quote(curve, first),
        )
    ]
    if math.isfinite(value):
        evidence.append(Evidence("evidence.caffe_clamp", {"value": round(value, 4)}, step))
    growth = growth_before(curve, first)
    if growth is not None:
        evidence.append(Evidence("evidence.growth_before_nan", growth, growth["min_step"]))
    blown = companion_blown_up(ctx, step)
    if blown is not None:
        evidence.append(Evidence("evidence.companion_exploded", blown, blown["step"]))
    if not persistent:
        return RuleResult([Finding("LD101", "warning", evidence, step, None, curve.label)])
    confidence = 0.95 if after.mean() > 0.9 or curve.bad[-1] else 0.8
    return _result("LD101", "nan", confidence, curve, step, evidence)


def _first_bad(curve: Curve) -> int | None:
    """The first non-finite point. A clamp value logged before the first update (Caffe's iteration 0)
    is the untrained net's loss, which LD110 judges, not the run turning non-finite."""
    idx = np.flatnonzero(curve.bad)
    if len(idx) and idx[0] == 0 and curve.steps[0] <= 0 and math.isfinite(curve.values[0]):
        idx = idx[1:]
    return int(idx[0]) if len(idx) else None


def growth_before(curve: Curve, first: int) -> dict | None:
    """How much the finite loss rose from its minimum before the first non-finite value `first`."""
    start = 1 if curve.bad[0] and first > 0 else 0  # skip a pre-update clamp (see _first_bad)
    y = curve.values[start:first]
    n = len(y)
    if n < 4:
        return None
    i_min = int(np.argmin(y))
    tail = y[max(i_min, n - max(3, n // 20)) :]
    last = float(np.median(tail))
    low = float(y[i_min])
    if i_min >= n - 2 or low <= 0 or last < 1.5 * low:
        return None
    return {
        "min": _fmt(low),
        "min_step": int(curve.steps[start + i_min]),
        "last": _fmt(last),
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
        reference = before if len(before) >= 3 else values[finite]
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
    return {"name": name, "value": _fmt(value), "step": at_step, "usual": _fmt(usual), "ratio": _fmt(ratio)}


# ----- LD102 -------------------------------------------------------------------------------------
@rule("LD102", "loss-diverges", curves=("train_loss",), symptom="diverging")
def loss_diverges(ctx: Context) -> RuleResult | None:
    """Finite loss growing: far above its running minimum with a rising trend, or exploding."""
    p, curve = ctx.params, ctx.train_loss
    assert curve is not None
    by, bx = curve.by, curve.bx
    if len(by) < 4:
        return None
    start, low, end = curve.start_level, curve.min_level, curve.end_level
    i_min = curve.min_index
    peak = float(np.max(by[i_min:]))
    exploded = start > 0 and peak > p.explode_ratio * start
    after = by[i_min:]
    span = len(after) / len(by)
    base = max(abs(low), 1e-12)
    rising = (
        end - low > (p.diverge_ratio - 1) * base
        and end - low > 0.05 * abs(start)
        and span >= p.diverge_min_after
        and kendall(after) >= p.diverge_tau
        and curve.theil_slope(i_min) > 0
    )
    if not (rising or exploded):
        return None
    threshold = low + 0.5 * (p.diverge_ratio - 1) * base
    above = np.flatnonzero(after > threshold)
    onset_index = i_min + (int(above[0]) if len(above) else 0)
    onset = int(bx[onset_index])
    confidence = 0.9 if exploded or end > 3 * base else 0.75
    if ctx.lr is not None and _lr_rose(ctx, int(bx[i_min]), int(bx[-1])):
        confidence -= 0.35  # a warm restart or rising schedule explains part of the rise
    per_1000 = curve.theil_slope(i_min) * 1000
    evidence = [
        Evidence(
            "evidence.loss_rose",
            {
                "min": _fmt(low),
                "min_step": int(bx[i_min]),
                "end": _fmt(end),
                "ratio": round(end / base, 1),
                "rate": _fmt(per_1000),
            },
            onset,
        )
    ]
    if exploded:
        evidence.append(Evidence("evidence.loss_exploded", {"peak": _fmt(peak), "start": _fmt(start)}))
    if confidence < 0.5:
        return RuleResult([Finding("LD102", "info", evidence, onset, None, curve.label)])
    return _result("LD102", "diverging", confidence, curve, onset, evidence)


def _lr_rose(ctx: Context, lo: int, hi: int) -> bool:
    lr = ctx.lr
    assert lr is not None
    mask = (lr.steps >= lo) & (lr.steps <= hi) & np.isfinite(lr.values)
    window = lr.values[mask]
    return len(window) >= 2 and window.max() > 1.5 * max(window[0], 1e-30)


# ----- LD103 / LD104 -----------------------------------------------------------------------------
def _progress_reference(ctx: Context, curve: Curve) -> float:
    """Progress is measured against ln(C) when the run starts at chance, else against the start."""
    lnc = ctx.lnc
    if lnc is not None and ctx.at_chance(curve.start_level):
        return lnc
    return abs(curve.start_level) or 1.0


def _last_lr_cut(ctx: Context, curve: Curve) -> tuple[float, float, int, float, float] | None:
    """(fraction of the loss curve's steps at the lr's last decay, final lr / peak lr, the decay's step,
    the lr before and after it) when the logged lr fell below half of the value before it at some point;
    None without a logged lr or a decay."""
    lr = ctx.lr
    if lr is None or len(curve.steps) < 2:
        return None
    ok = np.isfinite(lr.values) & (lr.values > 0)
    v, steps = lr.values[ok], lr.steps[ok]
    if len(v) < 3:
        return None
    drops = np.flatnonzero(v[1:] < 0.5 * v[:-1])
    if not len(drops):
        return None
    first, last = float(curve.steps[0]), float(curve.steps[-1])
    at = int(drops[-1]) + 1
    frac = (float(steps[at]) - first) / max(last - first, 1.0)
    return min(max(frac, 0.0), 1.0), float(v[-1] / v.max()), int(steps[at]), float(v[at - 1]), float(v[at])


@rule("LD103", "loss-flat-from-start", curves=("train_loss",), symptom="flat")
def loss_flat(ctx: Context) -> RuleResult | None:
    """No real progress from the start: the best level is within a few percent of the first."""
    p, curve = ctx.params, ctx.train_loss
    assert curve is not None
    if len(curve.by) < 3:
        return None
    start, end = curve.start_level, curve.end_level
    ref = _progress_reference(ctx, curve)
    drop = (start - curve.min_level) / ref
    at_chance = ctx.at_chance(end)
    lnc = ctx.lnc
    learned_already = lnc is not None and start < 0.5 * lnc
    # A classifier whose best loss never got clearly below ln(C) has learned nothing, wherever it began
    # (e.g. a blow-up in the first steps, then a collapse onto uniform predictions).
    never_beat_chance = lnc is not None and at_chance and curve.min_level >= (1 - p.flat_drop_lnc) * lnc
    if (
        drop >= (p.flat_drop_lnc if ref == lnc else p.flat_drop) or learned_already
    ) and not never_beat_chance:
        return None
    if _resumed_late(ctx, curve) and not at_chance:
        return None
    if not at_chance and len(curve.by) >= 8 and curve.tau < -0.5:
        return None  # a small but steady decrease is slow progress (e.g. fine-tuning), not a flat run
    evidence = [
        Evidence(
            "evidence.no_progress",
            {"start": _fmt(start), "end": _fmt(end), "drop_pct": round(100 * drop, 1), "points": len(curve)},
            int(curve.steps[0]),
        )
    ]
    improved = None if at_chance else _evaluation_improved(ctx)
    if improved is not None:
        # The net learned: a flat training loss under heavy augmentation or warm-up is not a stuck run.
        evidence.append(Evidence("evidence.eval_improved", improved))
        return RuleResult([Finding("LD103", "info", evidence, int(curve.steps[0]), None, curve.label)])
    if at_chance and ctx.classes:
        evidence.append(_chance_evidence(ctx, end))
    confidence = 0.9 if at_chance else 0.7 if len(curve.by) >= 8 else 0.55
    return _result("LD103", "flat", confidence, curve, int(curve.steps[0]), evidence)


@rule("LD104", "loss-plateaus-early", curves=("train_loss",), symptom="plateau")
def loss_plateau(ctx: Context) -> RuleResult | None:
    """Some progress, then stuck at a poor level early in the run."""
    p, curve = ctx.params, ctx.train_loss
    assert curve is not None
    by, bx = curve.by, curve.bx
    if len(by) < 8 or _resumed_late(ctx, curve):
        return None
    start, end = curve.start_level, curve.end_level
    ref = _progress_reference(ctx, curve)
    drop = (start - curve.min_level) / ref
    lnc = ctx.lnc
    progress = (start - end) / ref
    if drop < (p.flat_drop_lnc if ref == lnc else p.flat_drop) or progress <= 0:
        return None  # that is flat (or ends worse than it started), not a plateau
    if lnc is not None and end > (1 + p.lnc_tolerance) * lnc:
        return None  # worse than guessing: a blow-up or swings (LD102/LD105), not a plateau
    if ctx.meta.pretrained and lnc is None:
        return None
    # Without ln(C) the level cannot be judged, only the size of the drop: demand a smaller one.
    poor = end > p.plateau_lnc_level * lnc if lnc is not None else drop < p.plateau_max_drop / 2
    # Windows that must show no gain, each with the level it counts as poor: the last half of the run;
    # the run since its last lr decay (a decay that ends the progress at a poor level); the run since an
    # lr cut by 100x in its first third (no schedule cuts that early; a drop under 30% is poor then);
    # and, for a classifier still above half of ln(C), everything after the first 20% of the run.
    windows = [(1 - p.plateau_stall_fraction, poor, "half")]
    cut = _last_lr_cut(ctx, curve)
    early = cut is not None and cut[0] <= 1 / 3 and cut[1] <= 0.01
    if cut is not None and cut[0] <= 1 - p.plateau_stall_fraction / 2:
        windows.append((cut[0] + 0.05, poor or (early and drop < p.plateau_max_drop), "lr_cut"))
    if lnc is not None:
        windows.append((p.plateau_long_from, end > p.plateau_long_lnc_level * lnc, "long"))
    # The first poor window without gain; the added windows must not have risen either (a loss that
    # learned and then fell back onto ln(C) did not stall there, it collapsed).
    gains = [((curve.level_at(frac) - end) / ref, kind) for frac, is_poor, kind in windows if is_poor]
    stalls = [
        (g, kind)
        for g, kind in gains
        if g < p.plateau_stall_gain and (kind == "half" or g > -p.plateau_stall_gain)
    ]
    if not stalls:
        return None
    gain, kind = stalls[0]
    # A steady but tiny decrease is slow progress when the level cannot be judged (a fine-tune); a
    # classifier still near ln(C) that gains under 2% of ln(C) in half the run has stalled all the same,
    # and so has a run whose lr was cut early (its slow progress is the symptom).
    steady = curve.tau_between(1 - p.plateau_stall_fraction, 1.0) < -0.3
    excused = steady and lnc is None and not early
    if gain >= p.plateau_stall_gain or excused:
        return None
    reached = np.flatnonzero(by <= curve.min_level + 0.2 * (start - curve.min_level))
    onset = int(bx[reached[0]]) if len(reached) else int(bx[len(bx) // 2])
    evidence = [
        Evidence(
            "evidence.stalled",
            {
                "start": _fmt(start),
                "end": _fmt(end),
                "drop_pct": round(100 * drop, 1),
                "step": onset,
                "gain_pct": round(100 * gain, 2),
            },
            onset,
        )
    ]
    if kind == "lr_cut" and cut is not None:
        # The progress ended with an lr decay: the lr after it is too small for what is left to learn.
        params = {"step": cut[2], "before": _fmt(cut[3]), "after": _fmt(cut[4])}
        evidence.append(Evidence("evidence.stalled_after_lr_decay", params, cut[2]))
    if lnc is not None and ctx.classes:
        evidence.append(
            Evidence(
                "evidence.level_vs_chance",
                {"end": _fmt(end), "c": ctx.classes[0], "lnc": round(lnc, 4), "pct": round(100 * end / lnc)},
            )
        )
    confidence = 0.8 if lnc is not None else 0.6
    return _result("LD104", "plateau", confidence, curve, onset, evidence, severity="warning")


# ----- LD105 -------------------------------------------------------------------------------------
@rule("LD105", "loss-oscillates", curves=("train_loss",), symptom="oscillating")
def loss_oscillates(ctx: Context) -> RuleResult | None:
    """Large swings of the (bucketed) loss that keep reversing, without a downward trend."""
    p, curve = ctx.params, ctx.train_loss
    assert curve is not None
    if len(curve.by) < 8:
        return None
    amplitude, reversals = swing(curve, p.oscillation_step)
    needed = min(p.oscillation_reversals, max(2, len(curve.by) // 3))
    if amplitude < p.oscillation_amplitude or reversals < needed or curve.tau < p.oscillation_max_tau:
        return None
    evidence = [
        Evidence(
            "evidence.swings",
            {"amplitude_pct": round(100 * amplitude), "reversals": reversals, "tau": round(curve.tau, 2)},
        )
    ]
    confidence = min(0.9, 0.5 + amplitude / 2)
    return _result("LD105", "oscillating", confidence, curve, int(curve.bx[0]), evidence, severity="warning")


# ----- LD106 / LD107 -----------------------------------------------------------------------------
def _median3(y: np.ndarray) -> np.ndarray:
    """3-point running median: one noisy evaluation is not a minimum."""
    if len(y) < 3:
        return y
    padded = np.r_[y[0], y, y[-1]]
    return np.median(np.stack([padded[:-2], padded[1:-1], padded[2:]]), axis=0)


def _train_at(ctx: Context, steps: np.ndarray) -> np.ndarray | None:
    train = ctx.train_loss
    if train is None or len(train.by) < 2:
        return None
    return np.interp(steps.astype(float), train.bx, train.by)


# Quality metrics of an evaluation, the first one logged is judged: (canonical metric, higher is better).
QUALITY_METRICS = (("accuracy", True), ("map", True), ("top5", True), ("wer", False), ("cer", False))


def _past_best(x: np.ndarray, y: np.ndarray, p) -> tuple[int, float, float] | None:
    """Where a lower-is-better evaluation series passes its best and ends `overfit_rise` worse:
    (index of the best, the best, the end level), or None."""
    smooth = _median3(y)
    i_best = int(np.argmin(smooth))
    low, end = float(smooth[i_best]), float(np.median(y[-max(1, len(y) // 10) :]))
    rise = (end - low) / max(abs(low), 1e-12)
    # A small rise counts when it is steady over many evaluations (a trend, not noise).
    after = y[i_best:]
    steady = len(after) >= p.overfit_steady_points and kendall(after) >= p.overfit_steady_tau
    if i_best >= len(y) - 1 or rise < (p.overfit_steady_rise if steady else p.overfit_rise):
        return None
    # Best at the first evaluations (e.g. a resumed run): worse ever since, steadily, or twice as much
    # as the threshold with a moderate trend.
    tau = kendall(y)
    worse_from_start = tau >= p.overfit_rising_tau or (tau >= 0.3 and rise >= 2 * p.overfit_rise)
    if (x[i_best] - x[0]) < p.overfit_min_position * (x[-1] - x[0]) and not worse_from_start:
        return None
    if len(y) - i_best >= 3 and kendall(y[i_best:]) < 0.3:
        return None
    return i_best, low, end


@rule("LD106", "val-loss-rises", curves=("train_loss",), symptom="overfitting")
def val_loss_rises(ctx: Context) -> RuleResult | None:
    """Validation loss passes a minimum and rises while the training loss keeps falling (without a
    validation loss: the evaluation's accuracy, mAP or WER passes its best and gets worse)."""
    p, val = ctx.params, ctx.val_loss
    if ctx.eval_never_beat_chance():
        return None  # overfitting generalises first; an evaluation that never worked is LD107's
    if val is None or np.count_nonzero(np.isfinite(val.values)) < p.overfit_min_points:
        return _quality_worsens(ctx)
    ok = np.isfinite(val.values)
    vx, vy = val.steps[ok], val.values[ok]
    found = _past_best(vx, vy, p)
    if found is None:
        return None
    i_min, low, end = found
    base = max(abs(low), 1e-12)
    train = _train_at(ctx, np.array([vx[i_min], vx[-1]]))
    if train is None or not train[1] < train[0]:
        return None
    onset = int(vx[i_min])
    quality_holds = _quality_improved_since(ctx, onset)
    evidence = [
        Evidence(
            "evidence.val_rises",
            {
                "min": _fmt(low),
                "step": onset,
                "end": _fmt(end),
                "rise_pct": round(100 * (end - low) / base),
                "train_then": _fmt(float(train[0])),
                "train_end": _fmt(float(train[1])),
            },
            onset,
            ctx.curve_quote(val, int(np.flatnonzero(ok)[i_min])),
        )
    ]
    confidence = 0.85 if (end - low) > 2 * p.overfit_rise * base else 0.7
    if quality_holds is not None:
        evidence.append(Evidence("evidence.val_accuracy_holds", quality_holds))
        # Loss up while the accuracy (or error rate) still improves: over-confident predictions, not a
        # worse model. Loss up with the accuracy no better: the extra training only memorised.
        return RuleResult([Finding("LD106", "info", evidence, onset, None, val.label)])
    return _result("LD106", "overfitting", confidence, val, onset, evidence, severity="warning")


def _quality_worsens(ctx: Context) -> RuleResult | None:
    """Overfitting seen in the evaluation's quality metric when no validation loss is logged."""
    p = ctx.params
    for split in ("val", "test"):
        for metric, higher_is_better in QUALITY_METRICS:
            rows = ctx.rows(metric, split)
            rows = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
            if len(rows) < p.overfit_min_points:
                continue
            x, values = rows["step"].to_numpy(), rows["value"].to_numpy(dtype=float)
            found = _past_best(x, -values if higher_is_better else values, p)
            train = _train_at(ctx, np.array([x[found[0]], x[-1]])) if found else None
            if found is None or train is None or not train[1] < train[0]:
                return None
            i_best = found[0]
            best, end = (
                float(_median3(values)[i_best]),
                float(np.median(values[-max(1, len(values) // 10) :])),
            )
            quality = Curve.from_rows(rows, f"{split}/{metric}", p)
            evidence = [
                Evidence(
                    "evidence.val_quality_falls",
                    {
                        "metric": metric,
                        "best": _fmt(best),
                        "step": int(x[i_best]),
                        "end": _fmt(end),
                        "fall_pct": round(100 * abs(end - best) / max(abs(best), 1e-12)),
                        "train_then": _fmt(float(train[0])),
                        "train_end": _fmt(float(train[1])),
                    },
                    int(x[i_best]),
                    ctx.curve_quote(quality, i_best),
                )
            ]
            return _result("LD106", "overfitting", 0.7, quality, int(x[i_best]), evidence, severity="warning")
    return None


def _quality_improved_since(ctx: Context, step: int) -> dict | None:
    """The evaluation's quality metric (accuracy, mAP, or an error rate such as WER) ends at its best,
    more than half a point better than it was at `step`, with a rising trend since (not a wobble around
    a flat level); None otherwise, or when none is logged."""
    for split in ("val", "test"):
        for metric, higher_is_better in QUALITY_METRICS:
            rows = ctx.rows(metric, split)
            rows = rows[np.isfinite(rows["value"].to_numpy(dtype=float))]
            if len(rows) < 3:
                continue
            steps, values = rows["step"].to_numpy(), _median3(rows["value"].to_numpy(dtype=float))
            then = float(values[min(int(np.searchsorted(steps, step)), len(values) - 1)])
            last = float(values[-1])
            tolerance = 0.005 * (100.0 if values.max() > 1.5 else 1.0)
            gain = (last - then) if higher_is_better else (then - last)
            below_best = (values.max() - last) if higher_is_better else (last - values.min())
            since = values[steps >= step]
            trend = kendall(since if higher_is_better else -since)
            if gain > tolerance and below_best <= tolerance and trend >= 0.3:
                return {"metric": metric, "then": _fmt(then), "last": _fmt(last), "step": step}
            return None
    return None


def _evaluation_improved(ctx: Context) -> dict | None:
    """The evaluation's quality metric got better by at least 5 points (of 100) from its first value
    (None otherwise, or when no quality metric is logged)."""
    for split in ("val", "test"):
        for metric, higher_is_better in QUALITY_METRICS:
            values = ctx.rows(metric, split)["value"].to_numpy(dtype=float)
            values = values[np.isfinite(values)]
            if len(values) < 2:
                continue
            best = float(values.max() if higher_is_better else values.min())
            scale = 100.0 if values.max() > 1.5 else 1.0
            gain = (best - values[0]) if higher_is_better else (values[0] - best)
            if gain >= ctx.params.eval_gain * scale:
                return {"metric": metric, "first": _fmt(float(values[0])), "best": _fmt(best)}
            return None
    return None


@rule("LD107", "eval-loss-far-from-train", curves=("train_loss", "val_loss"), symptom="eval_gap")
def eval_gap(ctx: Context) -> RuleResult | None:
    """Validation loss far above training from early on, or far more erratic than training."""
    p, val = ctx.params, ctx.val_loss
    assert val is not None
    ok = np.isfinite(val.values) & (val.steps > 0)
    vx, vy = val.steps[ok], val.values[ok]
    if len(vy) < p.gap_min_points:
        return None
    train = _train_at(ctx, vx)
    if train is None or np.any(train <= 0) or np.any(vy <= 0):
        return None
    ratio = vy / train
    early = ratio[: max(1, len(ratio) // 3)]
    far = float(np.median(ratio)) > p.gap_ratio and float(np.median(early)) > 2.0
    # A validation loss that rises steadily is overfitting's shape (LD106 judges it): once the training
    # set is memorised, any train/val ratio is huge without the evaluation being broken. Unless the
    # evaluated model never beat chance: then it never worked, which overfitting does first.
    never_worked = ctx.eval_never_beat_chance()
    far = far and (kendall(vy) < p.overfit_rising_tau or never_worked)
    train_curve = ctx.train_loss
    assert train_curve is not None
    # Training far below ln(C) while the evaluation never beat chance is a gap however late it opened.
    if never_worked and ctx.lnc is not None and train_curve.end_level < 0.5 * ctx.lnc:
        far = True
    val_var = float(np.median(np.abs(np.diff(np.log(vy))))) if len(vy) > 1 else 0.0
    train_var = float(np.median(np.abs(np.diff(np.log(train))))) if len(train) > 1 else 0.0
    erratic = val_var > 0.25 and val_var > p.gap_erratic_ratio * max(train_var, 1e-3)
    # Validation that improves about as much as training is a generalisation gap, not a broken eval.
    train_progress = 1 - train_curve.end_level / train_curve.start_level if train_curve.start_level > 0 else 0
    val_progress = 1 - float(np.median(vy[-max(1, len(vy) // 3) :])) / float(vy[0])
    lagging = val_progress < p.gap_progress * train_progress
    if not (far or erratic) or not lagging:
        return None
    evidence = [
        Evidence(
            "evidence.val_vs_train",
            {
                "ratio": round(float(np.median(ratio)), 1),
                "early_ratio": round(float(np.median(early)), 1),
                "val": _fmt(float(np.median(vy))),
                "train": _fmt(float(np.median(train))),
            },
            int(vx[0]),
        )
    ]
    if erratic:
        evidence.append(
            Evidence(
                "evidence.val_erratic",
                {"val_pct": round(100 * val_var), "train_pct": round(100 * train_var, 1)},
            )
        )
    confidence = 0.85 if far and erratic else 0.7
    return _result("LD107", "eval_gap", confidence, val, int(vx[0]), evidence, severity="warning")


def _spike_period(curve: Curve, found: list[tuple[int, float, float]]) -> int | None:
    """The steps between spikes when 4+ spikes recur at a regular interval (within 15%) with normal points
    between them (neighbouring points of one steep stretch are not a period), else None."""
    if len(found) < 4 or int(np.diff([i for i, _, _ in found]).min()) < 3:
        return None
    gaps = np.diff([curve.step_at(i) for i, _, _ in found]).astype(float)
    mean = float(gaps.mean())
    if mean <= 0 or float(gaps.std()) > 0.15 * mean:
        return None
    return round(mean)


# ----- LD108 -------------------------------------------------------------------------------------
@rule("LD108", "loss-spikes", curves=("train_loss",), symptom="spiky")
def loss_spikes(ctx: Context) -> RuleResult | None:
    """Isolated spikes far above the rolling median that come back down."""
    p = ctx.params
    curve = ctx.train_loss_raw or ctx.train_loss
    assert curve is not None
    skip = int(p.spike_skip_start * len(curve))
    found = [sp for sp in spikes(curve) if sp[0] >= skip]
    period = _spike_period(curve, found)
    # Many spikes are noise, unless they come back at a fixed period: the same bad stretch of data met
    # once per pass over it (or every k-th batch of a broken loader worker).
    if not found or (
        len(found) > p.spike_max_fraction * len(curve.trend_index) + p.spike_min_count and period is None
    ):
        return None
    top = max(found, key=lambda s: s[1] / max(s[2], 1e-12))
    evidence = [
        Evidence(
            "evidence.spikes",
            {"count": len(found), "value": _fmt(top[1]), "base": _fmt(top[2]), "step": curve.step_at(top[0])},
            curve.step_at(top[0]),
            ctx.curve_quote(curve, top[0]),
        )
    ]
    if len(found) < p.spike_min_count:
        return RuleResult([Finding("LD108", "info", evidence, curve.step_at(top[0]), None, curve.label)])
    if period is not None:
        evidence.append(Evidence("evidence.spikes_periodic", {"count": len(found), "period": period}))
    confidence = min(0.85, 0.5 + 0.05 * len(found))
    onset = curve.step_at(found[0][0])
    return _result("LD108", "spiky", confidence, curve, onset, evidence, severity="warning")


# ----- LD109 / LD110 / LD111: facts that support causes --------------------------------------------
def _chance_evidence(ctx: Context, level: float) -> Evidence:
    assert ctx.classes is not None and ctx.lnc is not None
    c, how = ctx.classes
    return Evidence(f"evidence.at_chance.{how}", {"level": _fmt(level), "c": c, "lnc": round(ctx.lnc, 4)})


@rule("LD109", "loss-at-chance-level", curves=("train_loss",))
def loss_at_chance(ctx: Context) -> RuleResult | None:
    """The loss sits at ln(C): the classifier predicts every class with probability 1/C."""
    curve = ctx.train_loss
    assert curve is not None
    if ctx.lnc is None or not len(curve.by) or not ctx.at_chance(curve.end_level):
        return None
    evidence = [_chance_evidence(ctx, curve.end_level)]
    accuracy = _final_accuracy(ctx)
    assert ctx.classes is not None
    c = ctx.classes[0]
    if accuracy is not None and accuracy[0] <= 2.0 / c * accuracy[1]:
        params = {"accuracy": _fmt(accuracy[0]), "c": c, "chance": _fmt(accuracy[1] / c)}
        evidence.append(Evidence("evidence.accuracy_at_chance", params))
    return RuleResult([Finding("LD109", "warning", evidence, None, None, curve.label)])


def _final_accuracy(ctx: Context) -> tuple[float, float] | None:
    """(last validation/test accuracy, its full scale: 1 or 100) when the log has one."""
    for split in ("val", "test", "train"):
        values = ctx.rows("accuracy", split)["value"].to_numpy(dtype=float)
        values = values[np.isfinite(values)]
        if len(values):
            return float(values[-1]), 100.0 if values.max() > 1.5 else 1.0
    return None


@rule("LD110", "initial-loss-far-above-chance", curves=("train_loss",))
def initial_loss_high(ctx: Context) -> RuleResult | None:
    """The first loss is many times ln(C): the logits start huge (unscaled input or a wide init).
    Only for a classification loss (ln(C) means nothing for a detection loss such as SSD's
    MultiBoxLoss) and only when the first value is an initial loss, not that of a resumed run."""
    curve = ctx.train_loss
    assert curve is not None
    if ctx.lnc is None or not _first_is_initial(ctx, curve):
        return None
    first = float(curve.values[0])
    if not math.isfinite(first) or first < 3 * ctx.lnc:
        return None
    evidence = [
        Evidence(
            "evidence.initial_high",
            {"first": _fmt(first), "lnc": round(ctx.lnc, 4), "ratio": round(first / ctx.lnc, 1)},
            int(curve.steps[0]),
            ctx.curve_quote(curve, 0),
        )
    ]
    return RuleResult([Finding("LD110", "warning", evidence, int(curve.steps[0]), None, curve.label)])


@rule("LD111", "lr-schedule", curves=("lr",))
def lr_schedule(ctx: Context) -> RuleResult | None:
    """Recognises warm-up and decays in the logged lr, so the loss moves they cause are not alarms."""
    lr = ctx.lr
    assert lr is not None
    v = lr.values[np.isfinite(lr.values)]
    if len(v) < 3 or v.max() <= 0:
        return None
    peak_i = int(np.argmax(v))
    warmup = peak_i > 0 and v[0] < 0.5 * v[peak_i]
    drops = int(np.sum(v[1:] < 0.6 * v[:-1]))
    decay = v[-1] < 0.5 * v[peak_i]
    if not (warmup or decay):
        return None
    evidence = [
        Evidence(
            "evidence.lr_schedule",
            {
                "start": _fmt(float(v[0])),
                "peak": _fmt(float(v[peak_i])),
                "end": _fmt(float(v[-1])),
                "drops": drops,
            },
        )
    ]
    return RuleResult([Finding("LD111", "info", evidence, None, None, lr.label)])


def _fmt(value: float) -> str:
    """Numbers in evidence: 4 significant digits, NaN/inf as the log wrote them."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"
