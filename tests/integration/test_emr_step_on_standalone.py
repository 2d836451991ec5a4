"""The EMR step as the plan writes it, run for real: its exact command line (`timeout ...
spark-submit ... run.py run ...`) with the plan's spark-defaults and spark-env written where
EMR writes them (SPARK_CONF_DIR), against the tests' standalone cluster on 127.0.0.1 instead
of YARN. Replaced, and only these: the master (yarn -> the standalone URL), the paths that
exist only on a node (spark-submit, run.py, the venv's Python) and the s3:// data (local
folders: the standalone cluster has no EMRFS). The plan is sized for this cluster's shape (2
core nodes of 1 vCPU) by the same sizing code, so the executors it asks for can start.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fruits_p8.emr import artifacts, plan
from tests.conftest import TEST_SPLITS, TEST_STYLES
from tests.integration.test_standalone_cluster import WORKERS, cluster  # noqa: F401

pytestmark = pytest.mark.cluster
N_IMAGES = sum(TEST_SPLITS.values()) * len(TEST_STYLES)
STEP_TIMEOUT_S = 300
NODE_PYTHON = "/opt/fruits_p8/venv/bin/python"
NODE_RUN_PY = "/opt/fruits_p8/run.py"
# a core node like the standalone workers: 1 vCPU; YARN memory enough for one Python worker
LOCAL_NODE = {"vcpu": 1, "memory_gib": 8, "yarn_memory_mb": 6144, "native_bfloat16": False,
              "ec2": 0.0, "emr": 0.0}


def conf_dir(request: dict, folder: Path) -> Path:
    """spark-defaults.conf and spark-env.sh from the request's classifications, as EMR writes
    them on the primary node."""
    folder.mkdir()
    config = {c["Classification"]: c for c in request["Configurations"]}
    defaults = config["spark-defaults"]["Properties"]
    (folder / "spark-defaults.conf").write_text(
        "".join(f"{key} {value.replace(NODE_PYTHON, sys.executable)}\n"
                for key, value in defaults.items()))
    exports = config["spark-env"]["Configurations"][0]["Properties"]
    (folder / "spark-env.sh").write_text(
        "".join(f"export {key}={value.replace(NODE_PYTHON, sys.executable)}\n"
                for key, value in exports.items()))
    return folder


def on_this_machine(args: list[str], master: str, run_py: Path, input_dir: Path,
                    output_dir: Path) -> list[str]:
    """The step's arguments with only the node-specific parts swapped."""
    import pyspark

    local = list(args)
    local[local.index("spark-submit")] = str(Path(pyspark.__file__).parent / "bin" /
                                             "spark-submit")
    local[local.index("--master") + 1] = master
    local[local.index(NODE_RUN_PY)] = str(run_py)
    local[local.index("--input") + 1] = str(input_dir)
    local[local.index("--output") + 1] = str(output_dir)
    return local


def test_the_plans_step_runs_with_its_spark_settings_on_a_standalone_cluster(
        cluster, sample_dir, cache_dir, tmp_path):  # noqa: F811
    templates = plan.load_templates(plan.default_emr_dir())
    templates.prices["instances"]["local.node"] = LOCAL_NODE
    settings = plan.EmrSettings(
        bucket="fruits-bucket", input="s3://fruits-bucket/in", output="s3://fruits-bucket/out",
        core_instance_type="local.node", core_count=WORKERS,
        run_args=("--weights", "random", "--k", "4", "--batch-size", "8", "--partitions", "4",
                  "--cache-dir", str(cache_dir)))
    request = plan.build_run_job_flow(templates, settings, "r", "a")
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[:5] == ["timeout", "--signal=TERM", "--kill-after=120", "30m", "spark-submit"]

    run_py = tmp_path / "run.py"
    run_py.write_text(artifacts.RUN_PY)
    output = tmp_path / "out"
    env = {**cluster.environ, "SPARK_CONF_DIR": str(conf_dir(request, tmp_path / "conf"))}
    done = subprocess.run(on_this_machine(args, cluster.url, run_py, sample_dir, output),
                          capture_output=True, text=True, timeout=STEP_TIMEOUT_S, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"wrote {N_IMAGES} feature rows and 0 error rows" in done.stdout
    report = json.loads((output / "run.json").read_text())
    assert report["counts"]["cnn_images"] == N_IMAGES

    spark = next(c for c in request["Configurations"]
                 if c["Classification"] == "spark-defaults")["Properties"]
    heap = spark["spark.executor.memory"].removesuffix("m")
    launched = [log.read_text() for logs in cluster.executor_logs().values() for log in logs]
    assert launched and all(f"-Xmx{heap}M" in text for text in launched), \
        "an executor ran without the plan's spark.executor.memory"

    # the same step with a limit it cannot meet: `timeout` stops it (exit 124, a failed step)
    hung = on_this_machine(args, cluster.url, run_py, sample_dir, tmp_path / "out-2")
    hung[hung.index("30m")] = "3s"
    stopped = subprocess.run(hung, capture_output=True, text=True, timeout=STEP_TIMEOUT_S,
                             env=env, cwd=tmp_path)
    assert stopped.returncode == 124, stopped.stderr[-2000:]
