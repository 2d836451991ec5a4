"""The fitted basis and the numpy projection the Parquet-writing tasks apply: standardise,
then project."""

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from fruits_p8.reduce.basis import MadeBy, PcaBasis


@st.composite
def fits(draw):
    """Features and a fit for them: some features constant (std 0), k <= d."""
    n, d = draw(st.integers(1, 30)), draw(st.integers(1, 12))
    k = draw(st.integers(1, d))
    x = draw(arrays(np.float32, (n, d), elements=st.floats(-1e3, 1e3, width=32)))
    mean = draw(arrays(np.float64, d, elements=st.floats(-1e3, 1e3)))
    std = draw(arrays(np.float64, d, elements=st.sampled_from([0.0, 0.5, 1.0, 3.0, 250.0])))
    axes = draw(arrays(np.float64, (d, k), elements=st.floats(-1, 1)))
    return x, mean, std, axes


def basis_of(mean, std, axes) -> PcaBasis:
    return PcaBasis(mean, std, axes, np.full(axes.shape[1], 1.0 / axes.shape[1]))


def features_batch(x: np.ndarray, labels: list[str]) -> pa.RecordBatch:
    features = pa.ListArray.from_arrays(
        pa.array(np.arange(len(x) + 1, dtype=np.int32) * x.shape[1]), pa.array(x.ravel()))
    return pa.RecordBatch.from_arrays([pa.array(labels), features], names=["label", "features"])


@settings(max_examples=100, deadline=None)
@given(fits())
def test_projection_standardises_then_projects(fit):
    x, mean, std, axes = fit
    got = basis_of(mean, std, axes).project(x)
    scaled = np.zeros(x.shape)
    varying = std > 0
    scaled[:, varying] = (x[:, varying] - mean[varying]) / std[varying]  # constant -> 0
    assert got.dtype == np.float32 and got.shape == (x.shape[0], axes.shape[1])
    assert np.allclose(got, scaled @ axes, rtol=1e-5, atol=1e-5 * max(1.0, np.abs(scaled).max()))


@settings(max_examples=50, deadline=None)
@given(fits(), st.data())
def test_transform_batch_adds_one_row_of_k_components_per_row(fit, data):
    x, mean, std, axes = fit
    basis = basis_of(mean, std, axes)
    projection = basis.projection()
    labels = [f"L{i}" for i in range(len(x))]
    start = data.draw(st.integers(0, len(x) - 1))  # a slice: offsets inside the arrays
    batch = features_batch(x, labels).slice(start)
    out = projection.transform_batch(batch)
    assert out.schema.names == ["label", "features", "pca"]
    assert out.schema.field("pca").type == pa.list_(pa.float32())
    assert out.column("label").to_pylist() == labels[start:]
    assert out.column("features").equals(batch.column("features"))
    pca = np.array(out.column("pca").to_pylist(), dtype=np.float32).reshape(-1, axes.shape[1])
    assert np.array_equal(pca, basis.project(x[start:]))


def test_transform_batch_refuses_missing_short_or_uneven_features():
    projection = basis_of(np.zeros(3), np.ones(3), np.eye(3)[:, :2]).projection()
    short = pa.RecordBatch.from_arrays(
        [pa.array([[1.0, 2.0, 3.0], [1.0, 2.0]], pa.list_(pa.float32()))], names=["features"])
    with pytest.raises(ValueError, match="3 values each"):
        projection.transform_batch(short)
    uneven = pa.RecordBatch.from_arrays(  # 6 values for 2 rows, but not 3 per row
        [pa.array([[1.0, 2.0], [1.0, 2.0, 3.0, 4.0]], pa.list_(pa.float32()))],
        names=["features"])
    with pytest.raises(ValueError, match="3 values each"):
        projection.transform_batch(uneven)
    missing = pa.RecordBatch.from_arrays(
        [pa.array([[1.0, 2.0, 3.0], None], pa.list_(pa.float32()))], names=["features"])
    with pytest.raises(ValueError, match="1 null rows"):
        projection.transform_batch(missing)


def test_column_names_follow_the_fit():
    projection = basis_of(np.zeros(2), np.ones(2), np.eye(2)).projection("x", "z")
    batch = pa.RecordBatch.from_arrays([pa.array([[1.0, -1.0]], pa.list_(pa.float32()))],
                                       names=["x"])
    out = projection.transform_batch(batch)
    assert out.schema.names == ["x", "z"] and out.column("z").to_pylist() == [[1.0, -1.0]]


def test_a_basis_is_read_only_and_refuses_arrays_that_do_not_fit_together():
    mean = np.zeros(3)
    basis = basis_of(mean, np.ones(3), np.eye(3)[:, :2])
    mean[0] = 9.0  # the caller's array is not the basis'
    assert basis.mean[0] == 0 and basis.k == 2 and basis.feature_dim == 3
    with pytest.raises(ValueError):
        basis.axes[0, 0] = 5.0
    with pytest.raises(ValueError, match="d x k axes"):
        PcaBasis(np.zeros(3), np.ones(3), np.eye(4)[:, :2], np.ones(2))
    with pytest.raises(ValueError, match="d x k axes"):
        PcaBasis(np.zeros(3), np.ones(3), np.eye(3)[:, :2], np.ones(3))
    made_by = MadeBy("efficientnet_lite0", 3, "ab12", "auto", "rgb", "float32", "0.1.0")
    assert basis.with_made_by(made_by).made_by == made_by and basis.made_by is None
    with pytest.raises(ValueError, match="1280-feature"):
        basis.with_made_by(MadeBy("efficientnet_lite0", 1280, "", "", "", "", ""))


def test_explained_total_and_constant_features():
    basis = PcaBasis(np.zeros(3), np.array([1.0, 0.0, 2.0]), np.eye(3)[:, :2],
                     np.array([0.7, 0.4]))
    assert basis.explained_total == 1.0  # clipped against rounding
    assert basis.constant_features == 1
    assert basis.scale.tolist() == [1.0, 0.0, 0.5]
