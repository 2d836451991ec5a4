import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fruits_p8.errors import ParameterError
from fruits_p8.reduce.moments import (
    Moments,
    fit_from_moments,
    fit_in_results,
    merge_all,
    principal_components,
    standardise,
)
from fruits_p8.reduce.pca import check_k, cumulative_variance, k_for_variance


def data(rows: tuple[int, int] = (3, 40), cols: tuple[int, int] = (1, 12)):
    return st.tuples(st.integers(*rows), st.integers(*cols)).flatmap(
        lambda shape: arrays(np.float64, shape, elements=st.floats(-100, 100, width=32))
    )


@settings(max_examples=80, deadline=None)
@given(data(), st.integers(1, 5))
def test_moments_merge_in_any_split_equals_one_pass(x, pieces):
    whole = Moments.empty(x.shape[1]).add(x)
    parts = [Moments.empty(x.shape[1]).add(chunk) for chunk in np.array_split(x, pieces)]
    merged = merge_all(parts, x.shape[1])
    assert merged.n == whole.n
    assert np.allclose(merged.total, whole.total)
    assert np.allclose(merged.gram, whole.gram)
    back = Moments.from_bytes(merged.to_bytes(), x.shape[1])
    assert back.n == merged.n and np.array_equal(back.gram, merged.gram)


@settings(max_examples=80, deadline=None)
@given(data())
def test_standardise_matches_numpy(x):
    stats = standardise(Moments.empty(x.shape[1]).add(x))
    assert np.allclose(stats.mean, x.mean(axis=0), atol=1e-9)
    assert np.allclose(stats.std, x.std(axis=0, ddof=1), rtol=1e-6, atol=1e-6)
    std = x.std(axis=0, ddof=1)
    keep = std > 1e-6 * (1 + np.abs(x).max())
    scaled = (x[:, keep] - x[:, keep].mean(axis=0)) / std[keep]
    expected = np.cov(scaled, rowvar=False, ddof=1).reshape(keep.sum(), keep.sum())
    assert np.allclose(stats.correlation[np.ix_(keep, keep)], expected, atol=1e-6)


def test_constant_features_scale_to_zero():
    x = np.column_stack([np.arange(10.0), np.full(10, 7.0)])
    stats = standardise(Moments.empty(2).add(x))
    assert stats.std[1] == 0
    assert np.all(stats.correlation[1] == 0) and np.all(stats.correlation[:, 1] == 0)


@settings(max_examples=60, deadline=None)
@given(data(rows=(5, 40), cols=(2, 10)))
def test_principal_components_match_svd_of_scaled_data(x):
    std = x.std(axis=0, ddof=1)
    if np.any(std < 1e-3):
        return
    scaled = (x - x.mean(axis=0)) / std
    comps = principal_components(standardise(Moments.empty(x.shape[1]).add(x)).correlation)
    singular = np.linalg.svd(scaled, compute_uv=False)
    expected = singular**2 / np.sum(singular**2)
    assert np.allclose(comps.ratios[: len(expected)], expected, atol=1e-7)
    assert np.isclose(comps.ratios.sum(), 1.0)
    assert np.all(np.diff(comps.ratios) <= 1e-12)
    assert np.allclose(comps.axes.T @ comps.axes, np.eye(x.shape[1]), atol=1e-8)


def test_axis_signs_are_deterministic():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 4))
    comps = principal_components(standardise(Moments.empty(4).add(x)).correlation)
    flipped = principal_components(standardise(Moments.empty(4).add(x)).correlation)
    assert np.array_equal(comps.axes, flipped.axes)
    pivots = np.argmax(np.abs(comps.axes), axis=0)
    assert np.all(comps.axes[pivots, range(4)] > 0)


ratio_lists = st.lists(st.floats(0.0, 1.0), min_size=1, max_size=50).map(
    lambda xs: sorted((x / (sum(xs) or 1.0) for x in xs), reverse=True)
)


@given(ratio_lists, st.floats(0.01, 1.0))
def test_k_for_variance_is_the_smallest_k_reaching_the_target(ratios, target):
    k = k_for_variance(ratios, target)
    totals = cumulative_variance(ratios)
    assert 1 <= k <= len(ratios)
    if totals[-1] <= 0:  # no variance at all (identical images): one component is kept
        assert k == 1
    elif totals[-1] >= target - 1e-9:
        assert totals[k - 1] >= target - 1e-9
        assert k == 1 or totals[k - 2] < target - 1e-9
    else:
        assert k == len(ratios)


def test_k_for_variance_examples_and_errors():
    assert k_for_variance([0.5, 0.3, 0.2], 0.8) == 2
    assert k_for_variance([0.5, 0.3, 0.2], 0.81) == 3
    assert k_for_variance([0.5, 0.3, 0.2], 1.0) == 3
    with pytest.raises(ValueError):
        k_for_variance([0.5], 0.0)


def test_check_k_names_the_limit():
    check_k(200, 1280, 300)
    with pytest.raises(ParameterError, match="1280 features"):
        check_k(2000, 1280)
    with pytest.raises(ParameterError, match="24 images"):
        check_k(50, 1280, 24)


def test_moments_go_back_with_task_results_only_well_under_the_limit():
    per_task = Moments.nbytes(1280)
    assert per_task == len(Moments.empty(1280).to_bytes())
    gib = 1 << 30
    fitting = gib // 4 // per_task
    assert fit_in_results(fitting, 1280, gib)
    assert not fit_in_results(fitting + 1, 1280, gib)
    assert fit_in_results(10_000, 1280, 0)  # 0: Spark sets no limit


def test_fit_from_moments_keeps_k_axes_or_the_fewest_reaching_the_variance():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((60, 3)) @ rng.standard_normal((3, 8)) + rng.normal(0, 0.01, (60, 8))
    moments = Moments.empty(8).add(x)
    comps = principal_components(standardise(moments).correlation)
    basis = fit_from_moments(moments, k=4)
    assert basis.k == 4 and basis.made_by is None
    assert np.allclose(basis.mean, x.mean(axis=0)) and np.allclose(basis.std, x.std(0, ddof=1))
    assert np.array_equal(basis.axes, comps.axes[:, :4])
    assert np.array_equal(basis.explained, comps.ratios[:4])
    chosen = fit_from_moments(moments, variance=0.99)
    assert chosen.k == k_for_variance(comps.ratios, 0.99) == 3  # three directions + noise
    with pytest.raises(ValueError, match="exactly one"):
        fit_from_moments(moments, k=2, variance=0.9)
    with pytest.raises(ParameterError, match="8 features"):
        fit_from_moments(moments, k=9)
    with pytest.raises(ParameterError, match="at least 2"):
        fit_from_moments(Moments.empty(8).add(x[:1]), k=1)


def test_moments_from_a_centred_scatter_equal_the_raw_ones():
    rng = np.random.default_rng(6)
    x = rng.normal(50.0, 2.0, (40, 5))
    mean = x.mean(axis=0)
    centred = Moments.from_centred(len(x), mean, (x - mean).T @ (x - mean))
    raw = Moments.empty(5).add(x)
    assert centred.n == raw.n
    assert np.allclose(centred.total, raw.total) and np.allclose(centred.gram, raw.gram)
