"""Display downsampling keeps spikes and every NaN/inf; EMA matches TensorBoard's debiased formula."""

from __future__ import annotations

import numpy as np

from present.downsample import downsample, ema


def test_million_points_shrink_but_keep_spike_and_every_nonfinite():
    rng = np.random.default_rng(0)
    steps = np.arange(1_000_000)
    values = 1.0 + 0.01 * rng.standard_normal(len(steps))
    values[654_321] = 250.0  # one-step spike
    values[[10, 500_000, 999_999]] = [np.nan, np.inf, -np.inf]
    result = downsample(steps, values, n_out=2000)
    assert len(result.x) <= 2000
    assert 654_321 in result.x and result.y.max() == 250.0
    assert list(result.nonfinite_x) == [10, 500_000, 999_999]
    assert np.isnan(result.nonfinite_y[0]) and np.isposinf(result.nonfinite_y[1])
    assert np.isfinite(result.y).all()


def test_short_series_is_untouched_and_sorted():
    result = downsample(np.array([3, 1, 2]), np.array([30.0, 10.0, 20.0]), n_out=2000)
    assert list(result.x) == [1, 2, 3] and list(result.y) == [10, 20, 30]


def test_ema_matches_tensorboard_debiased_smoothing_and_skips_nan():
    weight = 0.6
    values = np.array([1.0, 2.0, np.nan, 3.0, 4.0])
    expected, last = [], 0.0
    for n, v in enumerate([1.0, 2.0, 3.0, 4.0], start=1):
        last = last * weight + (1 - weight) * v
        expected.append(last / (1 - weight**n))
    smoothed = ema(values, weight)
    assert np.isnan(smoothed[2])
    np.testing.assert_allclose(smoothed[[0, 1, 3, 4]], expected)
    np.testing.assert_array_equal(ema(values, 0.0), values)
