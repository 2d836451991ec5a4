"""The whole run, as a notebook user calls it: files in, Parquet + run.json out."""

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fruits_p8 import pipeline
from fruits_p8.config import RunConfig
from fruits_p8.errors import InputError, OutputExistsError, ParameterError
from fruits_p8.io import images
from fruits_p8.io.paths import Location
from fruits_p8.io.storage import write_parquet
from fruits_p8.reduce import Reducer
from fruits_p8.schema import ARROW_SCHEMAS, FEATURES
from tests.conftest import TEST_SPLITS, TEST_STYLES, dictionary_encoded

pytestmark = [pytest.mark.spark, pytest.mark.parity]
N_IMAGES = sum(TEST_SPLITS.values()) * len(TEST_STYLES)


def config(sample_dir, out, cache_dir, **changes) -> RunConfig:
    base = dict(input=str(sample_dir), output=str(out), k=5, batch_size=8,
                cache_dir=cache_dir)
    return RunConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def default_run(spark, sample_dir, cache_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "out"
    return pipeline.run(config(sample_dir, out, cache_dir), spark=spark), out


def test_output_layout_schema_and_labels(default_run):
    result, out = default_run
    assert sorted(p.name for p in out.iterdir()) == [
        "_FRUITS_P8", "_MANIFEST", "_SUCCESS", "errors", "features", "model", "run.json"]
    assert not list(out.parent.glob(".out.*"))  # no staging folder left behind
    table = pq.read_table(out / "features")
    assert table.column_names == ["path", "label", "features", "pca", "length",
                                  "modificationTime", "digest"]
    assert table.num_rows == N_IMAGES == result.rows
    assert str(table.schema.field("features").type) == "list<element: float>"
    assert table.schema.field("modificationTime").type == pa.timestamp("us", tz="UTC")
    assert {len(v) for v in table.column("features").to_pylist()} == {1280}
    assert {len(v) for v in table.column("pca").to_pylist()} == {5}
    assert set(table.column("label").to_pylist()) == {s.label for s in TEST_STYLES}
    for path, label in zip(table.column("path").to_pylist(), table.column("label").to_pylist(),
                           strict=True):
        assert path.split("/")[-2] == label
    assert pq.read_table(out / "errors").num_rows == 0


def assert_dictionaries_only_for_scalars(dataset: Path) -> None:
    """Every part of `dataset` keeps its float arrays out of Parquet dictionaries, not labels."""
    parts = sorted(dataset.glob("*.parquet"))
    assert parts
    for part in parts:
        encoded = dictionary_encoded(part)
        assert not encoded["features.list.element"] and not encoded["pca.list.element"]
        assert encoded["label"]


def test_float_arrays_are_written_without_parquet_dictionaries(default_run):
    _, out = default_run
    assert_dictionaries_only_for_scalars(out / "features")


def test_report_reconciles_and_proves_one_cnn_pass(default_run):
    result, out = default_run
    report = json.loads((out / "run.json").read_text())
    counts = report["counts"]
    assert counts["files"] == counts["rows_written"] + counts["errors"] == N_IMAGES
    # Featurized once, reused by the scaler, PCA and write stages: one CNN pass per image.
    assert counts["cnn_images"] == N_IMAGES
    assert report["model"]["backbone"] == "efficientnet_lite0"
    assert report["model"]["random_weights"] is False
    assert len(report["model"]["weights"]["sha256"]) == 64
    pca = report["pca"]
    assert pca["k"] == 5 and len(pca["explained_variance"]["per_component"]) == 5
    cumulative = pca["explained_variance"]["cumulative"]
    assert cumulative == sorted(cumulative) and 0 < cumulative[-1] <= 1
    assert set(report["timings_s"]) >= {"list", "load_weights", "featurize", "fit_reducer",
                                        "write", "total"}
    assert {"pyspark", "tensorflow-cpu", "numpy"} <= set(report["versions"])
    assert result.explained_variance == pytest.approx(cumulative[-1])


def test_pca_fits_from_the_featurizers_moments_as_a_separate_pass_would(default_run, spark):
    result, out = default_run
    assert result.report["pca"]["fit_passes"] == 0  # moments summed while featurizing
    features = spark.read.parquet(str(out / "features"))
    own_pass = Reducer(k=5).fit(features, 1280, N_IMAGES)
    assert own_pass.passes == 1
    written = pq.read_table(out / "features").to_pylist()
    assert np.allclose(own_pass.basis.mean,
                       np.mean([r["features"] for r in written], axis=0), atol=1e-5)
    assert np.allclose(result.report["pca"]["explained_variance"]["per_component"],
                       own_pass.basis.explained, atol=1e-6)


def test_written_pca_is_spark_mls_transform_of_the_written_features(default_run, spark):
    _, out = default_run
    features = spark.read.parquet(str(out / "features"))
    refit = Reducer(k=5).fit(features, 1280, N_IMAGES)  # the same moments, summed again
    expected = {r.path: r.pca for r in refit.transform(features.drop("pca")).collect()}
    written = {r.path: r.pca for r in features.select("path", "pca").collect()}
    assert written.keys() == expected.keys()
    got = np.array([written[p] for p in sorted(written)])
    want = np.array([expected[p] for p in sorted(expected)])
    assert np.allclose(got, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())


def test_sparks_own_writer_writes_the_same_dataset(default_run, spark, tmp_path):
    # the writer for filesystems that only the JVM can open (EMRFS), tried on a local folder
    _, out = default_run
    features = spark.read.parquet(str(out / "features"))
    model = Reducer(k=5).fit(features, 1280, N_IMAGES)
    write_parquet(features.drop("pca"), ARROW_SCHEMAS[FEATURES],
                  Location.of_path(tmp_path / "spark"),
                  model.projection())
    ours = pq.read_table(out / "features").sort_by("path")
    theirs = pq.read_table(tmp_path / "spark").sort_by("path")
    assert theirs.column_names == ours.column_names
    for name in ("path", "label", "features", "length", "digest", "modificationTime"):
        assert theirs.column(name).equals(ours.column(name))
    assert theirs.schema.field("modificationTime").type == pa.timestamp("us", tz="UTC")
    assert np.allclose(np.array(theirs.column("pca").to_pylist()),
                       np.array(ours.column("pca").to_pylist()), rtol=1e-4, atol=1e-4)
    assert_dictionaries_only_for_scalars(tmp_path / "spark")


def test_existing_output_is_refused_and_overwrite_replaces_it(spark, sample_dir, cache_dir,
                                                              default_run):
    _, out = default_run
    before = (out / "run.json").read_text()
    with pytest.raises(OutputExistsError):
        pipeline.run(config(sample_dir, out, cache_dir), spark=spark)
    assert (out / "run.json").read_text() == before
    result = pipeline.run(
        config(sample_dir, out, cache_dir, overwrite=True, k=None, variance=0.8, limit=12),
        spark=spark,
    )
    report = json.loads((out / "run.json").read_text())
    assert report["counts"]["files"] == result.files == 12
    assert report["pca"]["requested_variance"] == 0.8
    assert report["pca"]["explained_variance"]["cumulative"][-1] >= 0.8
    assert not list(out.parent.glob(".out.*"))


def encoded(fmt: str, mode: str = "RGB", size=(100, 100), **kw) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, {"RGB": (200, 30, 30), "L": 128, "RGBA": (0, 200, 0, 128),
                           "CMYK": (0, 255, 255, 0), "I;16": 30000}[mode]).save(
        buffer, format=fmt, **kw)
    return buffer.getvalue()


