"""Issue #29: what could still fail or bill a first EMR run, each pinned by a test; plus the
instance-type table, the cost per 1,000 images and the notebook cluster."""

import json
import re
from pathlib import Path

import pytest
from botocore.exceptions import NoCredentialsError, ParamValidationError
from botocore.session import get_session
from botocore.validate import validate_parameters

from fruits_p8.cli import main
from fruits_p8.emr import launch, plan, runner, sizing
from fruits_p8.errors import EmrError

EMR_MODEL = get_session().get_service_model("emr")
REPO = Path(__file__).resolve().parents[2]
PLAN = ["emr", "plan", "--bucket", "fruits-bucket", "--input", "s3://fruits-bucket/in",
        "--output", "s3://fruits-bucket/out"]


def settings(**changes) -> plan.EmrSettings:
    base = dict(bucket="fruits-bucket", input="s3://fruits-bucket/Test",
                output="s3://fruits-bucket/features")
    return plan.EmrSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def templates():
    return plan.load_templates(plan.default_emr_dir())


def valid(request: dict) -> dict:
    validate_parameters(request, EMR_MODEL.operation_model("RunJobFlow").input_shape)
    return request


def printed_request(out: str) -> dict:
    body = out.split("# RunJobFlow request (RUN_ID is a timestamp at run time):\n")[1]
    return valid(json.loads(body.split("# the same with the AWS CLI:")[0]))


# 1. the bootstrap's Python is a venv of its own (run for real in test_emr_offline)
def test_spark_runs_the_venv_python_and_the_bootstrap_never_pip_installs_as_root(templates):
    request = plan.build_run_job_flow(templates, settings(), "r", "a")
    config = {c["Classification"]: c for c in request["Configurations"]}
    exported = config["spark-env"]["Configurations"][0]["Properties"]
    pythons = {exported["PYSPARK_PYTHON"], exported["PYSPARK_DRIVER_PYTHON"],
               config["spark-defaults"]["Properties"]["spark.pyspark.python"],
               config["spark-defaults"]["Properties"]["spark.pyspark.driver.python"]}
    assert pythons == {"/opt/fruits_p8/venv/bin/python"}
    script = templates.bootstrap
    assert 'VENV="$HOME_DIR/venv"' in script and "umask 022" in script
    assert "PIP_BREAK_SYSTEM_PACKAGES" not in script
    assert not re.search(r"sudo[^\n]*pip install", script)


# 3. the managed-policy tag of AmazonEMRServicePolicy_v2
def test_the_cluster_carries_the_tag_the_v2_service_policy_needs(templates):
    request = valid(plan.build_run_job_flow(templates, settings(service_role="EMR_DefaultRole_V2"),
                                            "r", "a"))
    tags = {t["Key"]: t["Value"] for t in request["Tags"]}
    assert tags["for-use-with-amazon-emr-managed-policies"] == "true"
    own = plan.Templates({**templates.cluster, "Tags": []}, templates.configurations,
                         templates.steps, templates.prices, templates.bootstrap)
    assert plan.MANAGED_POLICY_TAG in plan.build_run_job_flow(own, settings(), "r", "a")["Tags"]
    words = plan.aws_cli_command(request).split()
    assert "for-use-with-amazon-emr-managed-policies=true" in words


# 4. YARN's memory is set from the sizing's figure (the agreement per type: test_emr.py)
def test_yarn_is_told_the_memory_the_sizing_assumes_with_a_headroom(templates):
    request = plan.build_run_job_flow(templates, settings(), "r", "a")
    yarn = next(c for c in request["Configurations"]
                if c["Classification"] == "yarn-site")["Properties"]
    assert yarn == {"yarn.nodemanager.resource.memory-mb": "12288",
                    "yarn.scheduler.maximum-allocation-mb": "12288"}
    # m5.xlarge: executor 2048 + 8704, AM 896: 12,288 - 11,648 = 640 MB to spare (was 128)
    spark = next(c for c in request["Configurations"]
                 if c["Classification"] == "spark-defaults")["Properties"]
    assert spark["spark.executor.memoryOverhead"] == "8704m"
    assert spark["spark.task.cpus"] == "1"  # still one Python worker per vCPU


