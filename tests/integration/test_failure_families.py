"""Each family of failure reproduced for real on the command line: one `fruits-p8: error:`
line and its exit code, no Python or Java trace on the console, the trace in the log the line
names, the input and the previous output untouched.

A full disk (a small tmpfs: needs root), an input folder the run may not read (root without
the right to read every file), the JVM refusing its options, a truncated weights file, and
the S3 endpoint going away mid-run (a moto server stopped while the run featurizes).
"""

import os
import shutil
import socket
import subprocess
import sys

import pytest

from fruits_p8.config import EMBEDDED_SAMPLE
from tests.support.failures import (
    cli,
    cli_env,
    finished_output,
    one_error_line,
    trace_in,
    tree_digest,
)

pytestmark = pytest.mark.spark
QUICK = ["--weights", "random", "--k", "2", "--master", "local[2]"]


def test_the_jvms_own_refusal_is_one_line_with_its_words(tmp_path, cache_dir):
    # The JVM says this one on its stdout: it goes to the log too, not among the results.
    run = cli(["run", "--output", str(tmp_path / "out"), "--cache-dir", str(cache_dir),
               *QUICK, "--conf", "spark.driver.extraJavaOptions=-Xss1"], tmp_path / "logs")
    assert run.returncode == 8, run.stderr[-3000:]
    log = one_error_line(run.stderr, "Spark could not start: The Java thread stack size "
                         "specified is too small")
    assert run.stdout == ""
    trace_in(log, "JAVA_GATEWAY_EXITED", "Could not create the Java Virtual Machine")
    assert not (tmp_path / "out").exists()


def test_a_truncated_weights_file_is_one_line_and_exit_6(tmp_path, cache_dir, small_input):
    from fruits_p8.features.backbones import lite0_package_file

    weights = tmp_path / "cut.pth"
    weights.write_bytes(lite0_package_file().read_bytes()[:5000])
    run = cli(["run", "--input", str(small_input), "--output", str(tmp_path / "out"),
               "--limit", "2", "--k", "1", "--cache-dir", str(cache_dir), "--master", "local[2]",
               "--weights", str(weights)], tmp_path / "logs")
    assert run.returncode == 6, run.stderr[-3000:]
    one_error_line(run.stderr, f"cannot read EfficientNet-Lite0 weights from {weights}: the "
                   "file is truncated or damaged")
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


@pytest.fixture
def full_disk(tmp_path):
    """A 96 KiB tmpfs: room for a lease and markers, not for the features."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=96k", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): needs root; "
                    "tests/unit/test_boundary.py covers ENOSPC with a fake")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def test_a_full_disk_is_one_line_and_the_previous_output_survives(
        full_disk, tmp_path, cache_dir, small_input):
    out = full_disk / "out"
    finished_output(out)
    before, images = tree_digest(out), tree_digest(small_input)
    run = cli(["run", "--input", str(small_input), "--output", str(out), "--overwrite",
               "--cache-dir", str(cache_dir), *QUICK], tmp_path / "logs")
    assert run.returncode == 7, run.stderr[-3000:]
    log = one_error_line(run.stderr, "no space left on the device holding")
    trace_in(log, "No space left on device")
    assert tree_digest(out) == before and tree_digest(small_input) == images
    assert sorted(p.name for p in full_disk.iterdir()) == ["out"]  # no staging, no lease


DROP_READ_RIGHTS = ("setpriv", "--bounding-set=-dac_override,-dac_read_search",
                    "--inh-caps=-dac_override,-dac_read_search")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("setpriv"),
                    reason="needs root and setpriv: the run goes as root without the right "
                    "to read every file (as an ordinary user, chmod 000 alone would do)")
def test_an_input_folder_the_run_may_not_read_is_one_line_and_exit_3(
        tmp_path, cache_dir, small_input):
    images = tree_digest(small_input)
    small_input.chmod(0o000)
    try:
        run = cli(["run", "--input", str(small_input), "--output", str(tmp_path / "out"),
                   "--cache-dir", str(cache_dir), *QUICK], tmp_path / "logs",
                  prefix=DROP_READ_RIGHTS)
    finally:
        small_input.chmod(0o755)
    assert run.returncode == 3, run.stderr[-3000:]
    one_error_line(run.stderr, str(small_input))
    assert tree_digest(small_input) == images
    assert not (tmp_path / "out").exists() and not list(tmp_path.glob(".out*"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_the_s3_endpoint_going_away_mid_run_is_one_line_and_exit_7(tmp_path, cache_dir):
    from moto.server import ThreadedMotoServer

    from fruits_p8.io.paths import Location
    from fruits_p8.io.s3 import S3Settings
    from fruits_p8.io.upload import upload_tree

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    stopped = False
    try:
        upload_tree(EMBEDDED_SAMPLE / "Banana", Location.parse("s3://gone/in/Banana"),
                    S3Settings(region="eu-west-3", endpoint_url=endpoint), create=True)
        command = [sys.executable, "-m", "fruits_p8", "run", "--input", "s3://gone/in",
                   "--output", "s3://gone/out", "--limit", "8", "--endpoint-url", endpoint,
                   "--cache-dir", str(cache_dir), *QUICK]
        run = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=cli_env(tmp_path / "logs"))
        seen = []
        for line in run.stderr:  # the images are listed; the tasks are about to fetch them
            seen.append(line)
            if "featurize ..." in line:
                server.stop()
                stopped = True
                break
        err = "".join(seen) + run.stderr.read()
        run.wait(timeout=600)
    finally:
        if not stopped:
            server.stop()
    assert stopped, err[-3000:]
    assert run.returncode == 7, err[-3000:]
    log = one_error_line(err, "cannot reach the S3 endpoint")
    trace_in(log, "EndpointConnectionError")
