"""run.json: what went in, what came out, how it was made, how long each stage took."""

from __future__ import annotations

import numpy as np

from fruits_p8 import __version__
from fruits_p8.config import RunConfig
from fruits_p8.features.featurizer import Featurizer
from fruits_p8.features.forward import preprocessing
from fruits_p8.features.weights import Weights
from fruits_p8.io.listing import Listing
from fruits_p8.reduce.pca import cumulative_variance
from fruits_p8.run_report import Timings, explained_variance_section, versions
from fruits_p8.schema import MODEL_DIR
from fruits_p8.stages.basis import Basis
from fruits_p8.stages.featurize import Featurized, Layout


def run_record(config: RunConfig, output: str, listing: Listing, featurized: Featurized,
               basis: Basis, weights: Weights, featurizer: Featurizer, layout: Layout,
               timings: Timings, duplicates: dict, precision_choice: dict) -> dict:
    """The run.json content. `input` and `output` as the run resolved them (the config
    section keeps them as typed). `files = rows_written + errors`, checked by check_counts;
    the `skipped` files (--skip-hidden) matched the glob but were not read."""
    counts = {
        "files": listing.count,
        "unlabelled": listing.unlabelled,
        "rows_written": featurized.rows,
        "errors": featurized.errors,
        "skipped": sum(listing.skipped.values()),
        "skipped_by_reason": dict(listing.skipped),
        "links_not_followed": listing.links_not_followed,
        "cnn_images": featurizer.counters.images.value,
        "model_builds": featurizer.counters.builds.value,
    }
    if featurized.reused is not None:
        counts["reused"] = featurized.reused
    elif config.incremental:
        counts["reused"] = 0
    model = basis.model
    return {
        "fruits_p8": __version__,
        "input": listing.root,
        "output": output,
        "glob": config.glob,
        "counts": counts,
        "duplicates": duplicates,
        "model": {
            "backbone": weights.backbone,
            "feature_dim": featurizer.backbone.feature_dim,
            "weights": weights.describe(),
            "random_weights": not weights.pretrained,
            "batch_size": config.batch_size,
            "precision": config.precision,
            "precision_choice": precision_choice,
            "preprocessing": preprocessing(config.image_size, featurizer.backbone),
            "image_size": config.image_size or featurizer.backbone.input_size,
        },
        "pca": {
            "k": model.k,
            "basis": basis.source,
            "fitted_model": f"{output}/{MODEL_DIR}",
            "requested_k": config.k,
            "requested_variance": config.variance,
            "solver": config.pca_solver,
            "fit_passes": basis.passes,
            "constant_features": int(np.sum(model.std == 0)),
            "explained_variance": explained_variance_section(
                model.explained, cumulative_variance(model.explained)),
        },
        "spark": {"partitions": layout.partitions, "threads_per_task": layout.threads},
        "timings_s": {**timings.stages, "total": timings.total},
        "versions": versions(),
        "config": config.to_dict(),
    }
