"""LD105, LD108: the shape of a loss that still learns: swings that keep reversing, isolated spikes.

Texts (title, why, example, fix) live in `i18n/rules.toml` under `rules.<id>`.
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np

from diagnostics.context import Context
from diagnostics.features import (
    Curve,
    epoch_last_steps,
    kendall,
    material,
    searched_excursions,
    spikes_are_noise,
    swing,
)
from diagnostics.model import Evidence, Finding
from diagnostics.params import Params
from diagnostics.registry import RuleResult, rule
from diagnostics.rules._common import fmt, symptom_result


# ----- LD105 -------------------------------------------------------------------------------------
@rule("LD105", "loss-oscillates", curves=("train_loss",), symptom="oscillating")
def loss_oscillates(ctx: Context) -> RuleResult | None:
    """Large swings of the (bucketed) loss that keep reversing, without a downward trend."""
    p, curve = ctx.params, ctx.train_loss
    assert curve is not None
    if len(curve.by) < p.ld105_min_buckets:
        return None
    amplitude, reversals = swing(curve, p.oscillation_step)
    needed = min(
        p.oscillation_reversals, max(p.ld105_min_reversals, len(curve.by) // p.ld105_buckets_per_reversal)
    )
    if amplitude < p.oscillation_amplitude or reversals < needed or curve.tau < p.oscillation_max_tau:
        return None
    evidence = [
        Evidence(
            "evidence.swings",
            {"amplitude_pct": round(100 * amplitude), "reversals": reversals, "tau": round(curve.tau, 2)},
        )
    ]
    measurements = {"amplitude": amplitude, "reversals": float(reversals)}
    steady = _eval_falls_steadily(ctx)
    if steady is not None:
        # The model that was evaluated kept improving: the swings are the batches the log sampled.
        evidence.append(steady)
        measurements["eval_steady"] = 1.0
        finding = Finding("LD105", "info", evidence, int(curve.bx[0]), None, curve.label, measurements)
        return RuleResult([finding])
    confidence = min(
        p.ld105_max_confidence, p.ld105_confidence_base + amplitude * p.ld105_confidence_per_amplitude
    )
    return symptom_result(
        ctx, "LD105", "oscillating", confidence, curve, int(curve.bx[0]), evidence, "warning", measurements
    )


def _eval_falls_steadily(ctx: Context) -> Evidence | None:
    """Evidence that the evaluation loss fell steadily (Kendall tau at most `ld105_eval_tau`, no rise
    between two evaluations over `ld105_eval_max_rise`) and ended well below its first value (by
    `ld105_eval_drop`), or None. An evaluation that turned non-finite is no steady reference."""
    p, val = ctx.params, ctx.val_loss
    if val is None:
        return None
    values = val.values
    if len(values) < p.ld105_eval_min_points or not np.isfinite(values).all() or values[0] <= 0:
        return None
    tau = kendall(values)
    drop = 1.0 - float(values[-1]) / float(values[0])
    with np.errstate(divide="ignore", invalid="ignore"):
        jump = float(np.max(values[1:] / values[:-1])) - 1.0  # nan (0/0) fails the test below too
    if tau > p.ld105_eval_tau or drop < p.ld105_eval_drop or not jump <= p.ld105_eval_max_rise:
        return None
    params = {"first": fmt(float(values[0])), "last": fmt(float(values[-1])), "tau": round(tau, 2)}
    return Evidence("evidence.swings_eval_steady", params, int(val.steps[-1]))


# ----- LD108 -------------------------------------------------------------------------------------
def episodes_on_beat(steps: np.ndarray, period: float, tolerance: float) -> int:
    """How many steps share one phase of `period` within `tolerance` x period: the beat's phase is the
    one most of them share. Counted on the sorted ring of phases, so the thousands of spike episodes of
    a long noisy log cost n log n, not n^2."""
    phase = np.sort(np.mod(steps, period))
    ring = np.concatenate([phase - period, phase, phase + period])
    width = tolerance * period
    within = np.searchsorted(ring, phase + width, side="right") - np.searchsorted(ring, phase - width)
    return min(int(within.max()), len(steps))  # a tolerance of half a period or more counts all


def _spike_period(curve: Curve, found: list[tuple[int, float, float]], p: Params) -> int | None:
    """The steps between spike episodes when enough of them recur on one beat, else None: the period is
    the typical gap between episodes, and an episode is on the beat when its step falls within
    `ld108_period_tolerance` of a period of the others (so a pass where the bad batch did not spike
    leaves the beat intact). Episodes off the beat (an after-shock, an early blow-up) are strays, and
    may be up to `ld108_period_max_strays` of them. Spikes fewer than `ld108_period_min_gap` points
    apart are one episode: one bad stretch of data, or one steep stretch of the curve, not a period."""
    if len(found) < p.ld108_period_min_spikes:
        return None
    # Spikes closer than `ld108_period_min_gap` points are one episode (a bad stretch of data spans a
    # few logged points); the episodes' starts are what recurs.
    starts = [found[0][0]]
    for (previous, _, _), (index, _, _) in pairwise(found):
        if index - previous >= p.ld108_period_min_gap:
            starts.append(index)
    if len(starts) < p.ld108_period_min_spikes:
        return None
    steps = np.array([curve.step_at(i) for i in starts], dtype=float)
    gaps = np.diff(steps)
    typical = float(np.median(gaps))
    # The beat is the mean of the gaps near the typical one: a period that is not a whole number of
    # logged steps (every 37.5 steps, logged every 5) alternates 35 and 40, and the beat must not drift.
    near = gaps[np.abs(gaps - typical) <= p.ld108_period_tolerance * typical]
    period = float(near.mean()) if len(near) else typical
    if period <= 0:
        return None
    on_beat = episodes_on_beat(steps, period, p.ld108_period_tolerance)
    strays = len(steps) - on_beat
    if on_beat < p.ld108_period_min_spikes or strays > p.ld108_period_max_strays * len(steps):
        return None
    return round(period)


def _spikes_at_epoch_ends(ctx: Context, curve: Curve, found: list[tuple[int, float, float]]) -> int | None:
    """How many spikes sit on the last logged step of an epoch, when they are most of them: the last
    batch of an epoch is smaller when the data set does not divide into batches (`drop_last=False`), so
    its loss is noisier (or scaled by its size); None otherwise, or when such steps are no rarity."""
    p = ctx.params
    ends = epoch_last_steps(ctx.rows("loss_raw" if curve is ctx.train_loss_raw else "loss", "train"))
    if not len(ends) or len(ends) > p.ld108_epoch_end_max_points * len(curve):
        return None
    at_end = int(np.isin([curve.step_at(i) for i, _, _ in found], ends).sum())
    if at_end < p.ld108_epoch_end_min_spikes or at_end < p.ld108_epoch_end_share * len(found):
        return None
    return at_end


@rule("LD108", "loss-spikes", curves=("train_loss",), symptom="spiky")
def loss_spikes(ctx: Context) -> RuleResult | None:
    """Isolated spikes far above the rolling median that come back down."""
    p = ctx.params
    curve = ctx.train_loss_raw or ctx.train_loss
    assert curve is not None
    tail = searched_excursions(curve)
    found = material(tail, curve)
    period = _spike_period(curve, found, p)
    # Many excursions are noise, unless the spikes come back at a fixed period: the same bad stretch of
    # data met once per pass over it (or every k-th batch of a broken loader worker). The count is of
    # every tall excursion, not only the material ones: heavy-tailed noise shows as many small ones
    # around its few big ones, a bad batch stands alone.
    if not found or (spikes_are_noise(len(tail), len(curve.trend_index), p) and period is None):
        return None
    top = max(found, key=lambda s: s[1] / max(s[2], 1e-12))
    evidence = [
        Evidence(
            "evidence.spikes",
            {"count": len(found), "value": fmt(top[1]), "base": fmt(top[2]), "step": curve.step_at(top[0])},
            curve.step_at(top[0]),
            ctx.curve_quote(curve, top[0]),
        )
    ]
    measurements = {"spikes": float(len(found)), "periodic_spikes": 0.0}
    at_epoch_end = _spikes_at_epoch_ends(ctx, curve, found)
    if at_epoch_end is not None:
        # The last, partial batch of each epoch: a note with its fix (drop_last), not a fault.
        values = {"at_end": at_epoch_end, "count": len(found)}
        evidence.append(Evidence("evidence.spikes_at_epoch_end", values))
        measurements["epoch_end_spikes"] = float(at_epoch_end)
    if len(found) < p.spike_min_count or at_epoch_end is not None:
        finding = Finding("LD108", "info", evidence, curve.step_at(top[0]), None, curve.label, measurements)
        return RuleResult([finding])
    if period is not None:
        measurements["periodic_spikes"] = 1.0
        evidence.append(Evidence("evidence.spikes_periodic", {"count": len(found), "period": period}))
    confidence = min(
        p.ld108_max_confidence, p.ld108_confidence_base + p.ld108_confidence_per_spike * len(found)
    )
    onset = curve.step_at(found[0][0])
    return symptom_result(ctx, "LD108", "spiky", confidence, curve, onset, evidence, "warning", measurements)
