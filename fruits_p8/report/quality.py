"""What the features are worth: a linear classifier on PCA features vs raw features."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Accuracy:
    """Test accuracy overall and per label, with the split sizes."""

    overall: float
    per_label: dict[str, float]
    train_rows: int
    test_rows: int


def split_by_image(df, test_share: float = 0.2):
    """Deterministic train/test split by image content: the test set is the `test_share` of
    images with the smallest hash of their `digest` (sha256 of the bytes), so the same images
    split alike wherever they are stored, and copies of one image stay on one side. Only the
    hashes go to the driver."""
    from pyspark.sql import functions as F

    hashed = df.withColumn("_h", F.xxhash64("digest"))
    values = sorted(r._h for r in hashed.select("_h").collect())
    if not values:
        return df, df
    cut = values[min(len(values) - 1, int(len(values) * test_share))]
    test = hashed.where(F.col("_h") < cut).drop("_h")
    return hashed.where(F.col("_h") >= cut).drop("_h"), test


def linear_accuracy(train, test, column: str, max_iter: int = 100) -> Accuracy:
    """Spark ML LogisticRegression (multinomial) on one array<float> column."""
    from pyspark.ml.classification import LogisticRegression
    from pyspark.ml.feature import StringIndexer
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql import functions as F

    indexer = StringIndexer(inputCol="label", outputCol="y", handleInvalid="keep").fit(train)
    prepare = [array_to_vector(column).alias("x"), "label"]
    train_v = indexer.transform(train.select(*prepare))
    test_v = indexer.transform(test.select(*prepare))
    model = LogisticRegression(featuresCol="x", labelCol="y", maxIter=max_iter,
                               family="multinomial").fit(train_v)
    scored = model.transform(test_v).withColumn("hit", (F.col("y") == F.col("prediction"))
                                                .cast("double"))
    rows = scored.groupBy("label").agg(F.avg("hit").alias("acc"), F.count("*").alias("n"))
    per_label = {r.label: float(r.acc) for r in rows.collect()}
    overall = scored.agg(F.avg("hit")).first()[0]
    return Accuracy(float(overall or 0.0), dict(sorted(per_label.items())), train_v.count(),
                    test_v.count())


def compare(features, max_iter: int = 100) -> dict[str, Accuracy] | None:
    """Accuracy on `pca` and on raw `features`, same split; None with too few images."""
    labelled = features.where("label is not null").select("path", "digest", "label", "features",
                                                          "pca")
    train, test = split_by_image(labelled)
    train, test = train.cache(), test.cache()
    try:
        if test.count() == 0 or train.select("label").distinct().count() < 2:
            return None
        return {"pca": linear_accuracy(train, test, "pca", max_iter),
                "raw": linear_accuracy(train, test, "features", max_iter)}
    finally:
        train.unpersist()
        test.unpersist()
