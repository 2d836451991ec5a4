"""Suspects and near-duplicate groups from neighbours: pure numpy, no Spark."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from fruits_p8.report.data_quality import QualitySettings, judge
from fruits_p8.report.knn import Neighbourhood
from fruits_p8.report.neighbours import groups_of, largest, nearest, prepare, vote
from fruits_p8.report.rows import split_of


@settings(max_examples=40, deadline=None)
@given(st.integers(3, 40), st.integers(1, 6), st.sampled_from(["cosine", "euclidean"]),
       st.integers(0, 10_000))
def test_nearest_matches_a_brute_force_sort_and_never_returns_the_image_itself(n, k, metric,
                                                                               seed):
    rows = prepare(np.random.default_rng(seed).normal(size=(n, 5)), metric)
    indices, distances = nearest(rows, rows, k, metric, query_ids=np.arange(n), chunk=7)
    for i in range(n):
        if metric == "cosine":
            full = 1 - rows @ rows[i]
        else:
            full = np.linalg.norm(rows - rows[i], axis=1)
        full[i] = np.inf
        assert i not in indices[i]
        np.testing.assert_allclose(distances[i], np.sort(full)[:min(k, n - 1)], atol=1e-5)


@given(st.lists(st.sampled_from("abc"), min_size=1, max_size=12), st.sampled_from("abc"))
def test_the_vote_names_the_most_frequent_other_label_and_its_share(neighbours, own):
    verdict = vote(own, neighbours)
    others = [n for n in neighbours if n != own]
    if not others:
        assert verdict.neighbour_label is None and verdict.score == 0
    else:
        assert verdict.score == max(others.count(x) for x in set(others)) / len(neighbours)
        assert others.count(verdict.neighbour_label) == max(others.count(x) for x in others)


@given(st.integers(2, 30), st.lists(st.tuples(st.integers(0, 29), st.integers(0, 29)),
                                    max_size=40))
def test_groups_are_the_connected_components_of_the_pairs(n, raw):
    pairs = [(a % n, b % n) for a, b in raw if a % n != b % n]
    groups = groups_of(n, pairs)
    where = {i: g for g, members in enumerate(groups) for i in members}
    assert sum(len(g) for g in groups) == len(where)
    for a, b in pairs:
        assert where[a] == where[b]


def test_the_split_is_the_folder_above_the_label():
    assert split_of("file:/d/fruits-360/Training/Apple/1.jpg") == "Training"
    assert split_of("file:///d/fruits-360/Training/Apple/1.jpg") == "Training"
    assert split_of("s3://b/x/Test/Apple/1.jpg") == "Test"
    assert split_of("s3://Test/Apple/1.jpg") is None  # a bucket is not a folder
    assert split_of("/d/photos/Apple/1.jpg") is None


def test_a_moved_image_is_a_suspect_and_a_group_across_splits_is_flagged():
    rng = np.random.default_rng(0)
    centres = {"Apple": rng.normal(size=8) * 10, "Pear": rng.normal(size=8) * 10}
    paths, labels, vectors = [], [], []
    for name, centre in centres.items():
        for i in range(12):
            split = "Test" if i % 2 else "Training"
            paths.append(f"/d/{split}/{name}/{i}.jpg")
            labels.append(name)
            vectors.append(centre + rng.normal(size=8) * 0.1)
    labels[3] = "Pear"  # an apple filed under Pear
    paths[3] = "/d/Test/Pear/moved.jpg"
    rows = prepare(np.array(vectors), "cosine")
    indices, distances = nearest(rows, rows, 5, "cosine", query_ids=np.arange(len(rows)))
    splits = [split_of(p) for p in paths]
    result = judge(Neighbourhood(paths, labels, splits, indices, distances), np.array(vectors),
                   QualitySettings(neighbours=5, duplicate_distance=0.01))
    top = result["suspected_mislabels"][0]
    assert (top["path"], top["label"], top["neighbour_label"]) == (paths[3], "Pear", "Apple")
    assert result["counts"]["suspected_mislabels"] == 1
    assert result["counts"]["groups_across_splits"] >= 1
    assert result["counts"]["groups_across_labels"] == 1  # the moved image sits with apples


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 12), st.integers(1, 90), st.integers(1, 8), st.integers(1, 9),
       st.integers(0, 10_000))
def test_the_block_threshold_finds_the_same_largest_entries_as_a_full_sort(rows, columns, k,
                                                                           width, seed):
    k = min(k, columns)
    rng = np.random.default_rng(seed)
    score = rng.integers(0, 6, size=(rows, columns)).astype(np.float32)  # many ties
    score[rng.random(score.shape) < 0.1] = -np.inf
    indices, values = largest(score, k, width)
    for row in range(rows):
        expected = sorted(range(columns), key=lambda c: (-score[row, c], c))[:k]
        assert indices[row].tolist() == expected
        np.testing.assert_array_equal(values[row], score[row, expected])
