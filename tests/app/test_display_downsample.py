"""Display downsampling keeps spikes and every NaN/inf; EMA matches TensorBoard's debiased formula."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

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


def test_thousands_of_points_at_one_step_are_downsampled_not_a_panic():
    # MinMaxLTTB's x buckets panicked (pyo3 PanicException) past ~8,000 points sharing a step
    values = np.r_[np.linspace(1.0, 2.0, 20_000), [np.nan]]
    result = downsample(np.full(20_001, 7), values, n_out=400)
    assert len(result.x) <= 400 and set(result.x) == {7.0}
    assert result.y.min() == 1.0 and result.y.max() == 2.0  # the extremes survive
    assert np.isnan(result.nonfinite_y).tolist() == [True]


finite_or_not = st.floats(allow_nan=True, allow_infinity=True)


@settings(max_examples=150, derandomize=True, database=None, deadline=None)
@given(
    points=st.lists(st.tuples(finite_or_not, finite_or_not), max_size=40),
    repeat=st.integers(min_value=1, max_value=3000),
    n_out=st.integers(min_value=0, max_value=600),
)
def test_downsample_never_raises_and_keeps_every_nonfinite_value(points, repeat, n_out):
    # duplicate steps, a single step, NaN/inf steps and values, 1e308 spans: every kind of series
    x = np.repeat([p[0] for p in points], repeat)
    y = np.repeat([p[1] for p in points], repeat)
    result = downsample(x, y, n_out=n_out)
    finite = np.isfinite(y).sum()
    assert len(result.x) == len(result.y) <= (finite if finite <= n_out or n_out < 4 else n_out)
    assert np.isfinite(result.y).all() and len(result.nonfinite_y) == len(y) - finite
