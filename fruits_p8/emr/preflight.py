"""Checks before `emr run` creates a cluster: what an account lacks fails the first run after
minutes of billing, so it is asked first. A check the caller may not read (no permission)
only warns; a prerequisite found missing is one line that says what to do (EmrError, exit 9).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from fruits_p8.errors import EmrError

log = logging.getLogger(__name__)

# Service Quotas: "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances", in vCPUs.
VCPU_QUOTA = ("ec2", "L-1216C47A")
# S3 answers these for a bucket in us-east-1 and for the legacy name of eu-west-1.
LEGACY_LOCATIONS = {None: "us-east-1", "": "us-east-1", "EU": "eu-west-1"}
AWS_MANAGED_S3_KEY = "alias/aws/s3"


def _code(exc: Exception) -> str | None:
    """The error code of a ClientError, None for any other failure."""
    from botocore.exceptions import ClientError

    return exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else None


def _ask(call: Callable, what: str, **request):
    """`call(**request)`; None with a warning where the caller may not ask; a failure to
    reach AWS at all (credentials, network) is one line."""
    from fruits_p8.emr.runner import DENIED, aws_error

    try:
        return call(**request)
    except Exception as exc:
        code = _code(exc)
        if code is None:
            raise aws_error(exc, f"preflight: {what}") from None
        if code in DENIED or code.startswith("AccessDenied"):
            log.warning("preflight: cannot check %s (%s); going on", what, code)
            return None
        raise


def check_vcpu_quota(quotas, needed: int, region: str) -> None:
    """EmrError when the account's On-Demand vCPU quota cannot hold the cluster."""
    from botocore.exceptions import ClientError

    try:
        answer = _ask(quotas.get_service_quota, "the EC2 vCPU quota",
                      ServiceCode=VCPU_QUOTA[0], QuotaCode=VCPU_QUOTA[1])
    except ClientError as exc:
        log.warning("preflight: no EC2 vCPU quota found in %s (%s); going on", region,
                    _code(exc))
        return
    if answer is None:
        return
    quota = int(answer["Quota"]["Value"])
    if quota < needed:
        raise EmrError(f"the EC2 On-Demand vCPU quota in {region} is {quota}, the cluster "
                       f"needs {needed}: request an increase (Service Quotas, ec2 "
                       f"{VCPU_QUOTA[1]}) or choose fewer/smaller nodes (--core-count, "
                       "--instance-type)")


def check_bucket(s3, bucket: str, region: str, instance_profile: str) -> None:
    """EmrError when the bucket is missing or in another region; a warning when a customer
    KMS key encrypts it (the default instance profile has S3 rights, not KMS ones)."""
    from botocore.exceptions import ClientError

    try:
        where = _ask(s3.get_bucket_location, f"the region of bucket {bucket}", Bucket=bucket)
    except ClientError as exc:
        if _code(exc) == "NoSuchBucket":
            raise EmrError(f"bucket {bucket} does not exist: create it in {region} "
                           "(`fruits-p8 upload --create-bucket`)") from None
        raise
    if where is not None:
        location = where.get("LocationConstraint")
        found = LEGACY_LOCATIONS.get(location, location)
        if found != region:
            raise EmrError(f"bucket {bucket} is in {found}, the cluster would be in {region}: "
                           f"pass --region {found}, or use a bucket in {region}")
    try:
        rules = _ask(s3.get_bucket_encryption, f"the encryption of bucket {bucket}",
                     Bucket=bucket)
    except ClientError as exc:
        if _code(exc) == "ServerSideEncryptionConfigurationNotFoundError":
            return
        raise
    for rule in (rules or {}).get("ServerSideEncryptionConfiguration", {}).get("Rules", []):
        default = rule.get("ApplyServerSideEncryptionByDefault", {})
        key = default.get("KMSMasterKeyID")
        if default.get("SSEAlgorithm", "").startswith("aws:kms") and key and \
                AWS_MANAGED_S3_KEY not in key:
            log.warning("preflight: bucket %s is encrypted with the customer KMS key %s: the "
                        "nodes' role (instance profile %s) needs kms:Decrypt and "
                        "kms:GenerateDataKey on it, e.g. `aws kms create-grant --key-id %s "
                        "--grantee-principal arn:aws:iam::ACCOUNT:role/%s --operations Decrypt "
                        "GenerateDataKey`", bucket, key, instance_profile, key,
                        instance_profile)


def v2_role_note(iam, service_role: str, subnet_id: str | None) -> None:
    """With AmazonEMRServicePolicy_v2 the cluster carries the tag the policy needs; a subnet
    (and security groups) of the user's own need it too."""
    answer = _ask(iam.list_attached_role_policies, f"the policies of {service_role}",
                  RoleName=service_role)
    names = {p["PolicyName"] for p in (answer or {}).get("AttachedPolicies", [])}
    if "AmazonEMRServicePolicy_v2" in names and subnet_id:
        log.warning("preflight: %s uses AmazonEMRServicePolicy_v2: subnet %s and any security "
                    "group of your own need the tag for-use-with-amazon-emr-managed-policies="
                    "true (the cluster carries it)", service_role, subnet_id)


def cluster_vcpus(request: dict, prices: dict) -> int:
    """vCPUs of every node the request asks for: what counts against the EC2 quota."""
    from fruits_p8.emr.sizing import instance_spec

    return sum(instance_spec(prices, g["InstanceType"])["vcpu"] * g["InstanceCount"]
               for g in request["Instances"]["InstanceGroups"])


def preflight(clients: Callable[[str], object], request: dict, prices: dict, bucket: str,
              region: str) -> None:
    """Every check for a new cluster's request; `clients(service)` gives a boto3 client. A
    refusal no check expects (an expired token, a throttled call) is one line too."""
    from botocore.exceptions import ClientError

    from fruits_p8.emr.runner import aws_error, check_roles

    try:
        check_bucket(clients("s3"), bucket, region, request["JobFlowRole"])
        check_vcpu_quota(clients("service-quotas"), cluster_vcpus(request, prices), region)
        iam = clients("iam")
        check_roles(iam, request["ServiceRole"], request["JobFlowRole"])
        v2_role_note(iam, request["ServiceRole"], request["Instances"].get("Ec2SubnetId"))
    except ClientError as exc:
        raise aws_error(exc, "preflight") from None
