"""The `spark` marker is reliable: `-m "not spark"` runs no test that starts Spark."""

import subprocess
import sys

import pytest

from tests.conftest import NO_SPARK_HOME, REPO_ROOT


def test_a_test_without_the_marker_cannot_start_spark_here_or_in_a_child():
    from pyspark import SparkContext

    with pytest.raises(FileNotFoundError, match=NO_SPARK_HOME):
        SparkContext(master="local[1]", appName="unmarked")
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
