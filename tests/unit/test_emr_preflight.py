"""`emr run`'s preflight: S3 and IAM emulated by moto; Service Quotas (which moto does not
serve for EC2) through botocore's Stubber, which checks requests and answers against the
service model."""

import json
import logging

import boto3
import pytest
from botocore.stub import Stubber

from fruits_p8.cli import main
from fruits_p8.commands import emr as emr_command
from fruits_p8.emr import plan, preflight
from fruits_p8.errors import EmrError

QUOTA_REQUEST = {"ServiceCode": "ec2", "QuotaCode": "L-1216C47A"}
RUN = ["emr", "run", "--bucket", "fruits-bucket", "--input", "s3://fruits-bucket/in",
       "--output", "s3://fruits-bucket/out", "--no-wait"]


def quota_answer(value: float) -> dict:
    return {"Quota": {"ServiceCode": "ec2", "QuotaCode": "L-1216C47A", "Value": value,
                      "QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) "
                                   "instances"}}


def quotas_client(*answers) -> tuple[object, Stubber]:
    client = boto3.session.Session(region_name="eu-west-3").client(
        "service-quotas", aws_access_key_id="x", aws_secret_access_key="x")
    stubber = Stubber(client)
    for answer in answers:
        if isinstance(answer, str):
            stubber.add_client_error("get_service_quota", answer, "no", 400,
                                     expected_params=QUOTA_REQUEST)
        else:
            stubber.add_response("get_service_quota", answer, QUOTA_REQUEST)
    stubber.activate()
    return client, stubber


@pytest.fixture
def aws(monkeypatch):
    from moto import mock_aws

    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")
    with mock_aws():
        session = boto3.session.Session(region_name="eu-west-3")
        session.client("s3").create_bucket(
            Bucket="fruits-bucket", CreateBucketConfiguration={"LocationConstraint": "eu-west-3"})
        trust = json.dumps({"Version": "2012-10-17", "Statement": []})
        iam = session.client("iam")
        for role in ("EMR_DefaultRole", "EMR_EC2_DefaultRole"):
            iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)
        iam.create_instance_profile(InstanceProfileName="EMR_EC2_DefaultRole")
        yield session


def test_a_quota_below_the_clusters_vcpus_says_what_to_do():
    client, stubber = quotas_client(quota_answer(8.0), quota_answer(12.0))
    with pytest.raises(EmrError, match=r"quota in eu-west-3 is 8, the cluster needs 12: "
                                       r"request an increase .*L-1216C47A"):
        preflight.check_vcpu_quota(client, 12, "eu-west-3")
    preflight.check_vcpu_quota(client, 12, "eu-west-3")
    stubber.assert_no_pending_responses()


@pytest.mark.parametrize("code", ["AccessDeniedException", "NoSuchResourceException"])
def test_an_unreadable_quota_only_warns(code, caplog):
    client, _ = quotas_client(code)
    with caplog.at_level(logging.WARNING):
        preflight.check_vcpu_quota(client, 12, "eu-west-3")
    assert code in caplog.text and "going on" in caplog.text


def test_a_bucket_in_another_region_or_missing_is_refused(aws):
    s3 = boto3.session.Session(region_name="eu-west-1").client("s3")
    s3.create_bucket(Bucket="irish-bucket",
                     CreateBucketConfiguration={"LocationConstraint": "eu-west-1"})
    with pytest.raises(EmrError, match="irish-bucket is in eu-west-1.*--region eu-west-1"):
        preflight.check_bucket(aws.client("s3"), "irish-bucket", "eu-west-3", "P")
    with pytest.raises(EmrError, match="no-such-bucket-here does not exist"):
        preflight.check_bucket(aws.client("s3"), "no-such-bucket-here", "eu-west-3", "P")
    preflight.check_bucket(aws.client("s3"), "fruits-bucket", "eu-west-3", "P")


@pytest.mark.parametrize("key, warned", [("arn:aws:kms:eu-west-3:1:key/abcd", True),
                                         ("arn:aws:kms:eu-west-3:1:alias/aws/s3", False),
                                         (None, False)])
