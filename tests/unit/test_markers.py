"""The `spark` marker is reliable: `-m "not spark"` runs no test that starts Spark."""

import os
import subprocess
import sys

from tests.conftest import NO_SPARK_HOME, REPO_ROOT


def test_a_test_without_the_marker_finds_no_spark_to_start():
    # pyspark reads SPARK_HOME when it launches the JVM: in this process (where no session
    # runs yet, as in a `-m "not spark"` run) and in every child.
    assert os.environ["SPARK_HOME"] == NO_SPARK_HOME
    child = subprocess.run(
        [sys.executable, "-c", "from pyspark import SparkContext; SparkContext('local[1]')"],
        capture_output=True, text=True, timeout=120)
    assert child.returncode != 0 and NO_SPARK_HOME in child.stderr


TESTS = '''
import pytest


def test_plain():
    pass


def test_uses_the_session(spark):
    pass


@pytest.mark.cluster
def test_on_a_cluster():
    pass
'''


def test_spark_fixture_and_cluster_tests_are_left_out_by_not_spark(pytester):
    pytester.makeconftest((REPO_ROOT / "tests" / "conftest.py").read_text())
    pytester.makepyfile(test_kinds=TESTS)
    pytester.makeini("[pytest]\nmarkers =\n    spark: s\n    cluster: c\n")
    result = pytester.runpytest("--collect-only", "-q", "-m", "not spark")
    result.stdout.fnmatch_lines(["test_kinds.py::test_plain", "*1/3 tests collected*"])
