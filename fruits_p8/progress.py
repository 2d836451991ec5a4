"""Progress lines for long Spark jobs, read from the driver's status tracker."""

from __future__ import annotations

import logging
import threading
import time
from types import TracebackType

log = logging.getLogger(__name__)


def progress_line(name: str, done: int, total: int, elapsed: float, items: int | None) -> str:
    """'featurize: 3/8 tasks (38 %), ~1700/4500 images, 41 images/s, ETA 1m08s'."""
    share = done / total if total else 0.0
    line = f"{name}: {done}/{total} tasks ({share:.0%})"
    if items is not None and total:
        seen = int(items * share)
        line += f", ~{seen}/{items} images"
        if elapsed > 0 and seen:
            rate = seen / elapsed
            line += f", {rate:.0f} images/s, ETA {_duration((items - seen) / rate)}"
    return line


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


class SparkProgress:
    """Context manager: logs task progress of the running Spark stages every `interval` s."""

    def __init__(self, spark_context, name: str, items: int | None = None,
                 interval: float = 10.0) -> None:
        self._tracker = spark_context.statusTracker()
        self._name, self._items, self._interval = name, items, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{name}", daemon=True)
        self._begin = 0.0

    def __enter__(self) -> SparkProgress:
        self._begin = time.perf_counter()
        self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def snapshot(self) -> tuple[int, int]:
        """Completed and total tasks over the active stages."""
        done = total = 0
        for stage_id in self._tracker.getActiveStageIds():
            info = self._tracker.getStageInfo(stage_id)
            if info is not None:
                done += info.numCompletedTasks
                total += info.numTasks
        return done, total

    def _loop(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                done, total = self.snapshot()
            except Exception:  # the context may be stopping; progress is best effort
                return
            if total:
                log.info(progress_line(self._name, done, total,
                                       time.perf_counter() - self._begin, self._items))


def human_bytes(count: float) -> str:
    """1234567 -> '1.2 MB'."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


class CountProgress:
    """A progress bar on a terminal (redrawn in place), a log line every `interval` s else."""

    def __init__(self, stream, interactive: bool, interval: float = 5.0, width: int = 30) -> None:
        self._stream, self._interactive = stream, interactive
        self._interval, self._width = interval, width
        self._last = 0.0

    def render(self, done: int, total: int, bytes_done: int, bytes_total: int,
               note: str = "") -> str:
        share = done / total if total else 1.0
        filled = int(self._width * share)
        bar = "#" * filled + "-" * (self._width - filled)
        text = (f"[{bar}] {done}/{total} files, {human_bytes(bytes_done)}"
                f"/{human_bytes(bytes_total)}")
        return f"{text}, {note}" if note else text

    def update(self, done: int, total: int, bytes_done: int, bytes_total: int,
               note: str = "") -> None:
        now = time.monotonic()
        final = done >= total
        if self._interactive:
            self._stream.write("\r" + self.render(done, total, bytes_done, bytes_total, note))
            if final:
                self._stream.write("\n")
            self._stream.flush()
        elif final or now - self._last >= self._interval:
            self._last = now
            log.info(self.render(done, total, bytes_done, bytes_total, note))
