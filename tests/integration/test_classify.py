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


def test_predict_in_one_process_gives_the_spark_paths_labels_and_probabilities(
        outputs, spark, capsys, cache_dir, tmp_path):
    import numpy as np
    from pyspark.ml import PipelineModel
    from pyspark.ml.functions import array_to_vector, vector_to_array

    from fruits_p8.classify.predict import Predictor

    photos = sorted((outputs / "in" / "Test").glob("*/*.jpg"))[::40]  # 4 labels
    predictor = Predictor(str(outputs / "clf"), cache_dir)
    found = {p.path: p for p in predictor.predict(photos)}
    rows = spark.read.parquet(str(outputs / "test" / "features"))
    model = PipelineModel.load(str(outputs / "clf" / "classifier"))
    scored = model.transform(rows.withColumn("pca_vector", array_to_vector("pca"))).select(
        "path", "predicted_label", vector_to_array("probability").alias("p")).collect()
    spark_says = {r.path.removeprefix("file:"): r for r in scored}
    classes = json.loads((outputs / "clf" / "classifier.json").read_text())["classes"]
    for photo in photos:
        mine, theirs = found[str(photo)], spark_says[str(photo)]
        assert mine.label == theirs.predicted_label == photo.parent.name
        assert len(mine.top) == 3
        for label, probability in mine.top:
            assert np.isclose(probability, theirs.p[classes.index(label)], atol=1e-4)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    capsys.readouterr()
    code = main(["predict", str(outputs / "clf"), str(photos[0]), str(broken),
                 "--cache-dir", str(cache_dir)])
    out, err = capsys.readouterr()
    assert code == InputError.exit_code
    assert out.startswith(f"{photos[0]}\t{photos[0].parent.name} (")
    assert err.startswith("fruits-p8: error: 1 of 2 files are not readable images, e.g. "
                          f"{broken}") and err.count("\n") == 1


def test_predict_on_spark_writes_the_in_process_labels_into_a_run_output(
        outputs, spark, capsys, cache_dir, tmp_path):
    import pyarrow.parquet as pq

    from fruits_p8.classify.predict import predict

    flat = tmp_path / "phone"  # new photos, no label folders, one broken file
    flat.mkdir()
    photos = sorted((outputs / "in" / "Test").glob("*/*.jpg"))[::30]
    for n, photo in enumerate(photos):
        shutil.copy(photo, flat / f"IMG_{n:04d}.jpg")
    (flat / "IMG_9999.jpg").write_bytes(b"not a jpeg")
    out = tmp_path / "labelled"
    argv = ["predict", str(outputs / "clf"), str(flat), "--output", str(out),
            "--cache-dir", str(cache_dir)]
    assert main(argv, spark=spark) == 0
    assert f"({len(photos)} images; 1 files are not readable" in capsys.readouterr().out
    table = pq.read_table(out / "predictions.parquet").to_pylist()
    in_process = {str(p.path): p.label for p in predict(
        str(outputs / "clf"), [str(flat / f"IMG_{n:04d}.jpg") for n in range(len(photos))],
        cache_dir)}
    assert {r["path"].removeprefix("file:"): r["predicted_label"] for r in table} == in_process
    assert {r["label"] for r in table} == {""}
    right = [in_process[str(flat / f"IMG_{n:04d}.jpg")] == p.parent.name
             for n, p in enumerate(photos)]
    assert sum(right) >= len(photos) - 1  # 12 training photos per label: one miss at most
    assert "predictions.parquet" in (out / "_MANIFEST").read_text()  # ours: --overwrite
    assert main([*argv, "--overwrite"], spark=spark) == 0
    assert main(["predict", str(outputs / "clf"), str(flat), str(flat), "--output",
                 str(tmp_path / "two")], spark=spark) == 2
