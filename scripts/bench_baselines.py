"""The bench's baselines on the same images: the reference notebook's style (one Keras model per
partition, no persist, the CNN again for each fit) and Spark's predict_batch_udf."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd


def backbone_weights(model: str, cache: str | Path):
    """The backbone and its weights as every figure uses them: the offline default for
    EfficientNet-Lite0, seeded random weights for MobileNetV2 (same speed, no download)."""
    from fruits_p8.features.backbones import WeightsContext, get_backbone, load_weights

    backbone = get_backbone(model)
    return backbone, load_weights(backbone, "auto" if model == "efficientnet_lite0" else "random",
                                  WeightsContext(Path(cache)))



def reference_style(spark, root: str, model: str, batch: int, partitions: int, k: int,
                    cache: Path, scratch: Path, limit: int | None = None) -> dict:
    """The reference notebook's shape: a model per partition, predict(), no persist."""
    from pyspark.ml.feature import PCA, StandardScaler
    from pyspark.ml.functions import array_to_vector
    from pyspark.sql.functions import pandas_udf

    from fruits_p8.features.preprocess import preprocess_image
    from fruits_p8.io.images import read_images

    backbone, weights = backbone_weights(model, cache)
    sc = spark.sparkContext
    shared = sc.broadcast(list(weights.arrays))
    cnn_images = sc.accumulator(0)
    name, scaling = backbone.name, backbone.scaling

    @pandas_udf("array<float>")
    def featurize(contents: Iterator[pd.Series]) -> Iterator[pd.Series]:
        from fruits_p8.features.backbones import get_backbone as lookup

        net = lookup(name).build_features()
        net.set_weights(shared.value)
        for series in contents:
            pixels = np.stack([preprocess_image(c, 224, scaling) for c in series])
            cnn_images.add(len(series))
            yield pd.Series(list(net.predict(pixels, batch_size=batch, verbose=0)))

    images = read_images(spark, root, limit=limit).frame
    features = images.repartition(partitions).select("path", "label",
                                                     featurize("content").alias("features"))
    stages = {}
    begin = time.perf_counter()
    features.write.mode("overwrite").parquet(str(scratch))  # (a count would skip the UDF)
    stages["action 1: write features"] = time.perf_counter() - begin
    rows = images.count()
    vectors = features.select(array_to_vector("features").alias("v"))
    mark = time.perf_counter()
    scaler = StandardScaler(withMean=True, withStd=True, inputCol="v", outputCol="z").fit(vectors)
    stages["action 2: scaler fit"] = time.perf_counter() - mark
    mark = time.perf_counter()
    PCA(k=k, inputCol="z", outputCol="p").fit(scaler.transform(vectors))
    stages["action 3: PCA fit"] = time.perf_counter() - mark
    total = time.perf_counter() - begin
    return {"seconds": round(total, 2), "images_per_s": round(rows / total, 1),
            "cnn_passes": round(cnn_images.value / rows, 2),
            "stages_s": {k: round(v, 2) for k, v in stages.items()}}


def predict_batch(spark, root: str, model: str, batch: int, partitions: int,
                  cache: Path, limit: int | None = None) -> dict:
    """pyspark.ml.functions.predict_batch_udf on the same folded model."""
    from pyspark.ml.functions import predict_batch_udf
    from pyspark.sql.functions import pandas_udf
    from pyspark.sql.types import ArrayType, FloatType

    from fruits_p8.features.preprocess import decode_rgb
    from fruits_p8.io.images import read_images

    backbone, weights = backbone_weights(model, cache)
    shared = spark.sparkContext.broadcast(list(weights.arrays))
    name = backbone.name

    @pandas_udf("array<float>")
    def pixels(contents: pd.Series) -> pd.Series:
        return contents.map(lambda c: decode_rgb(c, 224).reshape(-1).astype(np.float32))

    def make_predict_fn():
        from fruits_p8.features.backbones import get_backbone as lookup
        from fruits_p8.features.forward import compile_forward

        forward = compile_forward(lookup(name), shared.value)

        def predict(inputs: np.ndarray) -> np.ndarray:
            return forward(inputs.reshape(-1, 224, 224, 3).astype(np.uint8))

        return predict

    udf = predict_batch_udf(make_predict_fn, return_type=ArrayType(FloatType()),
                            batch_size=batch, input_tensor_shapes=[[224 * 224 * 3]])
    images = read_images(spark, root, limit=limit).frame
    frame = images.repartition(partitions).select(pixels("content").alias("x"))
    begin = time.perf_counter()
    rows = frame.select(udf("x").alias("f")).where("size(f) = 1280").count()
    total = time.perf_counter() - begin
    return {"seconds": round(total, 2), "images_per_s": round(rows / total, 1)}
