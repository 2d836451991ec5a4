"""The run report (run.json): what went in, what came out, how long each stage took."""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata

log = logging.getLogger(__name__)

_PACKAGES = ("fruits-p8", "pyspark", "tensorflow", "tensorflow-cpu", "keras", "numpy", "pandas",
             "pyarrow", "pillow", "boto3")


@dataclass
class Timings:
    """Wall-clock seconds per named stage, in the order the stages ran."""

    stages: dict[str, float] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        log.info("%s ...", name)
        begin = time.perf_counter()
        try:
            yield
        except BaseException:
            log.info("%s stopped after %.1f s", name, time.perf_counter() - begin)
            raise
        self.stages[name] = round(time.perf_counter() - begin, 3)
        log.info("%s done in %.1f s", name, self.stages[name])

    @property
    def total(self) -> float:
        return round(time.time() - self.started, 3)


def versions() -> dict[str, str]:
    """Versions of Python and of the packages that shape the results; PySpark's from the
    module where pip did not install it (EMR puts Spark's own on the path, no metadata)."""
    found = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    if "pyspark" not in found:
        try:
            import pyspark
        except ImportError:
            pass
        else:
            found["pyspark"] = pyspark.__version__
    return found


def explained_variance_section(explained, cumulative) -> dict[str, object]:
    """Per-component and cumulative explained-variance ratios, rounded for reading."""
    return {
        "total": round(float(cumulative[-1]), 6) if len(cumulative) else 0.0,
        "per_component": [round(float(x), 8) for x in explained],
        "cumulative": [round(float(x), 8) for x in cumulative],
    }
