"""The CNN featurizer as a Spark ML Transformer, for `pyspark.ml.Pipeline`s.

Image bytes in (`inputCol`, binary: what `spark.read.format("binaryFile")` gives as
`content`), a 1280-float array out (`outputCol`), plus `digest`, `error_kind` and `error`;
an image that does not decode gets a null feature and an error, never a failed job. The
weights are loaded once on the driver and broadcast once per stage; each Python worker builds
the model once. Saved and loaded by its Params alone (`DefaultParamsWritable`): the weights
come back from their spec.
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable

from fruits_p8.config import DEFAULT_BATCH_SIZE, DEFAULT_MODEL, default_cache_dir
from fruits_p8.features.precision import DEFAULT_PRECISION


class ImageFeaturizer(Transformer, HasInputCol, HasOutputCol, DefaultParamsReadable,
                      DefaultParamsWritable):
    """Transformer: image bytes -> CNN features (array<float>), with the pipeline's CNN.

    >>> from fruits_p8 import EMBEDDED_SAMPLE, ImageFeaturizer
    >>> files = spark.read.format("binaryFile").load(str(EMBEDDED_SAMPLE / "Banana"))
    >>> row = ImageFeaturizer(batchSize=8).transform(files.limit(3)).first()
    >>> len(row.features), row.error
    (1280, None)
    """

    backbone: Param = Param(Params._dummy(), "backbone", "CNN backbone (fruits-p8 models)",
                            TypeConverters.toString)
    weights: Param = Param(Params._dummy(), "weights",
                           "weights spec: auto, package, imagenet, random, a file or s3://",
                           TypeConverters.toString)
    batchSize: Param = Param(Params._dummy(), "batchSize", "images per CNN call",
                             TypeConverters.toInt)
    precision: Param = Param(Params._dummy(), "precision", "the CNN's arithmetic",
                             TypeConverters.toString)
    cacheDir: Param = Param(Params._dummy(), "cacheDir",
                            "cache for converted weights (default: $FRUITS_P8_CACHE or XDG)",
                            TypeConverters.toString)

    @keyword_only
    def __init__(self, *, inputCol: str = "content", outputCol: str = "features",
                 backbone: str = DEFAULT_MODEL, weights: str = "auto",
                 batchSize: int = DEFAULT_BATCH_SIZE, precision: str = DEFAULT_PRECISION,
                 cacheDir: str | None = None) -> None:
        super().__init__()
        self._setDefault(inputCol="content", outputCol="features", backbone=DEFAULT_MODEL,
                         weights="auto", batchSize=DEFAULT_BATCH_SIZE,
                         precision=DEFAULT_PRECISION)
        self._set(**self._input_kwargs)
        self._featurizer = None
        self._featurizer_key = None

    def featurizer(self):
        """The Featurizer these Params describe: weights loaded (and later broadcast) once."""
        from fruits_p8.features.backbones import WeightsContext, get_backbone, load_weights
        from fruits_p8.features.featurizer import Featurizer

        key = tuple(self.getOrDefault(p) for p in ("backbone", "weights", "batchSize",
                                                    "precision"))
        if self._featurizer is None or self._featurizer_key != key:
            backbone = get_backbone(key[0])
            cache = (Path(self.getOrDefault("cacheDir")) if self.isDefined("cacheDir")
                     else default_cache_dir(os.environ))
            weights = load_weights(backbone, key[1], WeightsContext(cache_dir=cache))
            self._featurizer = Featurizer(backbone, weights, key[2], sum_moments=False,
                                          precision=key[3])
            self._featurizer_key = key
        return self._featurizer

    def _transform(self, dataset):
        from pyspark.sql import functions as F

        source, target = self.getInputCol(), self.getOutputCol()
        frame = dataset.withColumnRenamed(source, "content") if source != "content" else dataset
        added_label = "label" not in frame.columns
        if added_label:  # the featurizer refuses rows without one; any label will do here
            frame = frame.withColumn("label", F.lit(""))
        out = self.featurizer().transform(frame)
        if added_label:
            out = out.drop("label")
        return out.withColumnRenamed("features", target) if target != "features" else out
