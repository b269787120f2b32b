"""Robust curve features: the numbers the rules judge.

A curve of 3 points (one per epoch) and one of 4,000,000 (every Caffe iteration) are both reduced to
at most `Params.buckets` bucket medians/quantiles first, so every statistic is cheap and robust to the
batch-to-batch noise of a raw minibatch loss. Non-finite values (and Caffe's clamp 87.3365) are kept
apart: trend statistics use the finite prefix, the NaN rule uses the rest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import NamedTuple

import numpy as np
import pandas as pd

from diagnostics.params import CAFFE_CLAMP_LOSS, CAFFE_CLAMP_LOSS_DOUBLE, KNOWN_CLASS_COUNTS, Params


@dataclass
class Curve:
    """One series (sorted by step) with its bucketed summary and derived statistics."""

    label: str  # e.g. "train/loss (smoothed, average_loss=20)"
    steps: np.ndarray
    values: np.ndarray
    lines: np.ndarray
    sources: np.ndarray
    params: Params

    @classmethod
    def from_rows(cls, rows: pd.DataFrame, label: str, params: Params) -> Curve:
        return cls(
            label,
            rows["step"].to_numpy(dtype=np.int64),
            rows["value"].to_numpy(dtype=np.float64),
            rows["line"].to_numpy(dtype=np.int64),
            _labels(rows["source"]),
            params,
        )

    def __len__(self) -> int:
        return len(self.values)

    # ----- non-finite values ---------------------------------------------------------------
    @cached_property
    def bad(self) -> np.ndarray:
        """Non-finite points, counting Caffe's clamp values (87.3365 float, 708.396 double)."""
        v = self.values
        tol = self.params.clamp_tolerance
        with np.errstate(invalid="ignore"):
            clamp = (np.abs(v - CAFFE_CLAMP_LOSS) < tol) | (np.abs(v - CAFFE_CLAMP_LOSS_DOUBLE) < tol)
        return ~np.isfinite(v) | clamp

    @cached_property
    def _broken_index(self) -> int:
        """The index from which the loss is non-finite for good (len when it never is): isolated NaN,
        e.g. a skipped fp16 step, do not count."""
        bad = self.bad
        n = len(bad)
        if not bad.any():
            return n
        share_bad_from_here = np.cumsum(bad[::-1])[::-1] / np.arange(n, 0, -1)
        persistent = np.flatnonzero(bad & (share_bad_from_here >= self.params.nan_persist_fraction))
        return int(persistent[0]) if len(persistent) else n

    @property
    def broken_from(self) -> float | None:
        """The step from which the loss is non-finite for good (the weights are gone), else None."""
        cut = self._broken_index
        return float(self.steps[cut]) if cut < len(self.values) else None

    @cached_property
    def trend_index(self) -> np.ndarray:
        """Indices of the points trends are judged on: the finite ones before the loss turns
        non-finite for good."""
        return np.flatnonzero(~self.bad[: self._broken_index])

    @property
    def trend_values(self) -> np.ndarray:
        return self.values[self.trend_index]

    @property
    def first_finite(self) -> float | None:
        """The first finite value (the untrained net's loss when the log starts at the first update)."""
        finite = self.values[np.isfinite(self.values)]
        return float(finite[0]) if len(finite) else None

    # ----- bucketed summary of the trend points -------------------------------------------------
    @cached_property
    def buckets(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(step, median, q10, q90) per bucket over the trend points; short curves stay as they are."""
        x, y = self.steps[self.trend_index].astype(np.float64), self.trend_values
        n = len(y)
        count = self.params.buckets
        if n <= count:
            return x, y, y, y
        width = n // count
        starts = (np.arange(count) * n) // count
        take = starts[:, None] + np.arange(width)[None, :]
        block = y[take]
        q10, med, q90 = np.percentile(block, [10, 50, 90], axis=1)
        return x[starts + width // 2], med, q10, q90

    @property
    def bx(self) -> np.ndarray:
        return self.buckets[0]

    @property
    def by(self) -> np.ndarray:
        return self.buckets[1]

    @cached_property
    def start_level(self) -> float:
        by = self.by
        if not len(by):
            return math.nan
        head = max(1, round(len(by) * self.params.head_fraction)) if len(by) >= 20 else 1
        return float(np.median(by[:head]))

    @cached_property
    def end_level(self) -> float:
        by = self.by
        if not len(by):
            return math.nan
        tail = max(1, round(len(by) * self.params.tail_fraction)) if len(by) >= 7 else 1
        return float(np.median(by[-tail:]))

    @cached_property
    def smooth_by(self) -> np.ndarray:
        """Bucket medians under a centred running median of ~4% of the curve: the best level of a
        noisy curve is a level it held for a while, not one lucky bucket."""
        by = self.by
        window = max(1, len(by) // 25) | 1
        if window == 1:
            return by
        return pd.Series(by).rolling(window, center=True, min_periods=1).median().to_numpy()

    @cached_property
    def min_index(self) -> int:
        return int(np.argmin(self.smooth_by)) if len(self.by) else 0

    @property
    def min_level(self) -> float:
        return float(self.smooth_by[self.min_index]) if len(self.by) else math.nan

    @property
    def min_step(self) -> int:
        return int(self.bx[self.min_index])

    def drop(self, reference: float | None = None) -> float:
        """How far the best level fell below the start, relative to `reference` (default: the start)."""
        ref = reference if reference else abs(self.start_level)
        return (self.start_level - self.min_level) / ref if ref else 0.0

    @cached_property
    def tau(self) -> float:
        """Kendall tau of bucket medians against time: -1 steadily falling, +1 steadily rising."""
        return kendall(self.by)

    def tau_between(self, lo: float, hi: float) -> float:
        """Kendall tau on the part of the curve between two fractions of its length."""
        n = len(self.by)
        return kendall(self.by[int(lo * n) : max(int(hi * n), int(lo * n) + 1)])

    def level_at(self, fraction: float) -> float:
        """Median level of a window of buckets centred at a fraction of the run."""
        n = len(self.by)
        if not n:
            return math.nan
        half = max(1, n // 20)
        i = min(n - 1, int(fraction * (n - 1)))
        return float(np.median(self.by[max(0, i - half) : i + half + 1]))

    def step_at(self, index: int) -> int:
        return int(self.steps[index])

    def theil_slope(self, start: int = 0) -> float:
        """Theil-Sen slope per step of the bucket medians from bucket `start` on (robust to outliers)."""
        if len(self.by) - start < 3:
            return 0.0
        return float(_stats().theilslopes(self.by[start:], self.bx[start:]).slope)


def _labels(column: pd.Series) -> np.ndarray:
    """Per-row labels of a categorical column, picked from its few categories (a large log's
    curve has a million rows; making a string for each costs a tenth of a second)."""
    if not isinstance(column.dtype, pd.CategoricalDtype):
        return column.astype(str).to_numpy()
    labels = np.append(column.cat.categories.astype(str).to_numpy(dtype=object), "")
    return labels[column.cat.codes.to_numpy()]  # code -1 (missing) picks the appended ""


def _stats():
    """scipy.stats, imported on first use: it takes half a second, which a run whose curve needs no
    trend test (or a command that only parses) should not pay."""
    from scipy import stats

    return stats


def preload_stats() -> None:
    """Import scipy.stats now (the CLI does it in the background while the log is parsed)."""
    _stats()


def kendall(y: np.ndarray) -> float:
    if len(y) < 3 or np.ptp(y) == 0:
        return 0.0
    tau = _stats().kendalltau(np.arange(len(y)), y).statistic
    return 0.0 if math.isnan(tau) else float(tau)


def recognise_classes(initial_loss: float, tolerance: float) -> int | None:
    """C such that the initial loss is ln(C) (a freshly initialised classifier predicts uniformly)."""
    if not math.isfinite(initial_loss) or initial_loss <= 0:
        return None
    for c in KNOWN_CLASS_COUNTS:
        if abs(initial_loss - math.log(c)) <= tolerance * math.log(c):
            return c
    return None


def excursions(curve: Curve) -> list[tuple[int, float, float]]:
    """Points of the trend far above a rolling median (robust z by the rolling MAD, and a multiple of
    the median) that come back down within `spike_recover_points`: (index, value, baseline). Spikes and
    the heavy tail of minibatch noise alike; `material` keeps the ones that matter."""
    p = curve.params
    y = curve.trend_values
    n = len(y)
    if n < 3 * p.spike_window:
        return []
    # Long curves: judge bucket maxima against bucket medians, one candidate per block.
    block = max(1, n // 20000)
    if block > 1:
        m = n // block
        blocks = y[: m * block].reshape(m, block)
        peak_at = np.argmax(blocks, axis=1)
        ys = blocks[np.arange(m), peak_at]
        base_src = np.median(blocks, axis=1)
        index = np.arange(m) * block + peak_at
    else:
        ys, base_src, index = y, y, np.arange(n)
    series = pd.Series(base_src)
    base = series.rolling(p.spike_window, center=True, min_periods=3).median().to_numpy()
    mad = (series - base).abs().rolling(p.spike_window, center=True, min_periods=3).median().to_numpy()
    scale = np.maximum(1.4826 * mad, 1e-12 + 1e-3 * np.abs(base))
    with np.errstate(invalid="ignore"):
        tall = (ys - base) / scale > p.spike_mad
        cand = np.flatnonzero(tall & (ys > p.spike_ratio * np.abs(base)))
    out = []
    recover = max(1, p.spike_recover_points // block)
    for i in cand:
        after = base_src[i + 1 : i + 1 + recover]  # block medians: the typical level after the spike
        # Recovered: the excess over the running level halves (a big spike may leave a bump behind).
        if len(after) and np.min(after) < base[i] + 0.5 * (ys[i] - base[i]):
            out.append((int(curve.trend_index[index[i]]), float(ys[i]), float(base[i])))
    return out


def material(found: list[tuple[int, float, float]], curve: Curve) -> list[tuple[int, float, float]]:
    """The excursions that move the loss by a material share (`spike_min_height`) of the curve's initial
    level: a robust z and a ratio over the rolling median both grow without bound as the loss nears zero,
    where a jump from 0.001 to 0.02 is minibatch noise, while a bad batch throws the loss back towards
    where it started."""
    floor = curve.params.spike_min_height * abs(curve.start_level)
    return [(i, value, base) for i, value, base in found if value - base >= floor]


def searched_excursions(curve: Curve) -> list[tuple[int, float, float]]:
    """The excursions LD108 judges: those after the first `spike_skip_start` share of the run (the
    initial drop and a warm-up are not searched)."""
    skip = int(curve.params.spike_skip_start * len(curve))
    return [found for found in excursions(curve) if found[0] >= skip]


def epoch_last_steps(rows: pd.DataFrame) -> np.ndarray:
    """The steps of the rows that end an epoch: the next row is in a later epoch. Print logs count whole
    epochs (`epoch 9 step 90`, then `epoch 10 step 91`); HF logs the epoch as a fraction that reaches
    1.0 at the last step of the first epoch (then 1.02): both are an epoch's end when the epoch rounded up
    grows at the next row. Empty without an epoch column."""
    epochs = np.round(rows["epoch"].to_numpy(dtype=float), 6)
    if len(epochs) < 2:
        return np.zeros(0, dtype=np.int64)
    with np.errstate(invalid="ignore"):
        ceiled = np.ceil(epochs)
        ends = np.isfinite(ceiled[:-1]) & np.isfinite(ceiled[1:]) & (ceiled[1:] > ceiled[:-1])
    return np.unique(rows["step"].to_numpy(dtype=np.int64)[:-1][ends])


def spikes_are_noise(count: int, points: int, p: Params) -> bool:
    """More spikes than `spike_max_fraction` of the points (plus `spike_min_count`): heavy-tailed noise,
    not isolated spikes."""
    return count > p.spike_max_fraction * points + p.spike_min_count


def swing(curve: Curve, threshold: float) -> tuple[float, int]:
    """(amplitude, reversals) of the bucket medians: the size of the swings relative to the level
    (q90-q10 after removing the linear trend), and how many times the curve reverses direction by
    more than `threshold` x level (a zigzag count, AUTOTRAINER's max/min pairs on bucketed data)."""
    y = curve.by
    if len(y) < 6:
        return 0.0, 0
    level = float(np.median(np.abs(y))) or 1.0
    x = np.arange(len(y))
    slope, intercept = np.polyfit(x, y, 1)
    q10, q90 = np.percentile(y - (slope * x + intercept), [10, 90])
    step = threshold * level
    reversals, direction, extreme = 0, 0, float(y[0])
    for value in map(float, y[1:]):
        if direction == 0:
            if abs(value - extreme) > step:
                direction, extreme = (1 if value > extreme else -1), value
        elif direction * (value - extreme) > 0:
            extreme = value  # the swing continues
        elif abs(value - extreme) > step:
            direction, extreme, reversals = -direction, value, reversals + 1
    return float((q90 - q10) / level), reversals


# ----- the lr schedule ---------------------------------------------------------------------------
class LrDecay(NamedTuple):
    """One cut of the learning rate: at `step` it fell from `before` to `after`."""

    step: int
    before: float
    after: float
    fraction_of_run: float  # where the cut lies in the run's steps, 0..1


def lr_decays(
    steps: np.ndarray, values: np.ndarray, factor: float, span: tuple[float, float] | None = None
) -> list[LrDecay]:
    """The steps where the lr falls below `factor` x its previous logged value (a sharp cut: a smooth
    schedule such as cosine or poly drops a little every step and does not count). A point counts when
    its value is finite and the previous one positive. `fraction_of_run` is measured between the
    first and last step of `span` (default: the lr's own steps). The one definition of an lr decay,
    shared by the rules (LD104, LD111) and the chart's decay markers."""
    values = np.asarray(values, dtype=np.float64)
    steps = np.asarray(steps)
    if len(values) < 2:
        return []
    previous, current = values[:-1], values[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        drops = np.isfinite(current) & (previous > 0) & (current < factor * previous)
    first, last = span if span is not None else (float(steps[0]), float(steps[-1]))
    out = []
    for at in np.flatnonzero(drops) + 1:
        fraction = (float(steps[at]) - first) / max(last - first, 1.0)
        out.append(
            LrDecay(int(steps[at]), float(values[at - 1]), float(values[at]), min(max(fraction, 0.0), 1.0))
        )
    return out


def lr_rose(steps: np.ndarray, values: np.ndarray, lo: int, hi: int, ratio: float) -> bool:
    """The finite lr between steps `lo` and `hi` rose above `ratio` x its value at `lo` (a warm
    restart or a rising schedule)."""
    mask = (steps >= lo) & (steps <= hi) & np.isfinite(values)
    window = values[mask]
    return len(window) >= 2 and window.max() > ratio * max(window[0], 1e-30)
