"""The local JVM's options: ours first, a user's after them (the last of a JVM flag wins)."""

import doctest
from pathlib import Path

from fruits_p8 import spark
from fruits_p8.spark import LOCAL_JAVA_OPTIONS, local_java_options


def test_our_options_alone_without_a_users():
    options = local_java_options(Path("/x/log4j2.properties"))
    assert options.split() == ["-Dlog4j2.configurationFile=file:/x/log4j2.properties",
                               LOCAL_JAVA_OPTIONS]


def test_a_users_options_come_after_ours_and_keep_our_log_settings():
    options = local_java_options(Path("/x/l.properties"), "-XX:TieredStopAtLevel=4 -Xss4m")
    words = options.split()
    assert words[0].startswith("-Dlog4j2.configurationFile=")
    assert words.index(LOCAL_JAVA_OPTIONS) < words.index("-XX:TieredStopAtLevel=4")
    assert words[-1] == "-Xss4m"


def test_the_docstring_example():
    runner = doctest.DocTestRunner()
    for test in doctest.DocTestFinder().find(spark.local_java_options, globs=vars(spark)):
        runner.run(test)
    assert runner.summarize(verbose=False).attempted == 1
    assert runner.summarize(verbose=False).failed == 0
