"""The whole pipeline on a real multi-process Spark cluster: a standalone master and two
workers on 127.0.0.1, started from the pip-installed PySpark.

Local mode runs driver and executors in one JVM; here each worker starts its own executor JVM
and Python workers, as YARN would on EMR: the weights travel by broadcast, the counters and
moments by accumulators, and the executors read the images and write the Parquet parts
(from local files to moto S3 through boto3).
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from fruits_p8.java import find_java
from tests.conftest import TEST_SPLITS, TEST_STYLES

pytestmark = pytest.mark.cluster
N_IMAGES = sum(TEST_SPLITS.values()) * len(TEST_STYLES)
WORKERS = 2
START_TIMEOUT_S = 90
RUN_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def alive_workers(ui_port: int) -> int:
    """Workers the master counts as ALIVE (its web UI's JSON); 0 while it is not up."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{ui_port}/json/", timeout=2) as answer:
            return int(json.load(answer).get("aliveworkers", 0))
    except (OSError, ValueError):
        return 0


class StandaloneCluster:
    """A master and its workers, as child processes, stopped in reverse order."""

    def __init__(self, root: Path, environ: dict[str, str]) -> None:
        import pyspark

        self.root, self.environ = root, environ
        self.spark_class = Path(pyspark.__file__).parent / "bin" / "spark-class"
        self.port, self.ui_port = free_port(), free_port()
        self.processes: list[subprocess.Popen] = []

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _launch(self, name: str, *args: str) -> None:
        log = (self.root / f"{name}.log").open("w")
        self.processes.append(subprocess.Popen([str(self.spark_class), *args], env=self.environ,
                                               stdout=log, stderr=subprocess.STDOUT))

    def start(self) -> None:
        self._launch("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                     "--port", str(self.port), "--webui-port", str(self.ui_port))
        for n in range(WORKERS):
            work = self.root / f"worker-{n}"
            work.mkdir()
            self._launch(f"worker-{n}", "org.apache.spark.deploy.worker.Worker", "--host",
                         "127.0.0.1", "--cores", "1", "--memory", "2g", "--work-dir", str(work),
                         "--webui-port", str(free_port()), self.url)
        deadline = time.monotonic() + START_TIMEOUT_S
        while alive_workers(self.ui_port) < WORKERS:
            if time.monotonic() > deadline or any(p.poll() is not None for p in self.processes):
                logs = "\n".join(p.read_text()[-1500:] for p in self.root.glob("*.log"))
                raise RuntimeError(f"the standalone cluster did not come up:\n{logs}")
            time.sleep(0.5)

    def stop(self) -> None:
        for process in reversed(self.processes):
            process.terminate()
        for process in self.processes:
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=20)

    def executor_logs(self) -> dict[int, list[Path]]:
        """Per worker, the stderr of every executor it ran (work/app-*/<executor>/stderr)."""
        return {n: sorted((self.root / f"worker-{n}").glob("app-*/*/stderr"))
                for n in range(WORKERS)}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, cache_dir):
    import pyspark

    root = tmp_path_factory.mktemp("standalone")
    java = find_java(os.environ, cache_dir / "java-shim")
    environ = {**os.environ, "JAVA_HOME": str(java.home),
               "SPARK_HOME": str(Path(pyspark.__file__).parent), "SPARK_LOCAL_IP": "127.0.0.1",
               "SPARK_LOG_DIR": str(root), "SPARK_CONF_DIR": str(root)}
    standalone = StandaloneCluster(root, environ)
    try:
        standalone.start()
        yield standalone
    finally:
        standalone.stop()


def fruits_p8(cluster: StandaloneCluster, cache_dir: Path, *args: str) -> dict:
    """`fruits-p8 run` as its own process, a driver of the cluster; returns its run.json."""
    done = subprocess.run(
        [sys.executable, "-m", "fruits_p8", "run", "--master", cluster.url, "--weights",
         "random", "--k", "4", "--batch-size", "8", "--partitions", "4", "--cache-dir",
         str(cache_dir), "--conf", "spark.executor.memory=1g", "--conf",
         "spark.cores.max=2", *args],
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, env=cluster.environ)
    assert done.returncode == 0, done.stderr[-4000:]
    assert f"wrote {N_IMAGES} feature rows and 0 error rows" in done.stdout
    return done


def test_the_pipeline_runs_on_a_standalone_cluster_from_local_files_to_s3(
        cluster, sample_dir, cache_dir, s3):
    settings, bucket = s3
    settings.client().create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": settings.region})
    fruits_p8(cluster, cache_dir, "--input", str(sample_dir), "--output", f"s3://{bucket}/out",
              "--endpoint-url", settings.endpoint_url, "--io", "boto3")
    logs = cluster.executor_logs()
    assert all(logs[n] for n in range(WORKERS)), logs  # an executor JVM on each worker

    client = settings.client()
    listed = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="out/")
              ["Contents"]]
    assert "out/_SUCCESS" in listed and "out/errors/_SUCCESS" in listed
    parts = [k for k in listed if k.startswith("out/features/") and k.endswith(".parquet")]
    assert len(parts) >= 2  # written by the tasks themselves, one part per partition
    rows = sum(pq.read_table(io.BytesIO(client.get_object(Bucket=bucket, Key=k)["Body"].read()))
               .num_rows for k in parts)
    assert rows == N_IMAGES
    report = json.loads(client.get_object(Bucket=bucket, Key="out/run.json")["Body"].read())
    counts = report["counts"]
    # the accumulators came back from both executors: every image went through a CNN once
    assert counts["files"] == counts["cnn_images"] == N_IMAGES
    assert counts["model_builds"] >= WORKERS  # one model per Python worker, in each executor
    assert report["pca"]["k"] == 4  # fitted from moments summed by accumulators
    assert 0 < report["pca"]["explained_variance"]["total"] <= 1
