"""SIGINT and SIGTERM stop a command the way an error does: through its `finally` blocks.

The first signal raises `Interrupted` in the main thread, wherever it waits (a Spark job, a
sleep, a socket); every `finally` and `except BaseException` on the way out then runs: the
output's staging is removed, its lease released, Spark stopped. Signals that come while the
command is already stopping are noted in the log and ignored, so that a second Ctrl-C cannot
cut that clean-up short (SIGQUIT or SIGKILL still end the process at once).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from fruits_p8.errors import Interrupted

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopOnSignal:
    """The handler: raises Interrupted once, then only notes the signals that follow."""

    def __init__(self) -> None:
        self.stopping = False

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            log.warning("%s while stopping: ignored, the clean-up goes on",
                        signal.Signals(signum).name)
            return
        self.stopping = True
        raise Interrupted(signum)

    def hold(self) -> None:
        """From now on signals are only noted: the command is ending on its own."""
        self.stopping = True


@contextmanager
def stop_on_signals() -> Iterator[StopOnSignal]:
    """Install StopOnSignal for SIGINT and SIGTERM (main thread only: elsewhere Python lets
    no handler be set, and the caller's own handlers stay); put the previous ones back after."""
    handler = StopOnSignal()
    if threading.current_thread() is not threading.main_thread():
        yield handler
        return
    previous = {number: signal.getsignal(number) for number in STOP_SIGNALS}
    for number in STOP_SIGNALS:
        signal.signal(number, handler)
    try:
        yield handler
    finally:
        for number, before in previous.items():
            signal.signal(number, before)


@contextmanager
def keeping_sigint() -> Iterator[None]:
    """PySpark sets its own SIGINT handler when a SparkContext starts (it cancels the jobs
    and raises KeyboardInterrupt, and raises AttributeError once the context is stopped):
    where a StopOnSignal was in place, it stays."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    before = signal.getsignal(signal.SIGINT)
    try:
        yield
    finally:
        if isinstance(before, StopOnSignal):
            signal.signal(signal.SIGINT, before)