# 5. a step timeout
def test_the_step_is_stopped_after_a_timeout_from_the_input_size(templates):
    def timeout_of(**changes) -> tuple[list[str], list[str]]:
        own = plan.build_steps(templates, settings(**changes), "r", "a")[0]
        added = plan.build_steps(templates, settings(**changes), "r", "a", added=True)[0]
        return own["HadoopJarStep"]["Args"], added["HadoopJarStep"]["Args"]

    own, added = timeout_of()
    assert own[:5] == added[:5] == ["timeout", "--signal=TERM", "--kill-after=120", "30m",
                                    "spark-submit"]
    big = timeout_of(expected_images=2_000_000)[0][3]
    before, step = plan.expected_minutes(templates, settings(expected_images=2_000_000))
    assert big == f"{sizing.step_timeout_minutes(step)}m" and int(big[:-1]) > 60
    assert timeout_of(step_timeout_min=7)[0][3] == "7m"
    validate_parameters({"JobFlowId": "j-1", "Steps": plan.build_steps(
        templates, settings(), "r", "a")}, EMR_MODEL.operation_model("AddJobFlowSteps")
        .input_shape)


def test_step_timeout_option_reaches_the_printed_request(capsys):
    assert main([*PLAN, "--step-timeout", "45"]) == 0
    request = printed_request(capsys.readouterr().out)
    assert request["Steps"][0]["HadoopJarStep"]["Args"][3] == "45m"


