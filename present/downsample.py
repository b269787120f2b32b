"""Display-only downsampling that never hides a spike or a NaN.

A 1,000,000-point curve cannot be drawn interactively in a browser, and the diagnosis never looks at
the downsampled data. MinMaxLTTB (tsdownsample, Rust) keeps each bucket's extremes, so spikes
survive; non-finite values are taken out before downsampling and returned separately so the chart
can mark every one of them where it happened.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.signal import lfilter
from tsdownsample import MinMaxLTTBDownsampler

DEFAULT_POINTS = 4000


@dataclass(frozen=True)
class Downsampled:
    x: np.ndarray  # steps of the finite points kept (float64, ascending)
    y: np.ndarray  # their values
    nonfinite_x: np.ndarray  # steps of every NaN / +-inf value, none dropped
    nonfinite_y: np.ndarray  # the NaN / +-inf values themselves
    original_points: int


def downsample(x: np.ndarray, y: np.ndarray, n_out: int = DEFAULT_POINTS) -> Downsampled:
    """Keep at most ~n_out finite points (extremes preserved) and all non-finite points."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    finite = np.isfinite(y)
    fx, fy = x[finite], y[finite]
    if len(fx) > n_out and n_out >= 4:
        keep = _kept(fx, fy, n_out)
        fx, fy = fx[keep], fy[keep]
    return Downsampled(fx, fy, x[~finite], y[~finite], original_points=len(x))


def _kept(x: np.ndarray, y: np.ndarray, n_out: int) -> np.ndarray:
    """Indices MinMaxLTTB keeps. Its buckets are equal spans of x, which panic (a Rust index out of
    bounds, not even an Exception) when many points share one step; unless the steps strictly increase
    over a finite span, the buckets are equal runs of points instead."""
    downsampler = MinMaxLTTBDownsampler()
    if np.isfinite(x[-1] - x[0]) and (np.diff(x) > 0).all():
        return downsampler.downsample(x, y, n_out=n_out)
    return downsampler.downsample(y, n_out=n_out)


def ema(values: np.ndarray, weight: float) -> np.ndarray:
    """TensorBoard's debiased exponential moving average over the finite values (vectorised with
    scipy's lfilter). Non-finite values stay where they are and do not poison the average."""
    values = np.asarray(values, dtype=np.float64)
    out = values.copy()
    finite = np.isfinite(values)
    if weight <= 0 or not finite.any():
        return out
    smoothed = lfilter([1 - weight], [1, -weight], values[finite])
    debias = 1 - weight ** np.arange(1, len(smoothed) + 1)
    out[finite] = smoothed / debias
    return out
