"""fruits_p8: image collections -> compact CNN features on Spark (local or AWS EMR).

The public API, flat (each name's docstring has a runnable example):

- `run(RunConfig(...), spark)`: the whole job, folder -> Parquet + model/ + run.json;
- `read_fitted(output)`: the standardise + PCA a run fitted (a `PcaBasis`), to apply
  elsewhere;
- `train(spark, output, classifier)`, `evaluate(spark, classifier, output)`,
  `predict(classifier, images)`: a logistic regression on a run's features, its accuracy on
  another run's, and its labels for new photos (no Spark);
- Spark ML stages for `pyspark.ml.Pipeline`: `ImageFeaturizer`, `PcaReducer`
  (-> `PcaReducerModel`);
- `read_images(spark, folder)`, `label_from_path(path)`, `build_session(...)`,
  `EMBEDDED_SAMPLE` (real photos shipped with the package).

Names load on first use: `import fruits_p8` starts neither Spark nor TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_HOMES = {
    "run": "fruits_p8.pipeline",
    "preflight": "fruits_p8.pipeline",
    "RunConfig": "fruits_p8.config",
    "EMBEDDED_SAMPLE": "fruits_p8.config",
    "default_cache_dir": "fruits_p8.config",
    "read_fitted": "fruits_p8.io.models",
    "PcaBasis": "fruits_p8.reduce.basis",
    "ImageFeaturizer": "fruits_p8.features.ml_stage",
    "PcaReducer": "fruits_p8.reduce.ml_stage",
    "PcaReducerModel": "fruits_p8.reduce.ml_stage",
    "read_images": "fruits_p8.io.images",
    "label_from_path": "fruits_p8.io.paths",
    "build_session": "fruits_p8.spark",
    "train": "fruits_p8.classify.train",
    "evaluate": "fruits_p8.classify.evaluate",
    "predict": "fruits_p8.classify.predict",
}
__all__ = ["__version__", *_HOMES]


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module 'fruits_p8' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
