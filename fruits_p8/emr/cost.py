"""What a cluster costs: the hourly rate of its instance groups (EC2 + EMR + EBS, from
prices.json) and an estimate for a run's expected duration."""

from __future__ import annotations

from dataclasses import dataclass

from fruits_p8.emr.sizing import images_per_hour, instance_spec
from fruits_p8.errors import UsageError

HOURS_PER_MONTH = 730


@dataclass(frozen=True)
class Cost:
    """Hourly rate of a cluster and an estimate for a duration, from prices.json."""

    lines: list[tuple[str, int, float]]
    per_hour: float
    hours: float
    images_per_hour: float = 0.0  # the core nodes' estimated rate; 0 where unknown

    @property
    def total(self) -> float:
        return round(self.per_hour * self.hours, 4)

    def describe(self) -> str:
        parts = [f"{count} x {itype} at ${rate:.3f}/h (EC2 + EMR + EBS)"
                 for itype, count, rate in self.lines]
        per_images = (f" (~${self.per_thousand:.5f} per 1,000 images at ~"
                      f"{self.images_per_hour:,.0f} images/h, an estimate: emr/prices.json "
                      "'throughput')" if self.images_per_hour else "")
        return (f"{'; '.join(parts)} = ${self.per_hour:.3f}/h{per_images}; "
                f"~{self.hours * 60:.0f} min -> ~${self.total:.2f}")

    @property
    def per_thousand(self) -> float:
        """Cluster dollars per 1,000 images once the step runs (setup not included)."""
        return 1000 * self.per_hour / self.images_per_hour


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


def estimate_cost(request: dict, prices: dict, hours: float, bfloat16: bool = False) -> Cost:
    """Instance-hours x (EC2 + EMR + EBS) price of every instance group, and the core nodes'
    estimated images per hour."""
    lines = []
    rate_of_images = 0.0
    for group in request["Instances"]["InstanceGroups"]:
        spec = instance_spec(prices, group["InstanceType"])
        rate = spec["ec2"] + spec["emr"] + ebs_per_hour(request, group, prices)
        lines.append((group["InstanceType"], group["InstanceCount"], rate))
        if group["InstanceRole"] in ("CORE", "TASK") and "throughput" in prices:
            rate_of_images += images_per_hour(prices, group["InstanceType"],
                                              group["InstanceCount"], bfloat16)
    per_hour = round(sum(count * rate for _, count, rate in lines), 4)
    return Cost(lines, per_hour, hours, rate_of_images)


def instance_table(rows: list[tuple[str, dict, Cost, Cost]]) -> list[str]:
    """The supported instance types side by side: (type, spec, float32 cost, bfloat16 cost)
    of a cluster made of it, as text lines."""
    lines = [f"{'type':<13} {'vCPU':>4} {'YARN MB':>8} {'bf16':>4} {'$/h':>7} "
             f"{'$/1k fp32':>10} {'$/1k bf16':>10}"]
    for itype, spec, fp32, bf16 in rows:
        native = spec.get("native_bfloat16", False)
        lines.append(f"{itype:<13} {spec['vcpu']:>4} {spec['yarn_memory_mb']:>8} "
                     f"{'yes' if native else 'no':>4} {fp32.per_hour:>7.3f} "
                     f"{fp32.per_thousand:>10.5f} "
                     f"{(f'{bf16.per_thousand:.5f}' if native else '-'):>10}")
    return lines
