"""The report's quality check: numpy logistic regression, an honest split, no leaks."""

import hashlib

import numpy as np
import pyarrow as pa
import pytest

from fruits_p8.report import logistic, quality
from fruits_p8.report.quality import compare, dataset_split, digest_split, reduce_on_train
from fruits_p8.report.rows import Rows, split_of, to_rows


def blobs(classes: int, per_class: int, dim: int, spread: float, seed: int = 0):
    """Gaussian clouds around fixed centres (the same for every seed)."""
    centres = np.random.default_rng(99).normal(size=(classes, dim)) * 3
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), per_class)
    return (centres[y] + rng.normal(scale=spread, size=(len(y), dim))).astype(np.float32), y


def test_logistic_regression_separates_classes_and_lowers_its_loss():
    x, y = blobs(5, 40, 8, 1.0)
    model = logistic.fit(x, y, 5, max_iter=50)
    assert (model.predict(x) == y).mean() >= 0.97
    x_test, y_test = blobs(5, 40, 8, 1.0, seed=1)  # new draws around the same centres
    assert (model.predict(x_test) == y_test).mean() >= 0.95
    onehot = np.eye(5, dtype=np.float32)[y]
    scaled = (x - model.mean) * model.scale
    start, _ = logistic._loss_and_gradient(np.zeros(8 * 5 + 5), scaled, onehot, 1e-4)
    end, _ = logistic._loss_and_gradient(
        np.concatenate([model.weights.ravel(), model.bias]).astype(np.float64), scaled,
        onehot, 1e-4)
    assert start == pytest.approx(np.log(5), rel=1e-4) and end < 0.2 * start


def test_logistic_regression_is_a_chance_guess_on_noise():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 20)).astype(np.float32)
    y = rng.integers(0, 4, size=400)
    model = logistic.fit(x[:200], y[:200], 4, max_iter=30)
    assert (model.predict(x[200:]) == y[200:]).mean() < 0.4


def test_the_digest_split_takes_a_fifth_and_keeps_equal_hashes_together():
    hashes = np.random.default_rng(2).integers(-2**62, 2**62, size=500)
    test = digest_split(np.concatenate([hashes, hashes]))
    assert test.sum() == 200 and (test[:500] == test[500:]).all()
    assert hashes[test[:500]].max() < hashes[~test[:500]].min()


def test_the_dataset_split_needs_both_training_and_test_folders():
    splits = ["Training", "Test", "Training", None]
    train, test = dataset_split(splits)
    assert train.tolist() == [True, False, True, False]
    assert test.tolist() == [False, True, False, False]
    assert dataset_split([s for s in splits if s != "Test"]) is None
    assert dataset_split([None, None]) is None


def test_the_scaler_and_pca_see_only_the_training_rows():
    rng = np.random.default_rng(3)
    train = rng.normal(size=(60, 10)).astype(np.float32)
    test = rng.normal(size=(15, 10)).astype(np.float32)
    moved = test * 100 + 50  # test rows that would drag any fit that saw them
    fitted, projected = reduce_on_train(train, test, 4)
    fitted_again, projected_moved = reduce_on_train(train, moved, 4)
    np.testing.assert_array_equal(fitted, fitted_again)
    assert fitted.shape == (60, 4) and projected.shape == (15, 4)
    assert np.abs(fitted.mean(axis=0)).max() < 1e-5  # centred on the training rows
    assert np.abs(projected_moved).max() > 10 * np.abs(projected).max()


def rows_of(x: np.ndarray, y: np.ndarray, paths: list[str] | None = None) -> Rows:
    labels = [f"L{v}" for v in y]
    paths = paths or [f"/in/{label}/{i}.jpg" for i, label in enumerate(labels)]
    hashes = np.random.default_rng(4).permutation(len(x)).astype(np.int64)
    return Rows(paths, labels, [split_of(p) for p in paths], hashes, x, x[:, :3].copy())


def test_the_classifiers_never_fit_on_a_test_row(monkeypatch):
    x, y = blobs(4, 50, 12, 1.0)
    rows = rows_of(x, y)
    test = digest_split(rows.hashes)
    seen: list[np.ndarray] = []
    real_fit = logistic.fit

    def spying_fit(train, labels, classes, max_iter):
        seen.append(np.asarray(train))
        return real_fit(train, labels, classes, max_iter)

    monkeypatch.setattr(logistic, "fit", spying_fit)
    real_reduce = quality.reduce_on_train
    reduced_on: list[np.ndarray] = []

    def spying_reduce(train, test_rows, k):
        reduced_on.append(np.asarray(train))
        return real_reduce(train, test_rows, k)

    monkeypatch.setattr(quality, "reduce_on_train", spying_reduce)
    result = compare(rows, k=5, max_iter=20)
    assert set(result) == {"pca", "raw"}
    np.testing.assert_array_equal(reduced_on[0], x[~test])
    np.testing.assert_array_equal(seen[1], x[~test])  # raw: exactly the training rows
    assert [len(s) for s in seen] == [(~test).sum()] * 2
    assert result["pca"].test_rows == test.sum() and result["pca"].train_rows == (~test).sum()
    assert result["raw"].overall >= 0.95 and result["pca"].overall >= 0.95
    assert "training images only" in result["pca"].fit


