"""--master and --conf checked before the JVM starts: a typo is one line, not a JVM trace.

Only what Spark would refuse is refused: a master URL no scheduler takes, a local master with
no thread, a memory size neither Spark nor the JVM reads, a count that is not a positive
whole number, a task asking more cores than a local master has. Settings this module does
not know pass through, for Spark to judge.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from fruits_p8.errors import ParameterError, UsageError

MASTERS = "local, local[N], local[*], local[N,RETRIES], spark://HOST:PORT, yarn or k8s://URL"
_LOCAL = re.compile(r"local(?:\[(?P<threads>\*|\d+)(?:\s*,\s*(?P<retries>\d+))?\])?")
_LOCAL_CLUSTER = re.compile(r"local-cluster\[\s*\d+\s*,\s*(?P<cores>\d+)\s*,\s*\d+\s*\]")
_REMOTE = re.compile(r"(spark|k8s|mesos)://\S+|yarn")
# spark.driver.memory becomes the JVM's -Xmx as written: the JVM's grammar.
_JVM_SIZE = re.compile(r"\d+[kmgt]?", re.IGNORECASE)
# Spark's own byte strings (JavaUtils.byteStringAs): a number and an optional unit.
_SPARK_SIZE = re.compile(r"\d+(b|k|kb|m|mb|g|gb|t|tb|p|pb)?", re.IGNORECASE)
SIZES = ("spark.executor.memory", "spark.driver.memoryOverhead",
         "spark.executor.memoryOverhead", "spark.driver.maxResultSize",
         "spark.memory.offHeap.size", "spark.executor.pyspark.memory",
         "spark.python.worker.memory")
COUNTS = ("spark.task.cpus", "spark.driver.cores", "spark.executor.cores",
          "spark.executor.instances", "spark.default.parallelism",
          "spark.sql.shuffle.partitions", "spark.task.maxFailures")


def master_cores(master: str, cpu_count: int | None) -> int | None:
    """The cores a master gives one executor when that is known here (local masters, with
    `cpu_count` for local[*]), else None; UsageError for a master Spark would refuse."""
    local = _LOCAL.fullmatch(master)
    if local:
        threads, retries = local.group("threads"), local.group("retries")
        if threads == "0" or retries == "0":
            what = "threads" if threads == "0" else "attempts per task"
            raise UsageError(f"--master {master} asks for 0 {what}: use local[N] with N >= 1, "
                             "or local[*] for all cores")
        if threads is None:
            return 1
        return cpu_count if threads == "*" else int(threads)
    cluster = _LOCAL_CLUSTER.fullmatch(master)
    if cluster:
        return int(cluster.group("cores"))
    if _REMOTE.fullmatch(master):
        return None
    raise UsageError(f"--master {master!r} is not a Spark master: use {MASTERS}")


def check_conf(conf: Mapping[str, str], cores: int | None, master: str) -> None:
    """UsageError for a value Spark or the JVM cannot read; ParameterError for
    spark.task.cpus above the cores of a local master."""
    for key, value in conf.items():
        if key == "spark.driver.memory" and not _JVM_SIZE.fullmatch(value):
            raise UsageError(f"--conf {key}={value}: not a memory size; write it as the JVM "
                             "does, a whole number with k, m, g or t (e.g. 4g, 512m)")
        if key in SIZES and not _SPARK_SIZE.fullmatch(value):
            raise UsageError(f"--conf {key}={value}: not a memory size; write a whole number "
                             "with b, k, m, g, t or p (e.g. 4g, 512m)")
        if key in COUNTS and not (value.isdigit() and int(value) >= 1):
            raise UsageError(f"--conf {key}={value}: expected a whole number >= 1")
    task_cpus = int(conf.get("spark.task.cpus", "1"))
    if cores is not None and task_cpus > cores:
        raise ParameterError(
            f"spark.task.cpus={task_cpus} (--conf or --threads-per-task) asks {task_cpus} "
            f"cores per task, but --master {master} has {cores}: ask at most {cores}, or "
            "give the master more threads (local[N])")


def check_settings(master: str, conf: Mapping[str, str], cpu_count: int | None) -> None:
    """The checks above, for a session about to start with this master and these settings
    (`cpu_count`: the cores local[*] has; None where spark-submit decides)."""
    check_conf(conf, master_cores(master, cpu_count), master)
