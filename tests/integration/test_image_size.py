"""--image-size: the CNN's input side, recorded with the features and never mixed."""

import json

import pytest

from fruits_p8 import pipeline
from fruits_p8.config import EMBEDDED_SAMPLE, RunConfig
from fruits_p8.errors import FittedModelError

pytestmark = pytest.mark.spark


def test_a_smaller_input_side_is_recorded_and_a_basis_of_another_size_is_refused(
        spark, cache_dir, tmp_path):
    small = RunConfig(input=str(EMBEDDED_SAMPLE), output=str(tmp_path / "s100"), k=3,
                      limit=24, batch_size=8, cache_dir=cache_dir, image_size=100)
    result = pipeline.run(small, spark=spark)
    record = json.loads((tmp_path / "s100" / "run.json").read_text())
    assert result.rows == 24 and record["model"]["image_size"] == 100
    assert record["model"]["preprocessing"].endswith("input 100x100")
    assert record["model"]["feature_dim"] == 1280
    apply_at_224 = RunConfig(input=str(EMBEDDED_SAMPLE), output=str(tmp_path / "a"), k=None,
                             limit=8, cache_dir=cache_dir, fitted=str(tmp_path / "s100"))
    with pytest.raises(FittedModelError, match="input 100x100"):
        pipeline.preflight(apply_at_224)
    same = pipeline.run(apply_at_224.with_(image_size=100), spark=spark)
    assert same.rows == 8
