"""The CNN featurizer as a Spark ML Transformer, for `pyspark.ml.Pipeline`s.

Image bytes in (`inputCol`, binary: what `spark.read.format("binaryFile")` gives as
`content`), kept; a 1280-float array out (`outputCol`), plus the image's sha256 and, for an
image that does not decode, an error kind and message (`digestCol`, `errorKindCol`,
`errorCol`): such an image gets a null feature, never a failed job. The weights are loaded
once on the driver and broadcast once per setting; each Python worker builds the model once.
Saved and loaded by its Params alone (`DefaultParamsWritable`): the weights come back from
their spec. Follows pyspark's conventions (getters, setters, `setParams`, defaults in
`_setDefault`).
"""

from __future__ import annotations

import os
from pathlib import Path

from pyspark import keyword_only
from pyspark.ml import Transformer
from pyspark.ml.param import Param, Params, TypeConverters
from pyspark.ml.param.shared import HasInputCol, HasOutputCol
from pyspark.ml.util import DefaultParamsReadable, DefaultParamsWritable

from fruits_p8.config import DEFAULT_BACKBONE, DEFAULT_BATCH_SIZE, default_cache_dir
from fruits_p8.features import backbones
from fruits_p8.features import featurizer as featurizing
from fruits_p8.features.precision import REFERENCE_PRECISION

# The columns the internal Featurizer reads (content) and adds (the rest), by name.
_FIXED = ("content", "digest", "features", "error_kind", "error")


class _ImageFeaturizerParams(HasInputCol, HasOutputCol):
    backbone: Param = Param(Params._dummy(), "backbone", "CNN backbone (fruits-p8 models)",
                            TypeConverters.toString)
    weights: Param = Param(Params._dummy(), "weights",
                           "weights spec: auto, package, imagenet, random or a local file",
                           TypeConverters.toString)
    batchSize: Param = Param(Params._dummy(), "batchSize", "images per CNN call",
                             TypeConverters.toInt)
    precision: Param = Param(Params._dummy(), "precision", "the CNN's arithmetic",
                             TypeConverters.toString)
    cacheDir: Param = Param(Params._dummy(), "cacheDir",
                            "cache for converted weights (default: $FRUITS_P8_CACHE or XDG)",
                            TypeConverters.toString)
    digestCol: Param = Param(Params._dummy(), "digestCol",
                             "column for the sha256 of the image bytes", TypeConverters.toString)
    errorKindCol: Param = Param(Params._dummy(), "errorKindCol",
                                "column for why an image has no features (null when it has)",
                                TypeConverters.toString)
    errorCol: Param = Param(Params._dummy(), "errorCol",
                            "column for the error message of an image without features",
                            TypeConverters.toString)

    def __init__(self, *args) -> None:
        super().__init__(*args)
        self._setDefault(inputCol="content", outputCol="features", backbone=DEFAULT_BACKBONE,
                         weights="auto", batchSize=DEFAULT_BATCH_SIZE,
                         precision=REFERENCE_PRECISION, digestCol="digest",
                         errorKindCol="error_kind", errorCol="error")

    def getBackbone(self) -> str:
        return self.getOrDefault(self.backbone)

    def getWeights(self) -> str:
        return self.getOrDefault(self.weights)

    def getBatchSize(self) -> int:
        return self.getOrDefault(self.batchSize)

    def getPrecision(self) -> str:
        return self.getOrDefault(self.precision)

    def getCacheDir(self) -> str:
        return self.getOrDefault(self.cacheDir)

    def getDigestCol(self) -> str:
        return self.getOrDefault(self.digestCol)

    def getErrorKindCol(self) -> str:
        return self.getOrDefault(self.errorKindCol)

    def getErrorCol(self) -> str:
        return self.getOrDefault(self.errorCol)


