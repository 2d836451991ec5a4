"""Shared fixtures: a small generated sample, the real photos in ../shared, a cache folder,
one local SparkSession; the `spark` marker on every test that starts Spark."""

from __future__ import annotations

import os
import socket
import tempfile
import uuid
from pathlib import Path

import pytest

from fruits_p8.sample import STYLES, make_sample

pytest_plugins = ["pytester"]  # tests/unit/test_markers.py runs pytest on this conftest

# Fake credentials for the whole session, set before any Spark worker starts (workers inherit
# the environment): boto3 finds them through its standard chain. No test talks to AWS: every
# S3 call goes to the moto server below.
for _name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
    os.environ.pop(_name, None)
os.environ.update({
    "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing", "AWS_DEFAULT_REGION": "eu-west-3",
    "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    # the commands' logs (fruits_p8.run_log), not in the home folder
    "FRUITS_P8_LOG_DIR": tempfile.mkdtemp(prefix="fruits_p8-test-logs-"),
})

# The real Fruits 360 Test split (17,845 photos, 103 labels), beside the repository in
# developer sessions and CI; absent from a user's clone.
REPO_ROOT = Path(__file__).resolve().parents[1]
REAL_TEST_SPLIT = REPO_ROOT.parent / "shared" / "data" / "fruits-360" / "Test"

# Three labels (two with spaces), both splits: 3 x (5 + 3) = 24 images.
TEST_STYLES = (STYLES[0], STYLES[2], STYLES[5])
TEST_SPLITS = {"Training": 5, "Test": 3}


# Where a test without the `spark` marker finds Spark: nowhere, so its launch fails with this
# path in the message, in the test's process and in any child it starts.
NO_SPARK_HOME = "/no-spark-here/mark-the-test-spark"


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """`-m "not spark"` leaves out every test that starts Spark: those using the session
    fixture get the marker here, a cluster test is a Spark test, the ones that start Spark
    in a child process carry `pytestmark = pytest.mark.spark` in their module."""
    for item in items:
        if "spark" in getattr(item, "fixturenames", ()) or item.get_closest_marker("cluster"):
            item.add_marker(pytest.mark.spark)


@pytest.fixture(autouse=True)
def _spark_only_where_marked(request: pytest.FixtureRequest,
                             monkeypatch: pytest.MonkeyPatch) -> None:
    """A test without the `spark` marker that starts Spark fails instead of slipping into the
    Spark-free run: in a child process always, in this one while no session runs yet (as in
    a `-m "not spark"` run)."""
    if request.node.get_closest_marker("spark") is None:
        monkeypatch.setenv("SPARK_HOME", NO_SPARK_HOME)


def dictionary_encoded(parquet) -> dict[str, bool]:
    """Per column path of a Parquet file (path or file object): whether any of its row
    groups holds dictionary-encoded pages."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(parquet).metadata
    found: dict[str, bool] = {}
    for group in range(meta.num_row_groups):
        for i in range(meta.num_columns):
            column = meta.row_group(group).column(i)
            found[column.path_in_schema] = found.get(column.path_in_schema, False) or any(
                "DICTIONARY" in e for e in column.encodings)
    return found


@pytest.fixture(scope="session")
def sample_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sample")
    make_sample(root, styles=TEST_STYLES, splits=TEST_SPLITS)
    return root


@pytest.fixture
def small_input(tmp_path) -> Path:
    """Two labels of the embedded photos (40 files), a copy a test may change or check."""
    import shutil

    from fruits_p8.config import EMBEDDED_SAMPLE

    root = tmp_path / "in"
    for label in ("Banana", "Kiwi"):
        shutil.copytree(EMBEDDED_SAMPLE / label, root / label)
    return root


@pytest.fixture(scope="session")
def real_photos() -> Path:
    """The real Test split; the test is skipped where ../shared is not beside the repository."""
    if not REAL_TEST_SPLIT.is_dir():
        pytest.skip(f"real Fruits 360 photos not found at {REAL_TEST_SPLIT} (../shared/data/"
                    "fruits-360/Test beside the repository: developer sessions and CI have it)")
    return REAL_TEST_SPLIT


def real_counts(split: Path) -> dict[str, int]:
    """Images per label as the dataset's COUNTS-<split>.tsv beside the split states them."""
    lines = (split.parent / f"COUNTS-{split.name}.tsv").read_text().splitlines()[1:]
    return {label: int(count) for label, count in (line.split("\t") for line in lines)}


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def spark(cache_dir):
    from fruits_p8.spark import build_session

    session = build_session("local[2,4]", os.environ, cache_dir,
                            {"spark.sql.shuffle.partitions": "4"})
    yield session
    session.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def moto_endpoint():
    """A real moto S3 server on 127.0.0.1 (free port), for the whole session."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    yield f"http://127.0.0.1:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint):
    """S3Settings for the moto server and a fresh bucket name (not created)."""
    from fruits_p8.io.s3 import S3Settings

    return S3Settings(region="eu-west-3", endpoint_url=moto_endpoint), f"b-{uuid.uuid4().hex[:10]}"
