"""Measurements of large-model instabilities: how loss spikes recover, whether a grad-norm spike came
first, where warm-up ends, and how an fp16 dynamic loss scale behaved.

Pure functions over arrays (no rules, no prose), so the rules in `diagnostics/rules/instability.py`
and the tests share one definition. The spike classes follow the practitioners' taxonomy (stas00's
"ML engineering", training-loss-patterns): a spike recovers fast, recovers slowly, or does not recover
(the loss settles at a new, higher level).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

SpikeKind = Literal["fast", "slow", "level_shift"]


@dataclass(frozen=True)
class Spike:
    """One excursion of the loss far above its recent level, and what the loss did afterwards."""

    index: int  # position of the peak (a level shift: of the jump) in the arrays given
    step: int
    peak: float
    base: float  # the median of the points before it (its trailing window)
    kind: SpikeKind
    recovered_step: int | None  # first step where the excess over `base` had halved
    onset_step: int | None = None  # first step of the excursion (the peak may come later)

    @property
    def height(self) -> float:
        """Peak over base (x3.2 means the loss jumped to 3.2 times its recent level)."""
        return self.peak / self.base if self.base > 0 else math.inf

    @property
    def recovery_steps(self) -> int | None:
        return None if self.recovered_step is None else self.recovered_step - self.step


def classify_spikes(
    steps: np.ndarray,
    values: np.ndarray,
    *,
    window: int,
    robust_z: float,
    min_ratio: float,
    fast_points: int,
) -> list[Spike]:
    """Spikes of a finite, positive-valued curve judged against the trailing `window` points (robust
    z of log values over the trailing MAD, and at least `min_ratio` x the trailing median), one per
    excursion (its peak). It is back when it is no longer `min_ratio` x the base and its excess over the
    base has halved: within `fast_points` points of the peak it was fast, later slow; never before the
    curve ends, a level shift. The last `fast_points` of
    the curve are too recent to judge and give no spike."""
    y = np.asarray(values, dtype=float)
    n = len(y)
    if n < window + fast_points + 1 or not np.all(np.isfinite(y)) or np.min(y) <= 0:
        return []
    log_y = pd.Series(np.log(y))
    trailing = log_y.shift(1).rolling(window, min_periods=window)
    median = trailing.median().to_numpy()
    mad = (log_y.shift(1) - median).abs().rolling(window, min_periods=window).median().to_numpy()
    scale = np.maximum(1.4826 * mad, 1e-3)
    with np.errstate(invalid="ignore"):
        hot = ((log_y.to_numpy() - median) / scale > robust_z) & (
            log_y.to_numpy() - median > math.log(min_ratio)
        )
    hot[n - fast_points :] = False
    found: list[Spike] = []
    i = 0
    while i < n:
        if not hot[i]:
            i += 1
            continue
        base = math.exp(median[i])
        peak, recovered = i, None
        for j in range(i + 1, n):
            # back: no longer far above the base, and the excess over it at least halved
            if y[j] < min(base * min_ratio, base + 0.5 * (y[peak] - base)):
                recovered = j
                break
            if y[j] > y[peak]:
                peak = j
        if recovered is None:  # a level shift: dated at the jump, its height from the points after it
            top = float(np.max(y[i : i + fast_points]))
            found.append(Spike(i, int(steps[i]), top, base, "level_shift", None, int(steps[i])))
            break  # nothing after a level shift is judged against the old level
        kind: SpikeKind = "fast" if recovered - peak <= fast_points else "slow"
        found.append(
            Spike(peak, int(steps[peak]), float(y[peak]), base, kind, int(steps[recovered]), int(steps[i]))
        )
        i = recovered + 1
    return found


def leading_jump(
    steps: np.ndarray, values: np.ndarray, at_step: int, lookback_steps: int, window: int, ratio: float
) -> tuple[int, float] | None:
    """The earliest point of another series (e.g. the grad norm) in the `lookback_steps` up to
    `at_step` that is at least `ratio` x the median of its `window` points before the lookback: the
    grad norm jumped before the loss did. (step, ratio) or None."""
    s = np.asarray(steps)
    v = np.asarray(values, dtype=float)
    lo = at_step - lookback_steps
    before = v[(s < lo) & np.isfinite(v)][-window:]
    if len(before) < max(3, window // 2):
        return None
    base = float(np.median(before))
    if base <= 0:
        return None
    inside = np.flatnonzero((s >= lo) & (s <= at_step) & np.isfinite(v) & (v >= ratio * base))
    if not len(inside):
        return None
    first = int(inside[0])
    return int(s[first]), float(v[first] / base)


def warmup_end(steps: np.ndarray, lr: np.ndarray, warmup_share: float) -> int | None:
    """The step where a warm-up ends: the first point at the lr's peak, when the first lr is below
    `warmup_share` of that peak (else there was no warm-up)."""
    v = np.asarray(lr, dtype=float)
    finite = np.isfinite(v)
    if finite.sum() < 3:
        return None
    s, v = np.asarray(steps)[finite], v[finite]
    peak = float(v.max())
    if peak <= 0 or v[0] >= warmup_share * peak:
        return None
    first_peak = int(np.flatnonzero(v >= peak * (1 - 1e-9))[0])
    return int(s[first_peak]) if first_peak > 0 else None


@dataclass(frozen=True)
class LossScaleHistory:
    """What a dynamic fp16 loss scaler did: it halves on every overflow and doubles after a window of
    clean steps, so a healthy run shows a saw-tooth around a stable level and a failing one a slide."""

    start: float
    peak: float
    end: float
    minimum: float
    halvings: int
    peak_step: int
    end_step: int

    @property
    def slide_doublings(self) -> float:
        """How many halvings the scale lost from its peak to the end (log2 of peak / end)."""
        if self.end <= 0 or self.peak <= 0:
            return math.inf
        return math.log2(self.peak / self.end)


def loss_scale_history(steps: np.ndarray, scale: np.ndarray) -> LossScaleHistory | None:
    """Summary of a logged loss-scale series (NaN points dropped); None with fewer than 2 points."""
    v = np.asarray(scale, dtype=float)
    keep = np.isfinite(v)
    if keep.sum() < 2:
        return None
    s, v = np.asarray(steps)[keep], v[keep]
    peak_i = int(np.argmax(v))
    with np.errstate(divide="ignore", invalid="ignore"):
        halvings = int(np.sum(v[1:] < v[:-1]))
    return LossScaleHistory(
        float(v[0]), float(v[peak_i]), float(v[-1]), float(v.min()), halvings, int(s[peak_i]), int(s[-1])
    )
