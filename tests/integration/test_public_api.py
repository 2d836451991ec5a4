"""The flat public API: every name in fruits_p8.__all__ carries a runnable example, and runs it."""

import doctest
import subprocess
import sys

import pytest

import fruits_p8
from fruits_p8 import config

pytestmark = pytest.mark.spark
# A constant has no docstring of its own: its example lives in its module's.
DOCUMENTED_IN = {"EMBEDDED_SAMPLE": config}


def test_import_is_light_and_the_names_resolve():
    code = ("import sys, fruits_p8; assert 'pyspark' not in sys.modules; "
            "assert 'tensorflow' not in sys.modules; "
            "print(sorted(n for n in fruits_p8.__all__ if getattr(fruits_p8, n) is None))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    with pytest.raises(AttributeError):
        fruits_p8.process_data2  # noqa: B018


@pytest.mark.parametrize("name", [n for n in fruits_p8.__all__ if n != "__version__"])
def test_every_public_name_has_an_example_that_runs(name, spark, tmp_path):
    documented = DOCUMENTED_IN.get(name, getattr(fruits_p8, name))
    tests = doctest.DocTestFinder(recurse=False).find(
        documented, name, globs={"spark": spark, "tmp": tmp_path})
    examples = sum(len(t.examples) for t in tests)
    assert examples, f"{name} has no example in its docstring"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for test in tests:
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