@pytest.mark.parametrize("seconds", ["59", "604801", "0"])
def test_idle_timeouts_aws_refuses_are_one_line_exit_2(capsys, seconds):
    assert main([*PLAN, "--idle-timeout", seconds]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and ("60-604800" in err or "positive" in err)


def test_idle_timeouts_in_aws_range_reach_the_request(capsys, templates):
    for seconds in ("60", "604800"):
        assert main([*PLAN, "--idle-timeout", seconds]) == 0
        request = printed_request(capsys.readouterr().out)
        assert request["AutoTerminationPolicy"]["IdleTimeout"] == int(seconds)
    with pytest.raises(Exception, match="60-604800"):
        settings(idle_timeout_s=30)


class Refusing:
    """An EMR or IAM client that fails before any request leaves (what botocore raises)."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc

    def __getattr__(self, name):
        def call(**_):
            raise self.exc
        return call


@pytest.mark.parametrize("exc", [
    ParamValidationError(report="Invalid type for parameter Name\nInvalid length"),
    NoCredentialsError()])
def test_start_cluster_turns_botocore_errors_into_one_line(templates, exc):
    request = plan.build_run_job_flow(templates, settings(), "r", "a")
    with pytest.raises(EmrError) as error:
        runner.start_cluster(Refusing(exc), request)
    assert "\n" not in str(error.value) and str(error.value).startswith("EMR refused")


def test_no_credentials_in_the_role_check_is_an_emr_error_not_a_storage_one():
    with pytest.raises(EmrError, match="IAM: no AWS credentials") as error:
        runner.check_roles(Refusing(NoCredentialsError()), "EMR_DefaultRole",
                           "EMR_EC2_DefaultRole")
    assert error.value.exit_code == 9


def test_readme_links_the_emr_readme_by_its_real_path():
    readme = (REPO / "README.md").read_text()
    section = readme.split("## On AWS EMR")[1].split("\n## ")[0]
    links = re.findall(r"\]\(([^)#:]+)\)", section)
    assert "fruits_p8/emr/definitions/README.md" in links
    for link in links:  # a code host renders a link only where no folder is a symlink
        path = REPO / link
        assert path.exists() and path.resolve() == path.absolute(), link


# the plan: cost per 1,000 images, supported instance types
def test_the_plan_prints_a_cost_per_1000_images_beside_the_hourly_cost(capsys, templates):
    assert main(PLAN) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("# estimated cost:"))
    per_hour = float(re.search(r"= \$([\d.]+)/h", line)[1])
    per_thousand = float(re.search(r"~\$([\d.]+) per 1,000 images", line)[1])
    rate = sizing.images_per_hour(templates.prices, "m5.xlarge", 2)
    assert per_thousand == pytest.approx(1000 * per_hour / rate, abs=1e-5)
    assert "estimate" in line


def test_the_plan_lists_every_supported_type_with_its_yarn_memory(capsys, templates):
    assert main([*PLAN, "--instance-type", "m7i.xlarge"]) == 0
    out = capsys.readouterr().out
    rows = {}
    for line in out.splitlines():
        cells = line[1:].split()
        if cells and cells[0] in templates.prices["instances"]:
            rows[cells[0]] = cells
    assert rows.keys() == templates.prices["instances"].keys()
    assert {"m5.xlarge", "m6i.xlarge", "m7i.xlarge", "m7a.xlarge", "c7i.2xlarge"} <= rows.keys()
    for itype, cells in rows.items():
        spec = templates.prices["instances"][itype]
        assert int(cells[2]) == spec["yarn_memory_mb"]
        if spec["native_bfloat16"]:
            assert float(cells[6]) < float(cells[5])  # bfloat16 is cheaper where native
        else:
            assert cells[6] == "-"
    request = printed_request(out)
    assert {g["InstanceType"] for g in request["Instances"]["InstanceGroups"]} == {"m7i.xlarge"}


def test_a_prepared_wheelhouse_shortens_the_billed_setup(templates):
    prepared = settings(wheelhouse_uri="s3://fruits-bucket/fruits_p8/wheelhouse/x")
    request = plan.build_run_job_flow(templates, prepared, "r", "a")
    cold = launch.estimate(templates, settings(), request)
    warm = launch.estimate(templates, prepared, request)
    setup = templates.prices["setup_minutes"]
    assert cold.hours - warm.hours == pytest.approx((setup["index"] - setup["wheelhouse"]) / 60)
    args = request["BootstrapActions"][0]["ScriptBootstrapAction"]["Args"]
    assert args[1] == "s3://fruits-bucket/fruits_p8/wheelhouse/x"


# a notebook can attach (issue #32)
def test_a_notebook_cluster_has_studio_applications_and_states_its_cost(capsys):
    assert main([*PLAN, "--notebook", "--idle-timeout", "7200"]) == 0
    out = capsys.readouterr().out
    request = printed_request(out)
    names = {a["Name"] for a in request["Applications"]}
    assert {"Spark", "Hadoop", "JupyterEnterpriseGateway", "Livy"} <= names
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is True
    assert request["AutoTerminationPolicy"]["IdleTimeout"] == 7200
    config = {c["Classification"]: c.get("Properties", {}) for c in request["Configurations"]}
    assert config["livy-conf"]["livy.spark.deploy-mode"] == "client"
    assert config["spark-defaults"]["spark.pyspark.python"] == "/opt/fruits_p8/venv/bin/python"
    note = next(x for x in out.splitlines() if x.startswith("# notebook cluster"))
    per_hour = re.search(r"= (\$[\d.]+/h)", out)[1]
    assert f"at {per_hour} while up" in note and "after 2 h" in note
    assert "--no-auto-terminate" in plan.aws_cli_command(request).split()


def test_a_plain_cluster_has_no_notebook_applications(templates):
    request = plan.build_run_job_flow(templates, settings(), "r", "a")
    assert {a["Name"] for a in request["Applications"]} == {"Hadoop", "Spark"}
    assert not any(c["Classification"] == "livy-conf" for c in request["Configurations"])


def test_definitions_of_an_older_version_are_one_line(tmp_path, capsys):
    for item in plan.DEFINITIONS.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    prices = json.loads((tmp_path / "prices.json").read_text())
    del prices["throughput"]
    (tmp_path / "prices.json").write_text(json.dumps(prices))
    assert main([*PLAN, "--emr-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks throughput" in err


def test_a_definition_that_is_not_json_is_one_line_naming_it(tmp_path, capsys):
    for item in plan.DEFINITIONS.iterdir():
        (tmp_path / item.name).write_bytes(item.read_bytes())
    (tmp_path / "steps.json").write_text('[{"Name": "run",}]')  # an edit gone wrong
    assert main([*PLAN, "--emr-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "steps.json" in err and "line 1" in err


@pytest.mark.parametrize("extra, named", [(["--bogus"], "--bogus"), (["--k", "many"], "--k"),
                                          (["--precision", "half"], "--precision")])
def test_a_mistake_in_the_run_options_is_one_line_before_any_cluster(capsys, extra, named):
    assert main([*PLAN, "--", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and named in err and "fruits-p8 run" in err


def test_valid_run_options_reach_the_step(capsys):
    assert main([*PLAN, "--", "--k", "100", "--report", "--precision", "bfloat16"]) == 0
    args = printed_request(capsys.readouterr().out)["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[-5:] == ["--k", "100", "--report", "--precision", "bfloat16"]
