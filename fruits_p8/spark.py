"""Start (or join) the SparkSession a run uses, with settings that suit this pipeline."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Mapping, MutableMapping
from pathlib import Path

from fruits_p8.errors import EnvironmentProblem, UserError
from fruits_p8.java import find_java, refusal, stderr_mark, stdout_with_stderr, written_since
from fruits_p8.signals import keeping_sigint
from fruits_p8.spark_settings import check_settings

log = logging.getLogger(__name__)

# All cores, and up to 4 attempts per task as on a cluster (plain local[*] never retries).
LOCAL_MASTER = "local[*,4]"

# What Spark's Parquet writer puts in the files, set alike for local sessions and EMR clusters
# (`emr plan` adds it to spark-defaults): timestamps as the pyarrow writers store them, not INT96.
OUTPUT_SETTINGS: dict[str, str] = {
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
}

# Settings for a session we start ourselves on one machine; a cluster (spark-submit) keeps its own.
LOCAL_DEFAULTS: dict[str, str] = {
    **OUTPUT_SETTINGS,
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.bindAddress": "127.0.0.1",
    "spark.driver.host": "127.0.0.1",
    "spark.driver.memory": "4g",
    "spark.sql.shuffle.partitions": "8",
    "spark.python.worker.reuse": "true",
    "spark.sql.execution.pyspark.udf.faulthandler.enabled": "true",
    # pyspark's daemon, quiet when a job stops reading a worker early (first(), show(), a
    # cancelled task): no BrokenPipeError traceback on the console (fruits_p8.worker_daemon)
    "spark.python.daemon.module": "fruits_p8.worker_daemon",
}


# The local JVM's own options. Its work is small beside the CNN's, and C2, HotSpot's optimising
# compiler, spent more CPU compiling it than the compiled code saved, CPU the Python workers
# needed; C1 alone compiles quickly (A/B in docs/performance.md). A user's
# --conf spark.driver.extraJavaOptions=... comes after these (the last of a JVM flag wins).
LOCAL_JAVA_OPTIONS = "-XX:TieredStopAtLevel=1"


def local_java_options(log4j: Path, user_options: str | None = None) -> str:
    """The local JVM's options: our log settings and LOCAL_JAVA_OPTIONS, then the user's.

    >>> local_java_options(Path("/l.properties"), "-XX:TieredStopAtLevel=4")
    '-Dlog4j2.configurationFile=file:/l.properties -XX:TieredStopAtLevel=1 -XX:TieredStopAtLevel=4'
    """
    ours = f"-Dlog4j2.configurationFile=file:{log4j} {LOCAL_JAVA_OPTIONS}"
    return f"{ours} {user_options}" if user_options else ours


def under_spark_submit(environ: Mapping[str, str]) -> bool:
    """True when spark-submit launched this Python process (it then owns master and settings)."""
    return "PYSPARK_GATEWAY_PORT" in environ


def build_session(
    master: str | None,
    environ: MutableMapping[str, str],
    cache_dir: Path,
    conf: Mapping[str, str] | None = None,
    app_name: str = "fruits_p8",
):
    """A SparkSession: joins spark-submit's context, else starts a local one with a usable Java.

    `environ` is the process environment (os.environ): Spark's launcher reads JAVA_HOME and
    PYSPARK_PYTHON from it, so a local start writes them there.

    >>> import os
    >>> from fruits_p8 import build_session, default_cache_dir
    >>> session = build_session("local[2]", os.environ, default_cache_dir(os.environ))
    >>> session.range(3).count()
    3
    """
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.appName(app_name)
    submitted = under_spark_submit(environ)
    check_settings(master or LOCAL_MASTER, conf or {}, None if submitted else cpu_count())
    if not submitted:
        java = find_java(environ, cache_dir / "java-shim")
        log.info("java %s from %s (%s)", java.major, java.origin, java.home)
        environ["JAVA_HOME"] = str(java.home)
        environ.setdefault("PYSPARK_PYTHON", sys.executable)
        environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
        builder = builder.master(master or LOCAL_MASTER)
        settings = dict(LOCAL_DEFAULTS)
        log4j = Path(__file__).parent / "resources" / "log4j2.properties"
        conf = {**(conf or {}), "spark.driver.extraJavaOptions": local_java_options(
            log4j, (conf or {}).get("spark.driver.extraJavaOptions"))}
    else:
        settings = {}
        if master:
            builder = builder.master(master)
    settings.update(conf or {})
    for key, value in settings.items():
        builder = builder.config(key, value)
    mark = stderr_mark()
    try:
        with keeping_sigint(), stdout_with_stderr(mark):
            spark = builder.getOrCreate()
    except Exception as exc:
        raise refused(exc, written_since(mark)) from exc
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def cpu_count() -> int:
    """The cores this process may use (local[*] gives Spark as many)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def refused(exc: Exception, java_said: str) -> UserError:
    """Spark did not start: the reason the JVM or Spark gave, in one line."""
    from fruits_p8.boundary import brief, gather, python_chain

    if isinstance(exc, UserError):
        return exc
    reason = refusal(java_said)
    if reason is None:
        layers = gather(python_chain(exc)).layers
        reason = brief(layers[-1][1] if layers else str(exc))
    return EnvironmentProblem(f"Spark could not start: {reason}; check --master and --conf, "
                              "and that Java can run here")


def launched_gateway():
    """The Py4J gateway of a JVM this process launched, if any (not spark-submit's)."""
    if "pyspark" not in sys.modules:
        return None
    from pyspark import SparkContext

    gateway = SparkContext._gateway
    return gateway if getattr(gateway, "proc", None) is not None else None


def stop_jvm(gateway, grace_s: float = 60.0) -> None:
    """Stop the running SparkContext and end the JVM of `gateway`, waiting for it (it stops
    the Python workers on its way out): nothing of this process's Spark outlives it. A JVM
    still there after `grace_s` is killed (its workers end when it closes their pipe)."""
    from pyspark import SparkContext

    active = SparkContext._active_spark_context
    if active is not None:
        try:
            active.stop()
        except Exception as exc:  # a JVM already gone: it is ended below all the same
            log.debug("stopping Spark: %s", exc)
    try:
        gateway.shutdown()
    except Exception as exc:
        log.debug("closing the Py4J gateway: %s", exc)
    process = gateway.proc
    if process.stdin is not None:
        try:
            process.stdin.close()  # the JVM's gateway server exits when its stdin closes
        except OSError:
            pass
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        log.warning("Spark's JVM did not stop within %.0f s: killing it", grace_s)
        process.kill()
        process.wait()
    SparkContext._gateway = None
    SparkContext._jvm = None
