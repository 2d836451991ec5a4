"""EMR without a cluster: the package outside its clone, the wheelhouse, the bootstrap script.

pip runs here for real, offline: a wheelhouse from a folder of small wheels made on the spot,
and bootstrap.sh in a sandbox (stand-ins for `aws`, `sudo` and `dnf`, a fresh venv without
pip, an unreachable package index).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from botocore.session import get_session
from botocore.validate import validate_parameters

from fruits_p8.emr import artifacts, plan
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


def shadow_site(tmp_path: Path) -> Path:
    """This environment's packages without pip and fruits_p8, as links in one folder."""
    real = Path(sysconfig.get_paths()["purelib"])
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    for entry in real.iterdir():
        if entry.suffix == ".pth" or entry.name.lower().startswith(
                ("pip", "fruits_p8", "__editable__", "_distutils_hack")):
            continue
        (shadow / entry.name).symlink_to(entry)
    return shadow


STUBS = {
    # aws s3 cp --recursive --only-show-errors s3://BUCKET/KEY/ DEST/ from a local "bucket"
    "aws": 'src="${@: -2:1}"; dst="${@: -1}"\n'
           'mkdir -p "$dst" && cp -r "$FAKE_S3/${src#s3://}/." "$dst"\n',
    "sudo": 'echo "$*" >> "$CALLS"\nexec "$@"\n',
    "dnf": 'echo "dnf $*" >> "$CALLS"\nexit 1\n',  # no package repository reachable
}


def test_the_bootstrap_installs_offline_from_the_wheelhouse_and_brings_its_own_pip(
        project_wheel, find_links, tmp_path):
    make_wheel(find_links, "fruits-p8-probe")
    bucket = tmp_path / "s3"
    shipped = bucket / "bucket" / "fruits_p8" / "artifacts" / "0.1.0-test"
    (shipped / "wheelhouse").mkdir(parents=True)
    artifacts.build_wheelhouse(shipped / "wheelhouse", "fruits-p8-probe\n",
                               artifacts.constraints())
    (shipped / project_wheel.name).write_bytes(project_wheel.read_bytes())
    (shipped / "requirements.txt").write_text("fruits-p8-probe\n")
    (shipped / "constraints.txt").write_bytes(artifacts.constraints())
    (shipped / "run.py").write_text(artifacts.RUN_PY)
    without_wheelhouse = shipped.parent / "0.1.0-nowheels"
    without_wheelhouse.mkdir()
    for item in shipped.iterdir():
        if item.is_file():
            (without_wheelhouse / item.name).write_bytes(item.read_bytes())
    (without_wheelhouse / "requirements.txt").write_text("fruits-p8-probe-two\n")

    venv = tmp_path / "node-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True,
                   timeout=120)
    node_site = Path(subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()"
         "['purelib'])"], capture_output=True, text=True, check=True).stdout.strip())
    (node_site / "shadow.pth").write_text(f"{shadow_site(tmp_path)}\n")
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for name, body in STUBS.items():
        (stubs / name).write_text("#!/bin/bash\n" + body)
        (stubs / name).chmod(0o755)
    home, scratch, calls = tmp_path / "opt", tmp_path / "mnt-tmp", tmp_path / "calls.txt"
    env = {**pip_env(), "PATH": f"{stubs}:{os.environ['PATH']}", "FAKE_S3": str(bucket),
           "CALLS": str(calls), "FRUITS_P8_HOME": str(home),
           "FRUITS_P8_PYTHON": str(venv / "bin" / "python"), "FRUITS_P8_SCRATCH": str(scratch),
           "PIP_INDEX_URL": "http://127.0.0.1:9/simple", "TF_CPP_MIN_LOG_LEVEL": "3"}
    del env["PIP_NO_INDEX"]  # the script decides: --no-index only with a wheelhouse
    script = plan.DEFINITIONS / "bootstrap.sh"

    def bootstrap(artifacts_id: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", str(script), f"s3://bucket/fruits_p8/artifacts/"
                               f"{artifacts_id}"], capture_output=True, text=True, env=env,
                              timeout=600)

    done = bootstrap("0.1.0-test")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ready" in done.stdout
    log = calls.read_text()
    assert "dnf install -y -q python3.11-pip" in log  # pip was missing, dnf unreachable
    assert "-m ensurepip" in log  # so the node's Python brought its own
    installs = [line for line in log.splitlines() if "-m pip install" in line]
    assert len(installs) == 2 and all(f"TMPDIR={scratch}" in line for line in installs)
    probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import fruits_p8, fruits_p8_probe; print(fruits_p8.__file__)"],
                           capture_output=True, text=True, cwd=tmp_path, env=pip_env())
    assert probe.returncode == 0 and probe.stdout.startswith(str(node_site))
    assert (home / "run.py").read_text() == artifacts.RUN_PY

    calls.write_text("")
    again = bootstrap("0.1.0-test")
    assert again.returncode == 0 and "already installed" in again.stdout
    assert calls.read_text() == ""

    failed = bootstrap("0.1.0-nowheels")  # a new requirement, no wheelhouse: needs the index
    assert failed.returncode != 0 and "fruits_p8 bootstrap FAILED" in failed.stderr
    assert not (home / ".installed-0.1.0-nowheels").exists()
