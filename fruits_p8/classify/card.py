"""The classifier's card: what it was trained on and which features it expects, so that it
is never applied to features of another backbone or another fitted basis."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field

from fruits_p8.errors import FittedModelError

CARD = "classifier.json"
MODEL = "classifier"  # the Spark ML PipelineModel folder beside the card
COLUMNS = ("pca", "features")


@dataclass(frozen=True)
class ClassifierCard:
    """Classes, training counts and validation figures of a trained classifier, and the
    identity of the features it reads (`made_by`, and the fitted basis for `pca`)."""

    on: str  # the column it reads: pca or features
    classes: tuple[str, ...]
    training_counts: dict[str, int]
    reg_param: float
    validation: dict  # {"images": n, "accuracy": a, "by_reg_param": {reg: accuracy}}
    trained_on: str  # the features output
    made_by: dict  # MadeBy of the features (backbone, weights, preprocessing, precision...)
    basis: str | None = None  # PcaBasis.fingerprint for on=pca
    extra: dict = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"

    @classmethod
    def from_json(cls, data: bytes | None, where: str) -> ClassifierCard:
        if data is None:
            raise FittedModelError(f"no classifier at {where}: give the folder `fruits-p8 "
                                   f"train` wrote (it holds {CARD})")
        try:
            values = json.loads(data)
            values["classes"] = tuple(values["classes"])
            return cls(**values)
        except (ValueError, KeyError, TypeError) as exc:
            raise FittedModelError(f"{where}/{CARD} is not a fruits_p8 classifier card "
                                   f"({type(exc).__name__}: {exc})") from None

    def check_features(self, made_by: dict, basis: str | None, where: str) -> None:
        """Refuse features made another way than the training ones: the numbers would not
        mean what the classifier learnt."""
        keys = ("backbone", "weights_sha256", "preprocessing", "precision", "feature_dim")
        apart = [f"{k} {self.made_by.get(k)} (there: {made_by.get(k)})" for k in keys
                 if self.made_by.get(k) != made_by.get(k)]
        if self.on == "pca" and basis != self.basis:
            apart.append(f"fitted basis {self.basis} (there: {basis}; apply the training "
                         "output's basis with `run --fitted`)")
        if apart:
            raise FittedModelError(f"the classifier was trained on other features than those "
                                   f"of {where}: " + "; ".join(apart))
