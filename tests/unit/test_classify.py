"""The pure parts of the classifier: the validation split, the evaluation's arithmetic and
the card's refusal of other features."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fruits_p8.classify.blocks import BLOCK, in_validation, validation_mask, video_frame
from fruits_p8.classify.card import ClassifierCard
from fruits_p8.classify.evaluate import summarise
from fruits_p8.errors import FittedModelError
from fruits_p8.features.forward import image_size_of

labels = st.sampled_from(["Kiwi", "Lime", "Apple Braeburn"])


@given(st.sampled_from(["", "r", "r2", "r3"]), st.integers(0, 10_000))
def test_frames_of_one_block_land_on_one_side(rotation, frame):
    prefix = f"{rotation}_" if rotation else ""
    first = (frame // BLOCK) * BLOCK
    sides = {in_validation(f"s3://b/Test/Kiwi/{prefix}{n}_100.jpg")
             for n in range(first, first + BLOCK)}
    assert len(sides) == 1
    assert video_frame(f"/x/{prefix}{frame}_100.jpg") == (rotation, frame)


def test_blocks_alternate_and_other_names_go_by_a_stable_hash():
    mask = validation_mask([f"/T/Kiwi/{n}_100.jpg" for n in range(0, 4 * BLOCK, BLOCK)])
    assert mask.tolist() == [False, True, False, True]
    names = [f"/photos/IMG_{n:04d}.jpg" for n in range(1000)]
    share = validation_mask(names).mean()
    assert 0.15 < share < 0.25 and validation_mask(names).tolist() == validation_mask(
        names).tolist()


@given(st.lists(st.tuples(labels, labels, st.integers(1, 50)), min_size=1))
def test_the_summary_adds_up(pairs):
    scores = summarise(pairs, ("Kiwi", "Lime"))
    total = sum(n for _, _, n in pairs)
    right = sum(n for a, b, n in pairs if a == b)
    assert scores["images"] == total == sum(v["images"] for v in scores["per_label"].values())
    assert scores["accuracy"] == pytest.approx(right / total, abs=1e-5)
    assert all(c["label"] != c["predicted"] for c in scores["confused"])
    counts = [c["images"] for c in scores["confused"]]
    assert counts == sorted(counts, reverse=True)
    assert scores["unknown_labels"] == (["Apple Braeburn"] if any(
        a == "Apple Braeburn" for a, _, _ in pairs) else [])


def test_the_card_refuses_features_made_another_way():
    made = {"backbone": "efficientnet_lite0", "weights_sha256": "ab", "preprocessing": "p",
            "precision": "float32", "feature_dim": 1280}
    card = ClassifierCard("pca", ("Kiwi", "Lime"), {"Kiwi": 1, "Lime": 1}, 0.01, {}, "/t",
                          made, basis="f00d")
    card.check_features(dict(made), "f00d", "/new")  # the same: accepted
    with pytest.raises(FittedModelError, match="precision float32 \\(there: bfloat16\\)"):
        card.check_features({**made, "precision": "bfloat16"}, "f00d", "/new")
    with pytest.raises(FittedModelError, match="fitted basis f00d \\(there: beef"):
        card.check_features(made, "beef", "/new")
    on_features = ClassifierCard("features", ("Kiwi", "Lime"), {}, 0.01, {}, "/t", made)
    on_features.check_features(made, "beef", "/new")  # the raw features need no basis
    again = ClassifierCard.from_json(card.to_json().encode(), "/c")
    assert again == card
    with pytest.raises(FittedModelError, match="no classifier at /c"):
        ClassifierCard.from_json(None, "/c")


@pytest.mark.parametrize("function", [video_frame, summarise, image_size_of])
def test_the_pure_examples_run(function):
    import doctest

    tests = doctest.DocTestFinder(recurse=False).find(function)
    runner = doctest.DocTestRunner()
    for test in tests:
        runner.run(test)
    assert sum(len(t.examples) for t in tests) and runner.summarize(verbose=False).failed == 0


def test_a_sparse_or_transposed_spark_matrix_reads_as_the_same_numbers():
    import numpy as np

    from fruits_p8.reduce.saved import matrix_of

    dense = np.array([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]])
    column_major = {"type": 1, "numRows": 2, "numCols": 3, "isTransposed": False,
                    "values": dense.flatten(order="F").tolist()}
    row_major = {**column_major, "isTransposed": True, "values": dense.flatten().tolist()}
    by_columns = {"type": 0, "numRows": 2, "numCols": 3, "isTransposed": False,
                  "colPtrs": [0, 1, 2, 3], "rowIndices": [0, 1, 0], "values": [1.0, 3.0, 2.0]}
    by_rows = {"type": 0, "numRows": 2, "numCols": 3, "isTransposed": True,
               "colPtrs": [0, 2, 3], "rowIndices": [0, 2, 1], "values": [1.0, 2.0, 3.0]}
    for stored in (column_major, row_major, by_columns, by_rows):
        assert np.array_equal(matrix_of(stored), dense)


def test_softmax_of_the_margins_sums_to_one_and_keeps_the_order():
    import numpy as np

    from fruits_p8.classify.predict import Regression

    regression = Regression(np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]),
                            np.array([0.0, 0.5, 0.0]))
    chances = regression.probabilities(np.array([[2.0, 0.0], [0.0, 800.0]]))
    assert np.allclose(chances.sum(axis=1), 1) and chances.argmax(axis=1).tolist() == [0, 1]
    assert np.isfinite(chances).all()  # large margins do not overflow


def test_predict_takes_files_and_folders_and_refuses_an_empty_folder(tmp_path):
    from fruits_p8.classify.predict import image_files
    from fruits_p8.errors import InputError

    (tmp_path / "new" / "more").mkdir(parents=True)
    for name in ("new/b.jpg", "new/a.jpg", "new/more/c.jpg", "new/notes.txt", "one.jpg"):
        (tmp_path / name).write_bytes(b"x")
    found = image_files([str(tmp_path / "one.jpg"), str(tmp_path / "new")])
    assert [p.relative_to(tmp_path).as_posix() for p in found] == [
        "one.jpg", "new/a.jpg", "new/b.jpg", "new/more/c.jpg"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no image"):
        image_files([str(tmp_path / "empty")])
    with pytest.raises(InputError, match="no such file or folder"):
        image_files([str(tmp_path / "nowhere.jpg")])
