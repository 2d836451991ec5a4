"""The fit stage: the standardise + PCA the features are projected with, and its source."""

from __future__ import annotations

from dataclasses import dataclass

from fruits_p8.config import RunConfig
from fruits_p8.features.featurizer import Featurizer
from fruits_p8.reduce import Reducer
from fruits_p8.reduce.basis import MadeBy, PcaBasis


@dataclass(frozen=True)
class Basis:
    """The standardise + PCA the features are projected with, and where it came from."""

    model: PcaBasis
    source: str  # "fitted on this run's images", "--fitted <uri>", "kept from <output>"
    passes: int = 0


def fit_basis(config: RunConfig, good, rows: int, featurizer: Featurizer,
              making: MadeBy) -> Basis:
    """Standardise + PCA fitted on this run's rows (from the moments the featurizer summed,
    when it did)."""
    moments = featurizer.counters.moments
    fit = Reducer(config.k, config.variance, config.pca_solver).fit(
        good, featurizer.backbone.feature_dim, rows,
        moments=None if moments is None else moments.value)
    return Basis(fit.basis.with_made_by(making), "fitted on this run's images", fit.passes)
