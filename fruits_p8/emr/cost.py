"""What a cluster costs: the hourly rate of its instance groups (EC2 + EMR + EBS, from
prices.json) and an estimate for a run's expected duration."""

from __future__ import annotations

from dataclasses import dataclass

from fruits_p8.emr.plan import instance_spec
from fruits_p8.errors import UsageError

HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Cost:
    """Hourly rate of a cluster and an estimate for a duration, from prices.json."""

    lines: list[tuple[str, int, float]]
    per_hour: float
    hours: float

    @property
    def total(self) -> float:
        return round(self.per_hour * self.hours, 4)

    def describe(self) -> str:
        parts = [f"{count} x {itype} at ${rate:.3f}/h (EC2 + EMR + EBS)"
                 for itype, count, rate in self.lines]
        return (f"{'; '.join(parts)} = ${self.per_hour:.3f}/h; "
                f"~{self.hours * 60:.0f} min -> ~${self.total:.2f}")


def ebs_per_hour(request: dict, group: dict, prices: dict) -> float:
    """EBS of one instance of `group` per hour: its root volume (priced as gp2) and the
    volumes of its EbsConfiguration, at the GiB-month prices of prices.json."""
    per_gib = prices["ebs_gib_month"]
    monthly = request.get("EbsRootVolumeSize", 0) * per_gib["gp2"]
    for device in group.get("EbsConfiguration", {}).get("EbsBlockDeviceConfigs", []):
        volume = device["VolumeSpecification"]
        if volume["VolumeType"] not in per_gib:
            raise UsageError(f"no EBS price for {volume['VolumeType']} in prices.json: known: "
                             f"{', '.join(per_gib)}")
        monthly += (device.get("VolumesPerInstance", 1) * volume["SizeInGB"]
                    * per_gib[volume["VolumeType"]])
    return monthly / HOURS_PER_MONTH


def estimate_cost(request: dict, prices: dict, hours: float) -> Cost:
    """Instance-hours x (EC2 + EMR + EBS) price of every instance group."""
    lines = []
    for group in request["Instances"]["InstanceGroups"]:
        spec = instance_spec(prices, group["InstanceType"])
        rate = spec["ec2"] + spec["emr"] + ebs_per_hour(request, group, prices)
        lines.append((group["InstanceType"], group["InstanceCount"], rate))
    per_hour = round(sum(count * rate for _, count, rate in lines), 4)
    return Cost(lines, per_hour, hours)
