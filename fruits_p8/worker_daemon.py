"""Spark's Python worker daemon, without a traceback when the JVM hangs up on a worker.

A job that reads only part of a Python function's output (`first()`, `take()`, `show()`,
`limit()`, Spark ML's PCA reading one row for its size) or a task Spark cancels closes the
worker's socket while the worker still writes. Nothing failed, but pyspark's daemon prints
the worker's `BrokenPipeError` with its traceback on the console. Local sessions run this
module instead (`spark.python.daemon.module`, see fruits_p8.spark): pyspark's own daemon,
whose worker loop ends such a worker quietly, as it would after any failed task.
"""

from __future__ import annotations

import socket

from pyspark import daemon

HUNG_UP = (BrokenPipeError, ConnectionResetError)

_worker = daemon.worker


def quiet_worker(sock: socket.socket, authenticated: bool) -> int:
    """pyspark.daemon.worker; a socket the JVM closed ends the worker with code 1 (not
    reused, as after a failed task) instead of raising to the daemon's traceback print."""
    try:
        return _worker(sock, authenticated)
    except HUNG_UP:
        return 1


if __name__ == "__main__":
    daemon.worker = quiet_worker
    daemon.manager()
