"""EMR without a cluster: the package outside its clone, the wheelhouse, the bootstrap script.

pip runs here for real, offline: a wheelhouse from a folder of small wheels made on the spot,
`emr prepare` and `emr run` against moto, and bootstrap.sh on what they uploaded in a sandbox
(stand-ins for `aws`, `sudo` and `dnf`, the node's Python a fresh venv without pip, an
unreachable package index).
"""

from __future__ import annotations

import ensurepip
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from botocore.session import get_session
from botocore.validate import validate_parameters

from fruits_p8.emr import artifacts, plan, wheelhouse
from fruits_p8.errors import EnvironmentProblem
from tests.support.wheels import make_wheel

OFFLINE = {"PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_RETRIES": "0",
           "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


@pytest.fixture(scope="module")
def project_wheel(tmp_path_factory) -> Path:
    """The wheel `emr run` builds from this clone."""
    name, data = artifacts.build_wheel()
    path = tmp_path_factory.mktemp("dist") / name
    path.write_bytes(data)
    return path


def pip_env(**more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PIP_") and k != "PYTHONPATH"}
    return {**env, **OFFLINE, **more}


def pip(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True,
                          env=pip_env(**env), timeout=300)


def test_a_pip_installed_package_plans_and_packs_itself_without_the_clone(project_wheel,
                                                                          tmp_path):
    site = tmp_path / "site"
    done = pip("install", "--quiet", "--no-deps", "--target", str(site), str(project_wheel))
    assert done.returncode == 0, done.stderr
    script = tmp_path / "elsewhere.py"
    script.write_text(
        "import json, sys\n"
        "import fruits_p8\n"
        "from fruits_p8.cli import main\n"
        "from fruits_p8.emr import artifacts, plan\n"
        "name, data = artifacts.project_wheel()\n"
        "open(sys.argv[1] + '/' + name, 'wb').write(data)\n"
        "print(json.dumps({'module': fruits_p8.__file__, 'clone': artifacts.in_clone(),\n"
        "                  'definitions': str(plan.default_emr_dir()),\n"
        "                  'requirements': artifacts.requirements()}))\n"
        "sys.exit(main(['emr', 'plan', '--bucket', 'b-1', '--input', 's3://b-1/in',\n"
        "               '--output', 's3://b-1/out']))\n")
    out_dir = tmp_path / "repacked"
    out_dir.mkdir()
    done = subprocess.run([sys.executable, str(script), str(out_dir)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300,
                          env=pip_env(PYTHONPATH=str(site)))
    assert done.returncode == 0, done.stderr
    facts = json.loads(done.stdout.splitlines()[0])
    assert facts["module"].startswith(str(site)) and not facts["clone"]
    assert facts["definitions"].startswith(str(site))
    assert facts["requirements"] == artifacts.requirements()  # metadata says what pyproject says
    body = done.stdout.split("# RunJobFlow request (RUN_ID is a timestamp at run time):\n")[1]
    request = json.loads(body.split("# the same with the AWS CLI:")[0])
    validate_parameters(request, get_session().get_service_model("emr")
                        .operation_model("RunJobFlow").input_shape)

    repacked = next(out_dir.glob("fruits_p8-*.whl"))
    with zipfile.ZipFile(repacked) as wheel:
        names = set(wheel.namelist())
    with zipfile.ZipFile(project_wheel) as wheel:
        built = {n for n in wheel.namelist() if not n.endswith("/RECORD")}
    assert built <= names  # everything the built wheel had, definitions included
    assert {f"fruits_p8/emr/definitions/{n}" for n in ("cluster.json", "configurations.json",
            "steps.json", "prices.json", "bootstrap.sh", "constraints.txt")} <= names
    again = tmp_path / "again"
    done = pip("install", "--quiet", "--no-deps", "--target", str(again), str(repacked))
    assert done.returncode == 0, done.stderr  # pip checks every RECORD hash
    assert (again / "fruits_p8" / "emr" / "definitions" / "cluster.json").is_file()


@pytest.fixture
def find_links(tmp_path, monkeypatch) -> Path:
    """A folder pip takes wheels from, the only source (no index): the test's own PyPI."""
    folder = tmp_path / "pypi"
    folder.mkdir()
    for name, value in {**OFFLINE, "PIP_FIND_LINKS": str(folder)}.items():
        monkeypatch.setenv(name, value)
    return folder


def test_the_wheelhouse_takes_every_wheel_the_cluster_can_install(find_links, tmp_path):
    for name, tag in (("alpha", "cp311-cp311-manylinux_2_28_x86_64"),
                      ("beta", "cp311-abi3-manylinux2014_x86_64"),
                      ("gamma", "py3-none-any"),
                      ("delta", "cp311-cp311-manylinux1_x86_64"),
                      ("epsilon", "cp311-cp311-manylinux_2_34_x86_64"),
                      ("newer-glibc", "cp311-cp311-manylinux_2_35_x86_64"),
                      ("other-python", "cp312-cp312-manylinux_2_17_x86_64"),
                      ("arm", "cp311-cp311-manylinux_2_17_aarch64")):
        make_wheel(find_links, name, tag=tag)
    wheels = artifacts.build_wheelhouse(tmp_path / "wheelhouse",
                                        "alpha\nbeta\ngamma\ndelta\nepsilon\n", b"alpha==1.0\n")
    assert sorted(w.name.split("-")[0] for w in wheels) == [
        "alpha", "beta", "delta", "epsilon", "gamma"]
    for refused in ("newer-glibc", "other-python", "arm"):  # AL2023: glibc 2.34, x86_64
        with pytest.raises(EnvironmentProblem, match="wheelhouse"):
            artifacts.build_wheelhouse(tmp_path / refused, f"{refused}\n", b"")


STUBS = {
    # aws s3 cp --recursive --only-show-errors s3://BUCKET/KEY/ DEST/ from a local "bucket"
    "aws": 'echo "aws $*" >> "$CALLS"; src="${@: -2:1}"; dst="${@: -1}"\n'
           'mkdir -p "$dst"; [ ! -d "$FAKE_S3/${src#s3://}" ] && exit 0  # empty: copies none\n'
           'cp -r "$FAKE_S3/${src#s3://}/." "$dst"\n',
    "sudo": 'echo "sudo $*" >> "$CALLS"\nexec "$@"\n',
    "dnf": 'echo "dnf $*" >> "$CALLS"\nexit 1\n',  # no package repository reachable
}
ENSUREPIP_PIP = next((Path(ensurepip.__file__).parent / "_bundled").glob("pip-*.whl"))
TINY_REQUIREMENTS = "fruits-p8-probe\n"  # the test's closure: one small wheel (and pip)


@pytest.fixture
def aws_offline(monkeypatch):
    """moto in this process, for `emr prepare` and `emr run`."""
    from moto import mock_aws

    with mock_aws():
        import boto3

        session = boto3.session.Session(region_name="eu-west-3")
        session.client("s3").create_bucket(
            Bucket="fruits-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        yield session


@pytest.fixture
def tiny_closure(find_links, monkeypatch):
    """`emr prepare` resolves a one-wheel closure (and the pip that ensurepip bundles) from
    the test's own index: the real one is ~600 MB of TensorFlow."""
    make_wheel(find_links, "fruits-p8-probe")
    shutil.copy(ENSUREPIP_PIP, find_links)
    pip_pin = "pip==" + ENSUREPIP_PIP.name.split("-")[1]
    constraints = artifacts.constraints()
    closure = wheelhouse.closure_id(TINY_REQUIREMENTS, constraints, pip_pin)
    monkeypatch.setattr(wheelhouse, "current_closure",
                        lambda: (TINY_REQUIREMENTS, constraints, pip_pin, closure))
    return closure


def download_bucket(s3, bucket: str, dest: Path) -> None:
    """Every object of the moto bucket as a file under dest/bucket/: the nodes' view of S3."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for item in page.get("Contents", []):
            path = dest / bucket / item["Key"]
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())


def test_prepare_then_run_installs_with_no_index_from_what_prepare_uploaded(
        project_wheel, tiny_closure, aws_offline, monkeypatch, tmp_path, capsys):
    from fruits_p8.cli import main

    monkeypatch.setattr(artifacts, "project_wheel",
                        lambda root=None: (project_wheel.name, project_wheel.read_bytes()))
    monkeypatch.setattr(artifacts, "requirements", lambda root=None: TINY_REQUIREMENTS)
    assert main(["emr", "prepare", "--bucket", "fruits-bucket"]) == 0
    assert f"fruits_p8/wheelhouse/{tiny_closure}" in capsys.readouterr().out
    s3 = aws_offline.client("s3")
    key = f"fruits_p8/wheelhouse/{tiny_closure}"
    lock = s3.get_object(Bucket="fruits-bucket", Key=f"{key}/{wheelhouse.LOCK}")["Body"].read()
    pinned = {line.split("==")[0] for line in lock.decode().splitlines()}
    assert pinned == {"fruits_p8_probe", "pip"} and b"--hash=sha256:" in lock

    assert main(["emr", "run", "--bucket", "fruits-bucket", "--input", "s3://fruits-bucket/in",
                 "--output", "s3://fruits-bucket/out", "--no-wait", "--no-preflight"]) == 0
    emr = aws_offline.client("emr")
    cluster = emr.list_clusters()["Clusters"][0]["Id"]
    action = emr.list_bootstrap_actions(ClusterId=cluster)["BootstrapActions"][0]
    artifacts_uri, wheels_uri = action["Args"]
    assert wheels_uri == f"s3://fruits-bucket/{key}"
    assert main(["emr", "run", "--bucket", "fruits-bucket", "--input", "s3://fruits-bucket/in",
                 "--output", "s3://fruits-bucket/out", "--no-wait", "--no-preflight",
                 "--no-wheelhouse"]) == 0
    newest = next(c["Id"] for c in emr.list_clusters()["Clusters"] if c["Id"] != cluster)
    assert emr.list_bootstrap_actions(ClusterId=newest)["BootstrapActions"][0]["Args"] == [
        artifacts_uri]  # from PyPI, as asked

    fake_s3 = tmp_path / "s3"
    download_bucket(s3, "fruits-bucket", fake_s3)
    node = Node(tmp_path, fake_s3)
    done = node.bootstrap(artifacts_uri, wheels_uri)
    assert done.returncode == 0, done.stderr[-3000:]
    venv_python = node.home / "venv" / "bin" / "python"
    assert f"ready in {node.home / 'venv'}" in done.stdout  # its own import check passed
    probe = subprocess.run([str(venv_python), "-c", "import sys, fruits_p8, fruits_p8_probe, "
                            "pip; print(sys.prefix, pip.__version__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=pip_env())
    assert probe.returncode == 0, probe.stderr
    assert probe.stdout.split() == [str(node.home / "venv"), ENSUREPIP_PIP.name.split("-")[1]]
    calls = node.calls.read_text()
    assert not [line for line in calls.splitlines() if "pip" in line and line.startswith("sudo")]
    assert "dnf" not in calls  # nothing from a package repository either
    installed = next((node.home / "venv").glob("lib/python*/site-packages/fruits_p8_probe"))
    assert (installed / "__init__.py").stat().st_mode & 0o004  # YARN's users can read it
    assert (node.home / "run.py").read_text() == artifacts.RUN_PY

    node.calls.write_text("")
    again = node.bootstrap(artifacts_uri, wheels_uri)
    assert again.returncode == 0 and "already installed" in again.stdout
    assert node.calls.read_text() == ""  # a no-op: nothing copied, nothing installed

    # a wheelhouse never prepared (the plan's request copied by hand) says what to run
    fresh = Node(tmp_path / "other", fake_s3)
    unprepared = fresh.bootstrap(artifacts_uri, "s3://fruits-bucket/fruits_p8/wheelhouse/none")
    assert unprepared.returncode != 0 and "fruits-p8 emr prepare" in unprepared.stderr
    # the same artifacts without the wheelhouse need the index, which is unreachable here
    failed = fresh.bootstrap(artifacts_uri)
    assert failed.returncode != 0 and "fruits_p8 bootstrap FAILED" in failed.stderr
    assert not list(fresh.home.glob(".installed-*"))


def test_a_wheel_that_does_not_match_the_lock_stops_the_bootstrap(
        project_wheel, tiny_closure, find_links, tmp_path):
    fake_s3 = tmp_path / "s3"
    shipped = fake_s3 / "bucket" / "artifacts" / "0.1.0-test"
    shipped.mkdir(parents=True)
    (shipped / project_wheel.name).write_bytes(project_wheel.read_bytes())
    (shipped / "requirements.txt").write_text(TINY_REQUIREMENTS)
    (shipped / "run.py").write_text(artifacts.RUN_PY)
    house = fake_s3 / "bucket" / "wheelhouse" / tiny_closure
    files = wheelhouse.build(tmp_path / "prepared", *wheelhouse.current_closure()[:3])
    house.mkdir(parents=True)
    for name, path in files.items():
        shutil.copy(path, house / name)
    probe = next(house.glob("fruits_p8_probe-*.whl"))
    probe.unlink()
    make_wheel(house, "fruits-p8-probe").rename(probe)  # same name, other bytes (time stamps)
    with zipfile.ZipFile(probe, "a") as wheel:
        wheel.writestr("fruits_p8_probe/extra.py", "X = 1\n")
    failed = Node(tmp_path, fake_s3).bootstrap("s3://bucket/artifacts/0.1.0-test",
                                               f"s3://bucket/wheelhouse/{tiny_closure}")
    assert failed.returncode != 0 and "fruits_p8 bootstrap FAILED" in failed.stderr
    assert "hash" in failed.stderr.lower()


class Node:
    """An EMR node in a folder: stand-ins for `aws`, `sudo` and `dnf` on the PATH, the
    node's Python a fresh venv of this interpreter (no pip, no packages), no package index."""

    def __init__(self, root: Path, fake_s3: Path) -> None:
        root.mkdir(parents=True, exist_ok=True)
        self.home, self.calls = root / "opt", root / "calls.txt"
        python = root / "node-python"
        if not python.exists():
            subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(python)],
                           check=True, timeout=120)
        stubs = root / "bin"
        stubs.mkdir(exist_ok=True)
        for name, body in STUBS.items():
            (stubs / name).write_text("#!/bin/bash\n" + body)
            (stubs / name).chmod(0o755)
        env = {k: v for k, v in pip_env().items() if k not in ("PIP_NO_INDEX", "PIP_FIND_LINKS")}
        self.env = {**env, "PATH": f"{stubs}:{os.environ['PATH']}", "FAKE_S3": str(fake_s3),
                    "CALLS": str(self.calls), "FRUITS_P8_HOME": str(self.home),
                    "FRUITS_P8_PYTHON": str(python / "bin" / "python"),
                    "FRUITS_P8_SCRATCH": str(root / "mnt-tmp"),
                    "PIP_INDEX_URL": "http://127.0.0.1:9/simple"}  # the script decides

    def bootstrap(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(plan.DEFINITIONS / "bootstrap.sh"), *args],
                              capture_output=True, text=True, env=self.env, timeout=300)
