"""Standardise + PCA on local Spark against numpy on the same data."""

import numpy as np
import pytest

from fruits_p8.errors import ParameterError
from fruits_p8.reduce import Reducer
from fruits_p8.reduce.pca import k_for_variance
from fruits_p8.reduce.spark_ml import VECTOR_COLUMNS, pipeline_of

pytestmark = [pytest.mark.spark, pytest.mark.parity]
N, D = 240, 24


@pytest.fixture(scope="module")
def data(spark):
    rng = np.random.default_rng(7)
    x = rng.standard_normal((N, 6)) @ rng.standard_normal((6, D)) * 3 + rng.normal(0, 0.3, (N, D))
    x[:, 5] = 2.0  # a constant feature, as dead CNN channels give
    x = x.astype(np.float32)
    df = spark.createDataFrame(
        [(f"p{i}", "L", [float(v) for v in row]) for i, row in enumerate(x)],
        "path string, label string, features array<float>",
    ).repartition(3).cache()
    return x.astype(np.float64), df


def numpy_reference(x):
    mean, std = x.mean(axis=0), x.std(axis=0, ddof=1)
    scaled = np.where(std > 0, (x - mean) / np.where(std > 0, std, 1), 0.0)
    _, s, vt = np.linalg.svd(scaled, full_matrices=False)
    return scaled, s**2 / np.sum(s**2), vt.T


def collect_pca(model, df):
    rows = model.transform(df).select("path", "pca").collect()
    rows.sort(key=lambda r: int(r.path[1:]))
    return np.array([r.pca for r in rows], dtype=np.float64)


@pytest.mark.parametrize("solver", ["gram", "spark"])
def test_scaler_and_pca_match_numpy(data, solver):
    x, df = data
    model = Reducer(k=4, solver=solver).fit(df, D, N)
    scaled, ratios, axes = numpy_reference(x)
    basis = model.basis
    assert np.allclose(basis.mean, x.mean(axis=0), atol=1e-4)
    assert np.allclose(basis.std, x.std(axis=0, ddof=1), rtol=1e-4, atol=1e-5)
    assert basis.constant_features == 1
    assert basis.k == 4 and model.passes == (1 if solver == "gram" else 2)
    assert np.allclose(basis.explained, ratios[:4], atol=1e-5)
    projected = collect_pca(model, df)
    expected = scaled @ axes[:, :4]
    signs = np.sign(np.sum(projected * expected, axis=0))
    assert np.allclose(projected * signs, expected, atol=1e-3 * np.abs(expected).max())
    # standardised data: every projection is centred
    assert np.allclose(projected.mean(axis=0), 0, atol=1e-3)


def test_scaled_features_have_mean_0_and_std_1(data):
    x, df = data
    from pyspark.ml.functions import array_to_vector, vector_to_array

    model = Reducer(k=2).fit(df, D, N)
    vector, scaled_col, _ = VECTOR_COLUMNS
    scaler = pipeline_of(model.basis).stages[0]  # the StandardScalerModel model/ holds
    vectors = df.withColumn(vector, array_to_vector("features"))
    scaled = scaler.transform(vectors).select(vector_to_array(scaled_col).alias("z"))
    z = np.array([r.z for r in scaled.collect()])
    live = np.arange(D) != 5
    assert np.allclose(z[:, live].mean(axis=0), 0, atol=1e-5)
    assert np.allclose(z[:, live].std(axis=0, ddof=1), 1, atol=1e-4)
    assert np.all(z[:, 5] == 0)


@pytest.mark.parametrize("solver", ["gram", "spark"])
def test_variance_target_keeps_the_smallest_sufficient_k(data, solver):
    x, df = data
    _, ratios, _ = numpy_reference(x)
    model = Reducer(k=None, variance=0.9, solver=solver).fit(df, D, N)
    assert model.basis.k == k_for_variance(ratios, 0.9)
    assert model.basis.explained_total >= 0.9 - 1e-9
    assert collect_pca(model, df).shape == (N, model.basis.k)


def test_both_solvers_give_the_same_projection(data):
    _, df = data
    gram = collect_pca(Reducer(k=3, solver="gram").fit(df, D, N), df)
    spark_ml = collect_pca(Reducer(k=3, solver="spark").fit(df, D, N), df)
    assert np.allclose(np.abs(gram), np.abs(spark_ml), atol=1e-3)


@pytest.mark.parametrize("solver", ["gram", "spark"])
@pytest.mark.parametrize("variance", [None, 0.9])
def test_numpy_projection_equals_spark_ml(data, solver, variance):
    # what the pipeline writes (numpy in the Python workers) against Spark ML in the JVM
    _, df = data
    model = Reducer(k=None if variance else 4, variance=variance, solver=solver).fit(df, D, N)
    rows = model.projection().transform(df).select("path", "pca").collect()
    rows.sort(key=lambda r: int(r.path[1:]))
    numpy_side = np.array([r.pca for r in rows], dtype=np.float64)
    spark_ml = collect_pca(model, df)
    assert numpy_side.shape == spark_ml.shape == (N, model.basis.k)
    assert np.allclose(numpy_side, spark_ml, rtol=1e-6, atol=1e-6 * np.abs(spark_ml).max())


def test_k_above_rows_is_a_parameter_error(data):
    _, df = data
    with pytest.raises(ParameterError, match="images"):
        Reducer(k=N + 1).fit(df, 10_000, N)