def test_every_file_is_accounted_for(spark, sample_dir, cache_dir, tmp_path):
    root = tmp_path / "in"
    shutil.copytree(sample_dir / "Training", root)
    banana = root / "Banana"
    good = (banana / "0_100.jpg").read_bytes()
    odd = {
        "truncated_100.jpg": good[: len(good) // 3],
        "zero_100.jpg": b"",
        "text_100.jpg": b"just some notes",
        "png_100.jpg": encoded("PNG"),
        "gif_100.jpg": encoded("GIF", "L"),
        "webp_100.jpg": encoded("WEBP"),
        "grey_100.jpg": encoded("JPEG", "L"),
        "rgba_100.jpg": encoded("PNG", "RGBA"),
        "cmyk_100.jpg": encoded("JPEG", "CMYK"),
        "deep_100.jpg": encoded("PNG", "I;16"),
        "huge_100.jpg": encoded("PNG", "L", size=(8000, 6000)),
    }
    for name, data in odd.items():
        (banana / name).write_bytes(data)
    (root / "Pomme à cidre").mkdir()
    (root / "Pomme à cidre" / "été 1_100.jpg").write_bytes(good)  # unicode and spaces
    (root / "loose_100.jpg").write_bytes(good)  # no label folder
    out = tmp_path / "out"
    result = pipeline.run(config(root, out, cache_dir, k=3), spark=spark)
    def relative(path: str) -> str:
        return path.split(f"{root}/", 1)[1]

    errors = {relative(e["path"]): e for e in pq.read_table(out / "errors").to_pylist()}
    rows = {relative(r["path"]): r for r in pq.read_table(out / "features").to_pylist()}
    assert result.files == 15 + len(odd) + 2 == len(rows) + len(errors)
    assert {name: e["error_kind"] for name, e in errors.items()} == {
        "Banana/truncated_100.jpg": "corrupt", "Banana/zero_100.jpg": "empty",
        "Banana/text_100.jpg": "not_an_image", "Banana/huge_100.jpg": "too_large"}
    assert rows["loose_100.jpg"]["label"] == "" and result.report["counts"]["unlabelled"] == 1
    assert errors["Banana/zero_100.jpg"]["length"] == 0
    for name in ("png_100.jpg", "gif_100.jpg", "webp_100.jpg", "grey_100.jpg", "rgba_100.jpg",
                 "cmyk_100.jpg", "deep_100.jpg"):
        assert rows[f"Banana/{name}"]["label"] == "Banana"
        assert len(rows[f"Banana/{name}"]["features"]) == 1280
    assert rows["Pomme à cidre/été 1_100.jpg"]["label"] == "Pomme à cidre"
    assert result.report["counts"]["files"] == result.rows + result.errors
    dup = result.report["duplicates"]  # the same bytes as Banana/0_100.jpg, three times
    assert dup["files"] == 3 and dup["groups"] == 1 and dup["groups_across_labels"] == 1
    assert dup["examples"][0]["labels"] == ["", "Banana", "Pomme à cidre"]


@pytest.mark.parametrize("limit", [None, 3])
def test_names_with_percent_escapes_are_read_once_under_their_own_label(spark, tmp_path, limit):
    # '%20' and '%41' here are characters of the names, not escapes
    names = {"Apple/a%20b_100.jpg": b"x" * 7, "Pear%41x/1_100.jpg": b"y" * 5,
             "Kiwi fruit/été%_100.jpg": b"z" * 3, "Apple/zero%20_100.jpg": b""}
    for name, data in names.items():
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(data)
    found = images.read_images(spark, str(tmp_path), limit=limit)
    collected = found.frame.select("path", "label", "length").collect()
    rows = {r.path.split(f"{tmp_path}/", 1)[1]: (r.label, r.length) for r in collected}
    kept = sorted(names)[:limit]  # --limit keeps the first files in path order
    assert found.count == len(collected) == len(kept)
    assert rows == {name: (name.split("/")[0], len(names[name])) for name in kept}


def test_duplicates_are_counted_by_content_largest_group_first(spark):
    rows = [("p1", "A", "a", 5), ("p0", "B", "a", 5), ("p2", "A", "a", 5),
            ("q1", "A", "b", 5), ("q0", "A", "b", 5), ("r", "A", "c", 5),
            ("e1", "A", "empty", 0), ("e2", "B", "empty", 0), ("x", None, None, 3)]
    frame = spark.createDataFrame(rows, "path string, label string, digest string, length long")
    found = pipeline.find_duplicates(frame, examples=1)
    assert found == {"files": 5, "groups": 2, "groups_across_labels": 1,
                     "examples": [{"labels": ["A", "B"], "paths": ["p0", "p1", "p2"]}]}
    assert pipeline.find_duplicates(frame.where("digest = 'c'")) == {
        "files": 0, "groups": 0, "groups_across_labels": 0, "examples": []}


def test_random_weights_are_flagged_in_the_report(spark, sample_dir, cache_dir, tmp_path):
    result = pipeline.run(
        config(sample_dir, tmp_path / "o", cache_dir, backbone="mobilenet_v2", weights="random",
               limit=10, k=2),
        spark=spark,
    )
    assert result.report["model"]["random_weights"] is True
    assert result.report["model"]["weights"]["source"] == "random(seed=0)"


def test_k_above_the_image_count_fails_before_featurizing(spark, sample_dir, cache_dir, tmp_path):
    with pytest.raises(ParameterError, match=f"{N_IMAGES} images"):
        pipeline.run(config(sample_dir, tmp_path / "o", cache_dir, k=N_IMAGES + 1), spark=spark)
    assert not (tmp_path / "o").exists()


def test_empty_input_and_no_match(spark, cache_dir, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no file matching"):
        pipeline.run(config(tmp_path / "empty", tmp_path / "o", cache_dir), spark=spark)
    (tmp_path / "pngs" / "A").mkdir(parents=True)
    (tmp_path / "pngs" / "A" / "x.png").write_bytes(b"png")
    with pytest.raises(InputError, match="'\\*.jpg'"):
        pipeline.run(config(tmp_path / "pngs", tmp_path / "o", cache_dir), spark=spark)
    with pytest.raises(InputError, match="not found"):
        pipeline.run(config(tmp_path / "nope", tmp_path / "o", cache_dir), spark=spark)


def test_too_many_tasks_for_moments_in_their_results_fit_with_their_own_pass(
        spark, sample_dir, cache_dir, tmp_path):
    # 21 tasks x 13 MB of moments is over a quarter of the default 1 GB maxResultSize
    result = pipeline.run(config(sample_dir, tmp_path / "out", cache_dir, partitions=21),
                          spark=spark)
    assert result.report["pca"]["fit_passes"] == 1
    assert result.rows == N_IMAGES and result.report["counts"]["cnn_images"] == N_IMAGES


def test_run_json_names_the_output_as_the_run_resolved_it(spark, sample_dir, cache_dir,
                                                          tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = pipeline.run(config(sample_dir, "rel/out", cache_dir, limit=10, k=2,
                                 weights="random"), spark=spark)
    record = json.loads((tmp_path / "rel" / "out" / "run.json").read_text())
    assert record["output"] == result.output == str(tmp_path / "rel" / "out")
    assert record["pca"]["fitted_model"] == f"{result.output}/model"
    assert record["config"]["output"] == "rel/out"  # as typed