def test_a_customer_kms_key_warns_with_the_grant_to_add(aws, caplog, key, warned):
    default = {"SSEAlgorithm": "aws:kms", **({"KMSMasterKeyID": key} if key else {})}
    aws.client("s3").put_bucket_encryption(
        Bucket="fruits-bucket", ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": default}]})
    with caplog.at_level(logging.WARNING):
        preflight.check_bucket(aws.client("s3"), "fruits-bucket", "eu-west-3",
                               "EMR_EC2_DefaultRole")
    assert ("aws kms create-grant" in caplog.text) is warned
    if warned:
        assert key in caplog.text and "role/EMR_EC2_DefaultRole" in caplog.text


def test_a_v2_service_role_with_an_own_subnet_is_reminded_of_the_tag(aws, caplog):
    iam = aws.client("iam")
    statement = {"Effect": "Allow", "Action": "ec2:Describe*", "Resource": "*"}
    arn = iam.create_policy(PolicyName="AmazonEMRServicePolicy_v2",
                            PolicyDocument=json.dumps({"Version": "2012-10-17",
                                                       "Statement": [statement]})
                            )["Policy"]["Arn"]
    iam.attach_role_policy(RoleName="EMR_DefaultRole", PolicyArn=arn)
    with caplog.at_level(logging.WARNING):
        preflight.v2_role_note(iam, "EMR_DefaultRole", None)
        assert caplog.text == ""
        preflight.v2_role_note(iam, "EMR_DefaultRole", "subnet-1")
    assert "subnet-1" in caplog.text and "for-use-with-amazon-emr-managed-policies" in caplog.text


def clients_with_quota(monkeypatch, aws, *answers):
    client, stubber = quotas_client(*answers)
    monkeypatch.setattr(emr_command, "_aws", lambda service, region: client
                        if service == "service-quotas" else aws.client(service))
    monkeypatch.setattr("fruits_p8.emr.artifacts.project_wheel",
                        lambda root=None: ("fruits_p8-0.1.0-py3-none-any.whl", b"wheel"))
    return stubber


def test_emr_run_stops_before_the_cluster_when_the_quota_is_short(aws, monkeypatch, capsys):
    clients_with_quota(monkeypatch, aws, quota_answer(4.0))
    assert main(RUN) == 9
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "needs 12" in err
    assert aws.client("emr").list_clusters()["Clusters"] == []
    assert "Contents" not in aws.client("s3").list_objects_v2(Bucket="fruits-bucket")


def test_emr_run_after_a_passed_preflight_or_without_one_requests_the_cluster(
        aws, monkeypatch, capsys):
    stubber = clients_with_quota(monkeypatch, aws, quota_answer(64.0))
    assert main(RUN) == 0
    stubber.assert_no_pending_responses()  # the quota was asked once
    assert main([*RUN, "--no-preflight"]) == 0  # no quota answer left: not asked again
    assert len(aws.client("emr").list_clusters()["Clusters"]) == 2


def test_a_missing_role_found_by_the_preflight_is_one_line(aws, monkeypatch, capsys):
    clients_with_quota(monkeypatch, aws, quota_answer(64.0))
    assert main([*RUN, "--service-role", "EMR_DefaultRole_V2"]) == 9
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "EMR_DefaultRole_V2 does not exist" in err


def test_the_vcpus_the_preflight_asks_for_follow_the_request():
    templates = plan.load_templates(plan.default_emr_dir())
    settings = plan.EmrSettings(bucket="b-1", input="s3://b-1/i", output="s3://b-1/o",
                                instance_type="m5.2xlarge", core_count=4)
    request = plan.build_run_job_flow(templates, settings, "r", "a")
    assert preflight.cluster_vcpus(request, templates.prices) == 5 * 8
    default = plan.build_run_job_flow(templates, plan.EmrSettings(
        bucket="b-1", input="s3://b-1/i", output="s3://b-1/o"), "r", "a")
    assert preflight.cluster_vcpus(default, templates.prices) == 12


def test_a_notebook_cluster_reaches_emr_and_outlives_its_steps(aws, monkeypatch, capsys):
    clients_with_quota(monkeypatch, aws)
    assert main([*RUN, "--notebook", "--no-preflight"]) == 0
    out = capsys.readouterr().out
    emr = aws.client("emr")
    cluster_id = emr.list_clusters()["Clusters"][0]["Id"]
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    assert {"JupyterEnterpriseGateway", "Livy"} <= {a["Name"] for a in cluster["Applications"]}
    assert cluster["AutoTerminate"] is False  # it waits for the notebook after its steps
    assert "waits for a notebook" in out and "notebook cluster:" in out and "/h while up" in out
    assert main([*RUN, "--notebook", "--cluster-id", cluster_id]) == 2
    assert "leave out --cluster-id" in capsys.readouterr().err


def test_prepare_checks_the_bucket_before_downloading_and_skips_a_prepared_closure(
        aws, monkeypatch, capsys):
    from fruits_p8.emr import wheelhouse

    def no_download(*args, **kwargs):
        raise AssertionError("the closure was downloaded")

    monkeypatch.setattr(wheelhouse, "build", no_download)
    # a bucket that is not there: one line at once, not after ~600 MB of wheels
    assert main(["emr", "prepare", "--bucket", "no-such-bucket"]) == 7
    err = capsys.readouterr().err.strip()
    assert "bucket no-such-bucket does not exist" in err and len(err.splitlines()) == 1
    # a closure already prepared there is not downloaded again
    key = wheelhouse.wheelhouse_key("fruits_p8", wheelhouse.current_closure()[3])
    aws.client("s3").put_object(Bucket="fruits-bucket", Key=f"{key}/{wheelhouse.LOCK}",
                                Body=b"pip==1 --hash=sha256:00\n")
    assert main(["emr", "prepare", "--bucket", "fruits-bucket"]) == 0
    assert f"s3://fruits-bucket/{key}/" in capsys.readouterr().out


def test_an_aws_refusal_the_checks_do_not_expect_is_one_line_not_an_internal_error():
    from botocore.exceptions import ClientError

    class ExpiredS3:
        def get_bucket_location(self, **request):
            raise ClientError({"Error": {"Code": "ExpiredToken",
                                         "Message": "The provided token has expired."}},
                              "GetBucketLocation")

    templates = plan.load_templates(plan.default_emr_dir())
    settings = plan.EmrSettings(bucket="fruits-bucket", input="s3://fruits-bucket/in",
                                output="s3://fruits-bucket/out")
    request = plan.build_run_job_flow(templates, settings, "r", "a")
    with pytest.raises(EmrError, match="ExpiredToken: The provided token has expired"):
        preflight.preflight(lambda service: ExpiredS3(), request, templates.prices,
                            "fruits-bucket", "eu-west-3")


def test_prepare_refuses_a_machine_whose_markers_differ_from_the_nodes(monkeypatch, capsys):
    from packaging.markers import default_environment

    from fruits_p8.emr import artifacts, wheelhouse

    nodes = {**default_environment(), **artifacts.EMR_ENVIRONMENT}
    assert wheelhouse.foreign_markers(nodes) == []
    mac = {**nodes, "sys_platform": "darwin", "platform_system": "Darwin",
           "platform_machine": "arm64"}
    assert [m.split()[0] for m in wheelhouse.foreign_markers(mac)] == [
        "sys_platform", "platform_system", "platform_machine"]
    # pip would resolve the dependencies' markers for the Mac: refused before any download
    monkeypatch.setattr(wheelhouse, "foreign_markers", lambda host=None: ["sys_platform 'darwin'"])
    monkeypatch.setattr(wheelhouse, "build", lambda *a, **k: pytest.fail("downloaded"))
    assert main(["emr", "prepare", "--bucket", "fruits-bucket"]) == 8
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Linux x86_64" in err and "darwin" in err
