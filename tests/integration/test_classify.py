"""From features to answers: `train` on one output, `evaluate` on another made with its
fitted basis; every refusal one line with its exit code."""

import json
import shutil

import pytest

from fruits_p8.cli import main
from fruits_p8.config import EMBEDDED_SAMPLE
from fruits_p8.errors import FittedModelError, InputError, OutputExistsError
from fruits_p8.io.models import read_fitted

pytestmark = [pytest.mark.spark]


@pytest.fixture(scope="module")
def outputs(spark, cache_dir, tmp_path_factory):
    """The embedded photos split in two (12 + 8 per label), featurized: the Test part with
    the Training part's fitted basis; and the Training part's classifier."""
    root = tmp_path_factory.mktemp("classify")
    for label in sorted(p.name for p in EMBEDDED_SAMPLE.iterdir()):
        photos = sorted((EMBEDDED_SAMPLE / label).glob("*.jpg"))
        for split, chosen in (("Training", photos[:12]), ("Test", photos[12:])):
            (root / "in" / split / label).mkdir(parents=True)
            for photo in chosen:
                shutil.copy(photo, root / "in" / split / label / photo.name)
    common = ["--cache-dir", str(cache_dir), "--precision", "float32"]
    assert main(["run", "--input", str(root / "in" / "Training"), "--output",
                 str(root / "training"), "--k", "20", *common], spark=spark) == 0
    assert main(["run", "--input", str(root / "in" / "Test"), "--output", str(root / "test"),
                 "--fitted", str(root / "training"), *common], spark=spark) == 0
    assert main(["train", str(root / "training"), "--output", str(root / "clf")],
                spark=spark) == 0
    return root


def test_the_classifier_scores_the_images_it_never_saw(outputs, spark, capsys):
    card = json.loads((outputs / "clf" / "classifier.json").read_text())
    assert len(card["classes"]) == 18 and sum(card["training_counts"].values()) == 216
    assert card["on"] == "pca" and card["basis"] == read_fitted(
        str(outputs / "training")).fingerprint
    assert card["made_by"]["backbone"] == "efficientnet_lite0"
    assert 0.8 <= card["validation"]["accuracy"] <= 1
    assert set(card["validation"]["by_reg_param"]) == {"0.0001", "0.001", "0.01"}
    capsys.readouterr()
    report = outputs / "scores.json"
    assert main(["evaluate", str(outputs / "clf"), str(outputs / "test"), "--json",
                 str(report)], spark=spark) == 0
    scores = json.loads(report.read_text())
    assert scores["images"] == 144 == sum(v["images"] for v in scores["per_label"].values())
    assert scores["accuracy"] >= 0.85 and scores["unknown_labels"] == []
    assert f"accuracy   {scores['accuracy']:.4f} on 144 images" in capsys.readouterr().out
    again = outputs / "scores.json"  # never replaced
    assert main(["evaluate", str(outputs / "clf"), str(outputs / "test"), "--json",
                 str(again)], spark=spark) == OutputExistsError.exit_code


def test_features_of_another_basis_or_no_classifier_are_refused(outputs, spark, capsys,
                                                                 cache_dir, tmp_path):
    own = tmp_path / "own"  # the Test images with a basis of their own
    assert main(["run", "--input", str(outputs / "in" / "Test"), "--output", str(own),
                 "--k", "20", "--cache-dir", str(cache_dir), "--precision", "float32"],
                spark=spark) == 0
    capsys.readouterr()
    for classifier, features, message in [
            (outputs / "clf", own, "the classifier was trained on other features than those "
                                   f"of {own}: fitted basis"),
            (outputs / "training", outputs / "test", "no classifier at")]:
        code = main(["evaluate", str(classifier), str(features)], spark=spark)
        err = capsys.readouterr().err
        assert code == FittedModelError.exit_code
        assert err.startswith(f"fruits-p8: error: {message}") and err.count("\n") == 1


def test_unlabelled_images_or_an_occupied_folder_cannot_train(outputs, spark, capsys,
                                                              cache_dir, tmp_path):
    flat = tmp_path / "flat"
    flat.mkdir()
    for n, photo in enumerate(sorted((outputs / "in" / "Test").glob("*/*.jpg"))[:10]):
        shutil.copy(photo, flat / f"IMG_{n:04d}.jpg")
    assert main(["run", "--input", str(flat), "--output", str(tmp_path / "new"),
                 "--fitted", str(outputs / "training"), "--cache-dir", str(cache_dir)],
                spark=spark) == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's file")
    capsys.readouterr()
    for features, target, code, message in [
            (tmp_path / "new", tmp_path / "c1", InputError.exit_code,
             f"10 images of {tmp_path / 'new'} have no label"),
            (outputs / "training", mine, OutputExistsError.exit_code, "")]:
        assert main(["train", str(features), "--output", str(target)], spark=spark) == code
        err = capsys.readouterr().err
        assert err.startswith(f"fruits-p8: error: {message}") and err.count("\n") == 1
    assert (mine / "notes.txt").read_text() == "a user's file"
    assert not (tmp_path / "c1").exists()