class ImageFeaturizer(Transformer, _ImageFeaturizerParams, DefaultParamsReadable,
                      DefaultParamsWritable):
    """Transformer: image bytes -> CNN features (array<float>), with the pipeline's CNN.

    Frames it transformed read its broadcast weights until `close()` or a change of
    backbone, weights, batchSize or precision frees them: compute (or persist) them first.
    Persist its output when several stages read it: each action runs the CNN again.

    >>> from fruits_p8 import EMBEDDED_SAMPLE, ImageFeaturizer
    >>> files = spark.read.format("binaryFile").load(str(EMBEDDED_SAMPLE / "Banana"))
    >>> row = ImageFeaturizer().setBatchSize(8).transform(files.limit(3)).first()
    >>> len(row.features), row.error, len(row.content) > 0
    (1280, None, True)
    """

    @keyword_only
    def __init__(self, *, inputCol: str | None = None, outputCol: str | None = None,
                 backbone: str | None = None, weights: str | None = None,
                 batchSize: int | None = None, precision: str | None = None,
                 cacheDir: str | None = None, digestCol: str | None = None,
                 errorKindCol: str | None = None, errorCol: str | None = None) -> None:
        super().__init__()
        self._featurizer: featurizing.Featurizer | None = None
        self._featurizer_key: tuple | None = None
        self.setParams(**self._input_kwargs)

    @keyword_only
    def setParams(self, *, inputCol: str | None = None, outputCol: str | None = None,
                  backbone: str | None = None, weights: str | None = None,
                  batchSize: int | None = None, precision: str | None = None,
                  cacheDir: str | None = None, digestCol: str | None = None,
                  errorKindCol: str | None = None, errorCol: str | None = None
                  ) -> ImageFeaturizer:
        return self._set(**self._input_kwargs)

    def setInputCol(self, value: str) -> ImageFeaturizer:
        return self._set(inputCol=value)

    def setOutputCol(self, value: str) -> ImageFeaturizer:
        return self._set(outputCol=value)

    def setBackbone(self, value: str) -> ImageFeaturizer:
        return self._set(backbone=value)

    def setWeights(self, value: str) -> ImageFeaturizer:
        return self._set(weights=value)

    def setBatchSize(self, value: int) -> ImageFeaturizer:
        return self._set(batchSize=value)

    def setPrecision(self, value: str) -> ImageFeaturizer:
        return self._set(precision=value)

    def setCacheDir(self, value: str) -> ImageFeaturizer:
        return self._set(cacheDir=value)

    def setDigestCol(self, value: str) -> ImageFeaturizer:
        return self._set(digestCol=value)

    def setErrorKindCol(self, value: str) -> ImageFeaturizer:
        return self._set(errorKindCol=value)

    def setErrorCol(self, value: str) -> ImageFeaturizer:
        return self._set(errorCol=value)

    def copy(self, extra=None) -> ImageFeaturizer:
        """A copy with its own weights broadcast: closing one leaves the other usable."""
        that = super().copy(extra)
        that._featurizer, that._featurizer_key = None, None
        return that

    def featurizer(self) -> featurizing.Featurizer:
        """The Featurizer these Params describe: weights loaded (and later broadcast) once;
        the previous one is closed when the Params change."""
        key = (self.getBackbone(), self.getWeights(), self.getBatchSize(), self.getPrecision())
        if self._featurizer is None or self._featurizer_key != key:
            self.close()
            backbone = backbones.get_backbone(key[0])
            cache = (Path(self.getCacheDir()) if self.isDefined(self.cacheDir)
                     else default_cache_dir(os.environ))
            weights = backbones.load_weights(backbone, key[1],
                                             backbones.WeightsContext(cache_dir=cache))
            self._featurizer = featurizing.Featurizer(backbone, weights, key[2],
                                                     sum_moments=False, precision=key[3])
            self._featurizer_key = key
        return self._featurizer

    def close(self) -> None:
        """Free the broadcast weights (after the last action on the frames made)."""
        if self._featurizer is not None:
            self._featurizer.close()
        self._featurizer, self._featurizer_key = None, None

    def _added(self) -> dict[str, str]:
        """The Featurizer's added column -> the name its Param gives it."""
        added = {"features": self.getOutputCol(), "digest": self.getDigestCol(),
                 "error_kind": self.getErrorKindCol(), "error": self.getErrorCol()}
        if len(set(added.values())) < len(added):
            raise ValueError(f"outputCol, digestCol, errorKindCol and errorCol must differ: "
                             f"{sorted(added.values())}")
        return added

    def _transform(self, dataset):
        from pyspark.sql import functions as F

        added = self._added()
        taken = sorted(set(added.values()) & set(dataset.columns))
        if taken:
            raise ValueError(f"column(s) {taken} already exist: drop them or set outputCol, "
                             "digestCol, errorKindCol or errorCol")
        dim = backbones.get_backbone(self.getBackbone()).feature_dim
        hidden = {name: f"__{self.uid}_{name}" for name in _FIXED if name in dataset.columns}
        frame = dataset
        for name, alias in hidden.items():  # out of the way of the Featurizer's names
            frame = frame.withColumnRenamed(name, alias)
        source = hidden.get(self.getInputCol(), self.getInputCol())
        frame = frame.withColumn("content", F.col(source))
        out = self.featurizer().transform(frame)
        restore = {alias: name for name, alias in hidden.items()}
        width = {"ml_attr": {"num_attrs": dim}}  # PcaReducer reads the width here

        def named(column: str):
            if column in restore:
                return F.col(f"`{column}`").alias(restore[column])
            if column in added:
                return F.col(column).alias(added[column],
                                           metadata=width if column == "features" else None)
            return F.col(f"`{column}`")

        return out.select(*[named(c) for c in out.columns])
