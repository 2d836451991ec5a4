"""How big the executors are, what YARN is told, and how fast a cluster featurizes: one memory
figure per instance type (prices.json) feeds both the executor sizing and the yarn-site
classification, so the two cannot disagree.
"""

from __future__ import annotations

import math

from fruits_p8.errors import UsageError

# Executor sizing. Measured here (TF 2.21, EfficientNet-Lite0, batches of 64 fed by Arrow
# batches of image bytes): a Python worker peaks at ~1.46 GiB resident, ~3.7 GB of address
# space. spark.executor.pyspark.memory stays unset: PySpark enforces it per worker as an
# address-space limit (RLIMIT_AS), under which TensorFlow crashes (a segfault at 2 GiB here);
# the workers' share goes into memoryOverhead, which YARN checks against resident memory.
PYTHON_WORKER_MB = 1792
JVM_OFF_HEAP_MB = 512
EXECUTOR_HEAP_MB = 2048  # holds the persisted features: ~5 KB per image
AM_RESERVE_MB = 1024  # the client-mode application master (512m + 384m) lands on a core node
# Left unallocated on each node: if YARN's figure ends up a few hundred MB below the one the
# plan sets (an EMR default that wins, a rounding to the scheduler's increment), both
# containers still fit.
YARN_HEADROOM_MB = 512
# A step timeout never below this, and this many times the expected step duration.
MIN_STEP_TIMEOUT_MIN = 30
STEP_TIMEOUT_FACTOR = 3


def instance_spec(prices: dict, instance_type: str) -> dict:
    """Size, YARN memory and hourly prices of an instance type from prices.json."""
    spec = prices["instances"].get(instance_type)
    if spec is None:
        raise UsageError(f"no price/size entry for {instance_type} in prices.json: "
                         f"known: {', '.join(prices['instances'])}")
    return spec


def yarn_site(yarn_memory_mb: int) -> dict:
    """The yarn-site classification that makes YARN's per-node memory the figure the executor
    sizing starts from (instead of whatever the release's default turns out to be)."""
    return {"Classification": "yarn-site", "Properties": {
        "yarn.nodemanager.resource.memory-mb": str(yarn_memory_mb),
        "yarn.scheduler.maximum-allocation-mb": str(yarn_memory_mb),
    }}


def executor_sizing(vcpu: int, yarn_memory_mb: int, core_count: int,
                    instance_type: str = "") -> dict[str, str]:
    """One executor per core node, as large as YARN allows beside the application master and
    the headroom: a small heap, and an overhead holding the JVM's off-heap and one Python
    worker (TensorFlow and its model) per concurrent task. Where every vCPU's worker does not
    fit, tasks take several CPUs each (spark.task.cpus), so fewer workers run, each with more
    threads."""
    overhead = yarn_memory_mb - YARN_HEADROOM_MB - AM_RESERVE_MB - EXECUTOR_HEAP_MB
    workers = min(vcpu, (overhead - JVM_OFF_HEAP_MB) // PYTHON_WORKER_MB)
    if workers < 1:
        raise UsageError(f"{instance_type or 'this instance type'} gives YARN {yarn_memory_mb} "
                         f"MB per node: too little for one Python worker ({PYTHON_WORKER_MB} "
                         "MB) beside the executor; choose a larger instance type")
    return {
        "spark.executor.instances": str(core_count),
        "spark.executor.cores": str(vcpu),
        "spark.task.cpus": str(math.ceil(vcpu / workers)),
        "spark.executor.memory": f"{EXECUTOR_HEAP_MB}m",
        "spark.executor.memoryOverhead": f"{overhead}m",
    }


def images_per_hour(prices: dict, core_type: str, core_count: int,
                    bfloat16: bool = False) -> float:
    """Images the core nodes featurize per hour: the project's measured rate per vCPU (float32,
    or bfloat16 where the CPU runs it natively) times their vCPUs."""
    spec = instance_spec(prices, core_type)
    rates = prices["throughput"]
    per_vcpu = rates["float32_images_per_vcpu_s"]
    if bfloat16 and spec.get("native_bfloat16", False):
        per_vcpu *= rates["bfloat16_native_speedup"]
    return per_vcpu * spec["vcpu"] * core_count * 3600


def step_timeout_minutes(expected_step_minutes: float) -> int:
    """A step limit far above the expected duration, so only a hung step hits it."""
    return max(MIN_STEP_TIMEOUT_MIN, math.ceil(STEP_TIMEOUT_FACTOR * expected_step_minutes))
