"""Progress lines for long Spark jobs: tasks from the driver's status tracker, images from
the counts the featurizer's tasks send as they go (an accumulator reaches the driver only
when its task ends, thousands of images later)."""

from __future__ import annotations

import logging
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType

log = logging.getLogger(__name__)
# Before a task's first count: a cold worker imports TensorFlow and builds the model first.
STARTING = "workers starting (TensorFlow, the model), images counted from their first batch"


def progress_line(name: str, done: int, total: int, elapsed: float, items: int | None,
                  counted: int | None = None, rate: float | None = None,
                  note: str = "") -> str:
    """'featurize: 3/8 tasks (38 %), 1712/4500 images, 41 images/s, ETA 1m08s'.

    Without `counted` (images done, as the tasks report them) the images are estimated from
    the finished tasks ('~1700') and the rate from `elapsed`. `note` ends the line.
    """
    share = done / total if total else 0.0
    line = f"{name}: {done}/{total} tasks ({share:.0%})"
    if items is None or not total:
        return line
    if counted is None:
        seen = int(items * share)
        line += f", ~{seen}/{items} images"
        rate = seen / elapsed if elapsed > 0 and seen else None
    else:
        seen = counted
        line += f", {seen}/{items} images"
    if rate:
        line += f", {rate:.0f} images/s, ETA {_duration(max(0, items - seen) / rate)}"
    return f"{line}; {note}" if note else line


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds + 0.5), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


@dataclass(frozen=True)
class TallyAddress:
    """Where tasks send their running image counts (UDP, the driver's address) for one run."""

    host: str
    port: int
    token: str


def tally_message(token: str, partition: int, attempt: int, images: int) -> bytes:
    return f"{token} {partition} {attempt} {images}".encode()


def read_tally_message(data: bytes, token: str) -> tuple[int, int, int] | None:
    """(partition, attempt, images) of a message of this run; None for anything else."""
    try:
        sent, partition, attempt, images = data.decode("ascii").split()
        values = int(partition), int(attempt), int(images)
    except (UnicodeDecodeError, ValueError):
        return None
    return values if secrets.compare_digest(sent, token) else None


def send_tally(address: TallyAddress, partition: int, attempt: int, images: int) -> None:
    """Task side, after each CNN batch: best effort, never fails or slows the task."""
    family = socket.AF_INET6 if ":" in address.host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.setblocking(False)
            sock.sendto(tally_message(address.token, partition, attempt, images),
                        (address.host, address.port))
    except OSError:
        pass


class ImageTally:
    """Driver side: images through the CNN so far, summed over the partitions' latest
    attempts (a retried task counts again from zero). Receives while entered; `address` is
    None where no socket could be opened on `host` (progress then counts finished tasks).
    `clock` (seconds) times the rate; tests pass their own."""

    def __init__(self, host: str, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._latest: dict[int, tuple[int, int]] = {}
        self._first: tuple[float, int] | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._receive, name="image-tally", daemon=True)
        self._sock: socket.socket | None = None
        self.address: TallyAddress | None = None
        try:
            family, _, _, _, where = socket.getaddrinfo(host, 0, type=socket.SOCK_DGRAM)[0]
            self._sock = socket.socket(family, socket.SOCK_DGRAM)
            self._sock.bind(where)
            self._sock.settimeout(0.2)
            bound = self._sock.getsockname()
            self.address = TallyAddress(bound[0], bound[1], secrets.token_hex(8))
        except OSError as exc:
            log.debug("no image tally on %s: %s", host, exc)
            self.close()

    def __enter__(self) -> ImageTally:
        if self._sock is not None:
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2)
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def _receive(self) -> None:
        sock, token = self._sock, self.address.token
        while not self._stop.is_set():
            try:
                data = sock.recv(256)
            except TimeoutError:
                continue
            except OSError:
                return
            message = read_tally_message(data, token)
            if message is not None:
                self.add(*message)

    def add(self, partition: int, attempt: int, images: int) -> None:
        """One task's count so far; an older attempt's late message is ignored."""
        with self._lock:
            before = self._latest.get(partition, (-1, 0))
            if attempt > before[0] or (attempt == before[0] and images >= before[1]):
                self._latest[partition] = (attempt, images)
            if self._first is None:
                self._first = (self._clock(), self._done())

    def _done(self) -> int:
        return sum(images for _, images in self._latest.values())

    @property
    def heard(self) -> bool:
        """Whether any task's count came in (none may reach a driver behind a firewall)."""
        with self._lock:
            return self._first is not None

    def done(self) -> int:
        with self._lock:
            return self._done()

    def rate(self) -> float | None:
        """Images per second since the first count came in (model builds come before it)."""
        with self._lock:
            if self._first is None:
                return None
            seconds = self._clock() - self._first[0]
            gained = self._done() - self._first[1]
        return gained / seconds if seconds > 0.5 and gained > 0 else None


class SparkProgress:
    """Context manager: logs the progress of the running Spark stages after `first` s, then
    every `interval` s; images as `tally` counts them once it hears from a task, else
    estimated from the finished tasks. The first line that can give a rate and an ETA is
    logged as soon as it can (checked every `poll` s), not at the next interval. While
    entered, a thread calls `check()` every `poll` s; `clock` (seconds) decides what is due,
    so a test can drive `check()` itself with its own clock."""

    def __init__(self, spark_context, name: str, items: int | None = None,
                 interval: float = 10.0, tally: ImageTally | None = None,
                 first: float = 5.0, poll: float = 0.5,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self._tracker = spark_context.statusTracker()
        self._name, self._items, self._interval = name, items, interval
        self._tally = tally if tally is not None and tally.address is not None else None
        self._clock = clock
        self._tick = min(poll, first, interval)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"progress-{name}", daemon=True)
        self._begin, self._due, self._rate_shown = clock(), first, False

    def __enter__(self) -> SparkProgress:
        self._begin = self._clock()
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

    def check(self) -> bool:
        """Logs a line if one is due; False once Spark can no longer be asked."""
        elapsed = self._clock() - self._begin
        counting = self._tally is not None and self._tally.heard
        rate = self._tally.rate() if counting else None
        if elapsed < self._due and (rate is None or self._rate_shown):
            return True
        try:
            done, total = self.snapshot()
        except Exception:  # the context may be stopping; progress is best effort
            return False
        if total:
            counted = self._tally.done() if counting else None
            waiting = self._tally is not None and not counting and not done
            log.info(progress_line(self._name, done, total, elapsed, self._items,
                                   counted, rate, STARTING if waiting else ""))
            self._rate_shown = self._rate_shown or rate is not None
            self._due = elapsed + self._interval
        return True

    def _loop(self) -> None:
        while not self._stop.wait(self._tick) and self.check():
            pass


def human_bytes(count: float) -> str:
    """1234567 -> '1.2 MB'."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


class CountProgress:
    """A progress bar on a terminal (redrawn in place), a log line every `interval` s else
    (`clock`, seconds, tells when)."""

    def __init__(self, stream, interactive: bool, interval: float = 5.0, width: int = 30,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._stream, self._interactive = stream, interactive
        self._interval, self._width, self._clock = interval, width, clock
        self._last: float | None = None

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
        now = self._clock()
        final = done >= total
        if self._interactive:
            self._stream.write("\r" + self.render(done, total, bytes_done, bytes_total, note))
            if final:
                self._stream.write("\n")
            self._stream.flush()
        elif final or self._last is None or now - self._last >= self._interval:
            self._last = now
            log.info(self.render(done, total, bytes_done, bytes_total, note))