def test_training_and_test_folders_add_a_fit_on_training_scored_on_test():
    x, y = blobs(3, 40, 6, 1.0)
    paths = [f"/d/{'Test' if i % 4 == 0 else 'Training'}/L{v}/{i}.jpg"
             for i, v in enumerate(y)]
    result = compare(rows_of(x, y, paths), k=4, max_iter=20)
    assert set(result) == {"pca", "raw", "training_test_pca", "training_test_raw"}
    folders = result["training_test_pca"]
    assert (folders.train_rows, folders.test_rows) == (90, 30)
    assert "Training/" in folders.fit and folders.overall >= 0.9


def test_the_training_test_mode_fits_only_on_training_rows(monkeypatch):
    x, y = blobs(3, 40, 6, 1.0)
    in_test = np.arange(len(y)) % 4 == 0
    paths = [f"/d/{'Test' if t else 'Training'}/L{v}/{i}.jpg"
             for i, (v, t) in enumerate(zip(y, in_test, strict=True))]
    seen: list[np.ndarray] = []
    real_fit, real_reduce = logistic.fit, quality.reduce_on_train

    def spying_fit(train, labels, classes, max_iter):
        seen.append(np.asarray(train))
        return real_fit(train, labels, classes, max_iter)

    def spying_reduce(train, test_rows, k):
        seen.append(np.asarray(train))
        return real_reduce(train, test_rows, k)

    monkeypatch.setattr(logistic, "fit", spying_fit)
    monkeypatch.setattr(quality, "reduce_on_train", spying_reduce)
    result = compare(rows_of(x, y, paths), k=4, max_iter=20)
    # the last three fits (scaler + PCA, then the two classifiers) are the Training/Test mode's
    reduce_rows, pca_rows, raw_rows = seen[-3:]
    np.testing.assert_array_equal(reduce_rows, x[~in_test])
    assert len(pca_rows) == (~in_test).sum()
    np.testing.assert_array_equal(raw_rows, x[~in_test])
    assert result["training_test_pca"].components == 4
    assert result["training_test_raw"].components is None


def test_one_label_or_no_test_rows_gives_no_check():
    x, y = blobs(1, 30, 4, 1.0)
    assert compare(rows_of(x, y), k=2) is None


def features_table(prefix: str, digests: list[str]) -> pa.Table:
    return pa.table({"path": [f"{prefix}/L/{i}.jpg" for i in range(len(digests))],
                     "label": ["L"] * len(digests), "digest": digests,
                     "features": [[float(i)] for i in range(len(digests))],
                     "pca": [[float(i)] for i in range(len(digests))]})


def test_the_quality_split_follows_the_images_not_where_they_are_stored():
    digests = [hashlib.sha256(str(i).encode()).hexdigest() for i in range(50)]

    def test_digests(rows):
        return sorted(digests[int(v)] for v in rows.features[digest_split(rows.hashes), 0])

    local, in_s3 = (to_rows(features_table(p, digests)) for p in ("file:/data", "s3://b/in"))
    chosen = test_digests(local)
    assert chosen == test_digests(in_s3) and len(chosen) == 10

    copies = to_rows(pa.concat_tables([features_table("file:/data", digests),
                                       features_table("s3://b/in", digests)]))
    test = digest_split(copies.hashes)  # every image twice: both copies on one side
    assert test_digests(copies) == sorted(chosen * 2)
    assert not set(copies.features[test, 0]) & set(copies.features[~test, 0])


def test_images_without_a_label_folder_are_left_out_of_the_label_checks():
    x, y = blobs(2, 5, 4, 1.0)
    rows = rows_of(x, y)
    rows.labels[0], rows.labels[1] = "", None  # directly under the input root; older outputs
    labelled = rows.labelled()
    assert len(labelled) == len(rows) - 2 and "" not in labelled.labels
    assert labelled.paths == rows.paths[2:] and np.array_equal(labelled.pca, rows.pca[2:])
