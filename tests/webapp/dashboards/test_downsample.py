"""Downsampling keeps spikes, is deterministic, stays within budget and is exact below it."""

import numpy as np
import pytest

from webapp.dashboards.series import Series
from webapp.experiments.downsample import minmax_indices, round_significant


def noisy(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=n).cumsum()


@pytest.mark.parametrize("n", [5, 1000, 1001, 99_999, 100_000, 1_000_003])
@pytest.mark.parametrize("budget", [10, 1000, 1500, 2000])
def test_never_more_points_than_the_budget_and_always_the_ends(n, budget):
    values = noisy(n)
    picked = minmax_indices(values, budget)
    assert len(picked) <= max(budget, n if n <= budget else 0)
    assert picked[0] == 0 and picked[-1] == n - 1
    assert np.all(np.diff(picked) > 0), "indices are strictly increasing"


def test_below_the_budget_every_point_is_kept():
    values = noisy(1500)
    assert minmax_indices(values, 1500).tolist() == list(range(1500))


def test_single_step_spikes_up_and_down_survive_a_hundredfold_reduction():
    values = np.sin(np.linspace(0, 20, 100_000))
    values[12_345] = 50.0
    values[87_654] = -50.0
    picked = minmax_indices(values, 1000)
    assert 12_345 in picked and 87_654 in picked
    assert values[picked].max() == values.max() and values[picked].min() == values.min()


def test_every_bucket_extreme_is_kept_so_the_envelope_is_exact():
    values = noisy(10_000, seed=3)
    picked = minmax_indices(values, 200)
    # the drawn envelope over any quarter equals the true one
    for quarter in np.array_split(np.arange(10_000), 4):
        inside = picked[(picked >= quarter[0]) & (picked <= quarter[-1])]
        assert values[inside].max() <= values[quarter].max()
    assert values[picked].max() == values.max()


def test_the_same_data_gives_the_same_points():
    values = noisy(250_000, seed=7)
    assert np.array_equal(minmax_indices(values, 1500), minmax_indices(values.copy(), 1500))


def test_nan_never_hides_a_real_extreme():
    values = np.arange(1000, dtype=float)
    values[::2] = np.nan
    picked = minmax_indices(values, 20)
    assert not np.isnan(values[picked[1:-1]]).all()
    assert 999 in picked


def test_range_zoom_returns_raw_points_when_they_fit_else_downsampled_within_the_range():
    steps = np.arange(0, 200_000, 2, dtype=np.int64)
    values = noisy(len(steps))
    full = Series(steps, values, steps * 0.1, len(steps))
    narrow = full.within(1000, 2998)
    assert narrow.steps.tolist() == list(range(1000, 3000, 2)) and not narrow.take(1500).sampled
    wide = full.within(10_000, 150_000).take(1500)
    assert len(wide.steps) <= 1500 and wide.steps[0] == 10_000 and wide.steps[-1] == 150_000
    assert wide.sampled


def test_rounding_keeps_six_significant_digits_and_prints_short():
    rounded = round_significant(np.array([0.123456789, 123456.789, -9.87654321e-7, 0.0, np.nan]))
    assert repr(rounded.tolist()) == "[0.123457, 123457.0, -9.87654e-07, 0.0, nan]"
