"""The write stage: datasets, model and run.json staged, then committed as one."""

from __future__ import annotations

from collections.abc import Callable

from fruits_p8.config import RunConfig
from fruits_p8.io.output import dumps_report
from fruits_p8.reduce.saved import MADE_BY
from fruits_p8.reduce.spark_ml import pipeline_of
from fruits_p8.run_report import Timings
from fruits_p8.schema import ERRORS, FEATURES, MODEL_DIR, RUN_JSON
from fruits_p8.stages.basis import Basis
from fruits_p8.stages.featurize import Featurized


def write_output(config: RunConfig, output, featurized: Featurized, basis: Basis,
                 timings: Timings, record: Callable[[], dict]) -> dict:
    """Stage the datasets, the model and run.json, then commit them as one; returns the
    run.json content (`record()` makes it once the datasets are written)."""
    replace_ok = config.overwrite or config.incremental
    try:
        output.begin()
        with timings.stage("write"):
            output.write_dataset(FEATURES, featurized.ok, basis.model.projection())
            if featurized.errors:
                output.write_dataset(ERRORS, featurized.failed)
            else:
                output.write_empty(ERRORS)
            model = basis.model
            output.write_spark_ml(MODEL_DIR, pipeline_of(model), featurized.frame.sparkSession)
            output.write_text(f"{MODEL_DIR}/{MADE_BY}", model.made_by.to_json())
        content = record()
        output.write_text(RUN_JSON, dumps_report(content))
        output.commit(replace_ok)
    except BaseException:
        output.abort()
        raise
    return content
