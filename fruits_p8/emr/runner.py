"""Talk to AWS for an EMR run: artifacts to S3, RunJobFlow, wait with progress, outcome.

Clients are passed in (boto3 in real use, moto or botocore's Stubber in tests), and so are
the clock and the sleep, so every path of the waiting loop can be tested without AWS.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path

from fruits_p8.emr.cost import Cost
from fruits_p8.errors import EmrError
from fruits_p8.io.paths import Location

log = logging.getLogger(__name__)

FINAL_CLUSTER_STATES = {"TERMINATED", "TERMINATED_WITH_ERRORS"}
FINAL_STEP_STATES = {"COMPLETED", "CANCELLED", "FAILED", "INTERRUPTED"}
REUSABLE_STATES = {"WAITING", "RUNNING"}
ROLE_HINT = "create the default roles once with `aws emr create-default-roles`"
ACCESS_HINT = ("your AWS identity needs elasticmapreduce:RunJobFlow, AddJobFlowSteps and "
               "Describe*/List*, elasticmapreduce:PutAutoTerminationPolicy (the idle timeout) "
               "and iam:PassRole on the EMR service role and instance profile")
NETWORK_HINT = "the region needs a default VPC, or pass --subnet-id"
DENIED = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation",
          "UnrecognizedClientException"}


def aws_error(exc: Exception, doing: str) -> EmrError:
    """One line for a failed EMR call, with what to check for the usual causes."""
    from botocore.exceptions import ClientError, NoCredentialsError

    if isinstance(exc, NoCredentialsError):
        return EmrError(f"{doing}: no AWS credentials found (AWS_PROFILE, or "
                        "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
    if not isinstance(exc, ClientError):  # ParamValidationError spans lines: one line here
        return EmrError(f"{doing}: {' '.join(str(exc).split())}")
    error = exc.response.get("Error", {})
    code, message = error.get("Code", ""), error.get("Message", "")
    hints = []
    if code in DENIED:
        hints.append(ACCESS_HINT)
    if "role" in message.lower() or "instance profile" in message.lower():
        hints.append(ROLE_HINT)
    if "vpc" in message.lower() or "subnet" in message.lower():
        hints.append(NETWORK_HINT)
    return EmrError(f"{doing}: {code}: {message}" + (f" ({'; '.join(hints)})" if hints else ""))


@dataclass
class Outcome:
    """How a cluster run ended."""

    cluster_id: str
    cluster_state: str
    steps: dict[str, str] = field(default_factory=dict)
    reason: str = ""
    failure: str = ""
    hours: float = 0.0

    @property
    def succeeded(self) -> bool:
        return bool(self.steps) and all(state == "COMPLETED" for state in self.steps.values())


def check_roles(iam, service_role: str, instance_profile: str) -> None:
    """EmrError naming the missing role; an IAM permission problem only warns."""
    from botocore.exceptions import ClientError

    checks = ((iam.get_role, {"RoleName": service_role}, f"service role {service_role}"),
              (iam.get_instance_profile, {"InstanceProfileName": instance_profile},
               f"instance profile {instance_profile}"))
    for call, request, what in checks:
        try:
            call(**request)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "NoSuchEntity":
                raise EmrError(f"the EMR {what} does not exist: {ROLE_HINT}") from None
            log.warning("could not check the EMR %s (%s); going on", what, code)
        except Exception as exc:  # no credentials, no network: not a storage problem
            raise aws_error(exc, f"checking the EMR {what} in IAM") from None


def upload_artifacts(s3, bucket: str, prefix: str, files: Mapping[str, bytes | Path]) -> str:
    """Put the artifacts under s3://bucket/prefix/ (skipping identical ones: same MD5, or for
    files given as paths, such as versioned wheels, the same size); returns the URI."""
    from botocore.exceptions import ClientError

    from fruits_p8.io.s3 import md5_hex

    for name, body in files.items():
        key = f"{prefix}/{name}"
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
            if isinstance(body, Path):
                if head.get("ContentLength") == body.stat().st_size:
                    continue
            elif head.get("ETag", "").strip('"') == md5_hex(body):
                continue
        except ClientError:
            pass
        if isinstance(body, Path):
            s3.upload_file(str(body), bucket, key)
        else:
            s3.put_object(Bucket=bucket, Key=key, Body=body)
    return f"s3://{bucket}/{prefix}"


def check_reusable(emr, cluster_id: str, bootstrap_path: str) -> None:
    """EmrError unless the cluster is up and its nodes were bootstrapped with exactly these
    artifacts (the content hash is in the bootstrap's path): a step runs the code installed
    on the nodes, so on any other cluster it would run other code, or none."""
    try:
        cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
        actions = emr.list_bootstrap_actions(ClusterId=cluster_id)["BootstrapActions"]
    except Exception as exc:
        raise aws_error(exc, f"cannot use cluster {cluster_id}") from None
    state = cluster["Status"]["State"]
    if state not in REUSABLE_STATES:
        raise EmrError(f"cluster {cluster_id} is {state}: steps can only be added to a "
                       "WAITING or RUNNING cluster")
    if not any(a.get("ScriptPath") == bootstrap_path for a in actions):
        artifacts = bootstrap_path.rsplit("/", 2)[-2]
        raise EmrError(f"cluster {cluster_id} was not created by this version of fruits-p8 "
                       f"(artifacts {artifacts}): its nodes would run other code; leave out "
                       "--cluster-id to run on a new cluster")


def _hours(timeline: Mapping[str, datetime], now: datetime) -> float:
    start = timeline.get("CreationDateTime")
    if start is None:
        return 0.0
    end = timeline.get("EndDateTime") or now
    return max(0.0, (end - start).total_seconds() / 3600)


class ClusterWatch:
    """Polls a cluster and its steps until they end, saying what changes."""

    def __init__(self, emr, say: Callable[[str], None] = print, poll_s: float = 30.0,
                 sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.emr, self.say, self.poll_s, self.sleep, self.clock = emr, say, poll_s, sleep, clock

    def wait(self, cluster_id: str, step_ids: list[str], timeout_s: float = 6 * 3600,
             own_cluster: bool = True) -> Outcome:
        """Until our cluster has ended (its steps with it), or, on a cluster that is not
        ours, until its steps have ended. Interrupting or timing out terminates our cluster
        (it would otherwise keep costing money), never someone else's."""
        begin = self.clock()
        seen: dict[str, str] = {}
        try:
            while True:
                cluster = self.emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
                status = cluster["Status"]
                state = status["State"]
                if seen.get(cluster_id) != state:
                    seen[cluster_id] = state
                    self.say(f"cluster {cluster_id}: {state}"
                             + (f" ({status['StateChangeReason'].get('Message', '')})"
                                if status.get("StateChangeReason", {}).get("Message") else ""))
                steps = {}
                for step_id in step_ids:
                    step = self.emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
                    steps[step_id] = step["Status"]["State"]
                    if seen.get(step_id) != steps[step_id]:
                        seen[step_id] = steps[step_id]
                        self.say(f"step {step['Name']} ({step_id}): {steps[step_id]}")
                steps_done = all(s in FINAL_STEP_STATES for s in steps.values())
                if state in FINAL_CLUSTER_STATES or (steps_done and not own_cluster):
                    return self._outcome(cluster_id, cluster, steps, own_cluster)
                if self.clock() - begin > timeout_s:
                    if own_cluster:
                        self.terminate(cluster_id, "timed out waiting")
                    raise EmrError(f"gave up waiting for {cluster_id} after "
                                   f"{timeout_s / 3600:.1f} h"
                                   + ("; it was terminated" if own_cluster else ""))
                self.sleep(self.poll_s)
        except KeyboardInterrupt:
            if own_cluster:
                self.terminate(cluster_id, "interrupted")
            raise

    def terminate(self, cluster_id: str, why: str) -> None:
        self.say(f"terminating {cluster_id} ({why})")
        self.emr.terminate_job_flows(JobFlowIds=[cluster_id])

    def _outcome(self, cluster_id: str, cluster: dict, steps: dict[str, str],
                 own_cluster: bool) -> Outcome:
        status = cluster["Status"]
        outcome = Outcome(cluster_id, status["State"], steps,
                          reason=status.get("StateChangeReason", {}).get("Message", ""))
        if own_cluster:  # someone else's cluster is not this run's cost
            outcome.hours = _hours(status.get("Timeline", {}), datetime.now(
                status.get("Timeline", {}).get("CreationDateTime", datetime.now()).tzinfo))
        for step_id, state in steps.items():
            if state != "COMPLETED":
                step = self.emr.describe_step(ClusterId=cluster_id, StepId=step_id)["Step"]
                details = step["Status"].get("FailureDetails", {})
                outcome.failure = "; ".join(
                    part for part in (details.get("Reason"), details.get("Message"),
                                      f"log: {details['LogFile']}" if details.get("LogFile")
                                      else None) if part)
                break
        return outcome


def explain_failure(outcome: Outcome) -> EmrError:
    """One line for a run that did not complete."""
    if outcome.failure:
        return EmrError(f"EMR step failed on {outcome.cluster_id}: {outcome.failure}")
    if outcome.cluster_state == "TERMINATED_WITH_ERRORS":
        return EmrError(f"cluster {outcome.cluster_id} terminated with errors: "
                        f"{outcome.reason or 'no reason given'} (see `fruits-p8 emr logs "
                        f"{outcome.cluster_id}`)")
    states = ", ".join(f"{k}: {v}" for k, v in outcome.steps.items()) or "no step ran"
    return EmrError(f"cluster {outcome.cluster_id} ended ({outcome.cluster_state}) before its "
                    f"steps completed ({states})")


def start_cluster(emr, request: dict) -> tuple[str, list[str]]:
    """RunJobFlow with the steps; returns the cluster id and step ids."""
    try:
        cluster_id = emr.run_job_flow(**request)["JobFlowId"]
    except Exception as exc:  # refused, invalid, no credentials: each one line
        raise aws_error(exc, "EMR refused the cluster") from None
    steps = emr.list_steps(ClusterId=cluster_id)["Steps"]
    return cluster_id, [s["Id"] for s in reversed(steps)]


def add_steps(emr, cluster_id: str, steps: list[dict]) -> list[str]:
    """AddJobFlowSteps on a running cluster."""
    try:
        return emr.add_job_flow_steps(JobFlowId=cluster_id, Steps=steps)["StepIds"]
    except Exception as exc:
        raise aws_error(exc, f"EMR refused the steps on {cluster_id}") from None


def status_text(emr, cluster_id: str) -> str:
    """A few lines on a cluster and its steps."""
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    status = cluster["Status"]
    lines = [f"{cluster_id} {cluster.get('Name', '')}: {status['State']}"
             + (f" ({status.get('StateChangeReason', {}).get('Message')})"
                if status.get("StateChangeReason", {}).get("Message") else "")]
    for step in emr.list_steps(ClusterId=cluster_id)["Steps"]:
        lines.append(f"  step {step['Name']} ({step['Id']}): {step['Status']['State']}")
    return "\n".join(lines)


def log_locations(emr, cluster_id: str) -> list[str]:
    """Where EMR puts this cluster's logs: the cluster's folder, each step's stderr, and each
    node's bootstrap stderr (where a failed install shows)."""
    cluster = emr.describe_cluster(ClusterId=cluster_id)["Cluster"]
    if not cluster.get("LogUri"):
        return []
    base = replace(Location.parse(cluster["LogUri"]), scheme="s3").text()  # EMR says s3n://
    places = [f"{base}/{cluster_id}/"]
    for step in emr.list_steps(ClusterId=cluster_id)["Steps"]:
        places.append(f"{base}/{cluster_id}/steps/{step['Id']}/stderr.gz  ({step['Name']}, "
                      f"{step['Status']['State']})")
    roles = {g["Id"]: g.get("InstanceGroupType", "")
             for g in emr.list_instance_groups(ClusterId=cluster_id)["InstanceGroups"]}
    for node in emr.list_instances(ClusterId=cluster_id)["Instances"]:
        if node.get("Ec2InstanceId"):
            role = roles.get(node.get("InstanceGroupId", ""), "").lower() or "node"
            places.append(f"{base}/{cluster_id}/node/{node['Ec2InstanceId']}/bootstrap-actions/"
                          f"1/stderr.gz  (bootstrap, {role})")
    return places


def describe_cost(cost: Cost, outcome: Outcome | None = None) -> str:
    if outcome is None or not outcome.hours:
        return cost.describe()
    return (f"{outcome.hours * 60:.0f} min x ${cost.per_hour:.3f}/h = "
            f"~${outcome.hours * cost.per_hour:.2f} (list prices, emr/prices.json)")
