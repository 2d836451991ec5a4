"""Shared fixtures: a small generated sample, a cache folder, one local SparkSession."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fruits_p8.sample import STYLES, make_sample

# Three labels (two with spaces), both splits: 3 x (5 + 3) = 24 images.
TEST_STYLES = (STYLES[0], STYLES[2], STYLES[5])
TEST_SPLITS = {"Training": 5, "Test": 3}


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    make_sample(root, styles=TEST_STYLES, splits=TEST_SPLITS)
    return root


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def spark(cache_dir):
    from fruits_p8.spark import build_session

    session = build_session("local[2]", os.environ, cache_dir,
                            {"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()
