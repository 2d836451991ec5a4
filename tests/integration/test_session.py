"""The local session as fruits_p8 starts it: its settings reach the JVM Spark launched."""

import pytest

from fruits_p8.spark import LOCAL_JAVA_OPTIONS

pytestmark = [pytest.mark.spark, pytest.mark.parity]


def test_the_local_jvm_runs_with_our_java_options_and_log_settings(spark):
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert LOCAL_JAVA_OPTIONS in arguments, arguments
    assert any(a.startswith("-Dlog4j2.configurationFile=file:") for a in arguments), arguments
    conf = spark.sparkContext.getConf()
    assert conf.get("spark.python.daemon.module") == "fruits_p8.worker_daemon"
