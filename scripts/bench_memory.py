"""The bench's memory figures: resident memory of this process tree (the driver, its JVM and
Python workers), sampled while a run goes on."""

from __future__ import annotations

import os
import threading


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in threads:  # a JVM starts processes from its other threads
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as stream:
                found.extend(int(p) for p in stream.read().split())
        except OSError:
            continue
    return found


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status") as stream:
            for line in stream:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _kind(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            cmd = stream.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return "gone"
    if "java" in cmd.split(" ")[0] or " -cp " in cmd:
        return "jvm"
    if "pyspark" in cmd or "daemon" in cmd:
        return "python_worker"
    return "other"


class MemorySampler:
    """Peak RSS (MiB) of the driver, the JVM and the Python workers, sampled from /proc."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self.reset()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def reset(self) -> None:
        self.peak = {"driver": 0, "jvm": 0, "python_worker_max": 0, "python_workers_sum": 0}

    def _loop(self) -> None:
        me = os.getpid()
        while not self._stop.wait(self.interval):
            self.peak["driver"] = max(self.peak["driver"], _rss_kib(me))
            stack, workers = _children(me), []
            while stack:
                pid = stack.pop()
                stack.extend(_children(pid))
                kind = _kind(pid)
                if kind == "jvm":
                    self.peak["jvm"] = max(self.peak["jvm"], _rss_kib(pid))
                elif kind == "python_worker":
                    workers.append(_rss_kib(pid))
            if workers:
                self.peak["python_worker_max"] = max(self.peak["python_worker_max"], max(workers))
                self.peak["python_workers_sum"] = max(self.peak["python_workers_sum"],
                                                      sum(workers))

    def snapshot(self) -> dict[str, float]:
        return {k: round(v / 1024, 1) for k, v in self.peak.items()}

    def stop(self) -> None:
        self._stop.set()
