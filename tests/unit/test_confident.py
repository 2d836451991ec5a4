"""Confident learning: out-of-fold beliefs, evidence against a folder's own look-alikes."""

import numpy as np

from fruits_p8.report.confident import (
    FinderSettings,
    capped,
    evidence,
    fold_of,
    look_alike_pairs,
    out_of_fold,
)


def clusters(seed: int = 0, per: int = 20, labels: int = 4, dim: int = 6):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(labels, dim)) * 5
    y = np.repeat(np.arange(labels), per)
    return centres[y] + rng.normal(size=(len(y), dim)) * 0.3, y


def test_every_label_is_spread_evenly_over_the_folds():
    y = np.repeat([0, 1, 2], [10, 7, 23])
    fold = fold_of(y, 5, seed=1)
    for label in range(3):
        counts = np.bincount(fold[y == label], minlength=5)
        assert counts.max() - counts.min() <= 1


def test_a_moved_image_is_believed_to_be_what_it_is_by_a_model_that_never_saw_it():
    x, y = clusters()
    y[5] = 2  # an image of label 0 filed under 2
    p = out_of_fold(x, y, 4, FinderSettings(components=6, iterations=60))
    assert p.shape == (80, 4)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert p[5, 0] > 0.5 > p[5, 2]  # a model fitted with it would have learned "2"
    found = evidence(p, y)
    assert found.other[5] == 0 and found.margin[5] == found.margin.max() > 0.3


def test_a_look_alike_pair_is_a_pair_and_not_a_margin_per_image():
    n = 30  # one wrong image moves its pair's mean belief by 1 / 30
    y = np.repeat([0, 1, 2, 3], n)
    p = np.full((4 * n, 4), 0.02, dtype=np.float32)
    p[:n, 0], p[:n, 1] = 0.56, 0.4  # label 0 looks like label 1, every one of its images
    p[n:2 * n, 1], p[n:2 * n, 0] = 0.66, 0.3
    p[2 * n:, 2] = p[3 * n:, 3] = 0.94
    p[3 * n:, 2] = 0.02
    p[2 * n], p[2 * n, 3] = 0.02, 0.94  # one image filed under 2 is a 3
    found = evidence(p, y)
    assert found.margin[:2 * n].max() < 0  # beyond what its folder shares, nothing
    assert found.other[2 * n] == 3 and found.margin[2 * n] > 0.8
    pairs = look_alike_pairs(found.mean_belief, 0.1)
    assert [(a, b) for a, b, _ in pairs] == [(0, 1)]


def test_the_fit_takes_at_most_so_many_images_per_label():
    y = np.repeat([0, 1], [50, 5])
    kept = capped(np.arange(55), y, 8, np.random.default_rng(0))
    assert np.bincount(y[kept]).tolist() == [8, 5]
    assert (np.diff(kept) > 0).all()
