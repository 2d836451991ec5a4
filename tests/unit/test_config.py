from pathlib import Path

import pytest

from fruits_p8.config import RunConfig, default_cache_dir
from fruits_p8.errors import UsageError


def test_defaults_are_sane():
    config = RunConfig(input="in", output="out")
    assert config.k == 200 and config.variance is None
    assert config.backbone == "efficientnet_lite0" and config.weights == "auto"
    assert config.region == "eu-west-3"
    assert config.precision == "auto"


@pytest.mark.parametrize(
    "changes,message",
    [
        ({"k": 0}, "--k must be a positive"),
        ({"k": 5, "variance": 0.9}, "either --k or --variance"),
        ({"k": None}, "give --k or --variance"),
        ({"k": None, "variance": 1.5}, "--variance must be in"),
        ({"batch_size": 0}, "--batch-size"),
        ({"partitions": 0}, "--partitions"),
        ({"limit": 0}, "--limit"),
        ({"io": "ftp"}, "--io"),
        ({"pca_solver": "svd"}, "--pca-solver"),
        ({"image_size": 8}, "--image-size must be between 32 and 1024"),
        ({"precision": "float16"}, "--precision must be auto, float32 or bfloat16"),
        ({"input": ""}, "--input"),
    ],
)
def test_invalid_values_are_one_clear_usage_error(changes, message):
    with pytest.raises(UsageError) as info:
        RunConfig(**{"input": "in", "output": "out", **changes})
    assert message in str(info.value)


def test_cache_dir_comes_from_the_given_environment():
    assert default_cache_dir({"FRUITS_P8_CACHE": "/x"}) == Path("/x")
    assert default_cache_dir({"XDG_CACHE_HOME": "/c"}) == Path("/c/fruits_p8")
    assert default_cache_dir({"HOME": "/h"}) == Path("/h/.cache/fruits_p8")


def test_report_dict_is_json_friendly():
    import json

    config = RunConfig(input="in", output="out", k=None, variance=0.9,
                       spark_conf={"spark.task.cpus": "2"})
    data = json.loads(json.dumps(config.to_dict()))
    assert data["variance"] == 0.9 and data["k"] is None
    assert data["spark_conf"] == {"spark.task.cpus": "2"}
    assert data["cache_dir"] == str(config.cache_dir)
    rebuilt = RunConfig(**{**data, "cache_dir": Path(data["cache_dir"])})
    assert rebuilt == config
