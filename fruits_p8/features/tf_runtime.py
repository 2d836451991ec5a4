"""Import TensorFlow once per process without its start-up banner.

TF prints "oneDNN custom operations are on" and an absl notice on stderr before its own
logging is set up, so TF_CPP_MIN_LOG_LEVEL cannot silence them; in a Spark run every worker
would repeat them. Anything else TF prints while importing still reaches stderr.
"""

from __future__ import annotations

import os
import sys
import tempfile

_BANNER = (
    "All log messages before absl::InitializeLog() is called",
    "oneDNN custom operations are on",
    "This TensorFlow binary is optimized",
    "To enable the following instructions",
    "rebuild TensorFlow with the appropriate compiler flags",
)


def import_tensorflow(threads: int | None = None):
    """The tensorflow module, imported with its known start-up lines filtered out.

    `threads` sets intra-op threads (and one inter-op thread); it only takes effect on the
    first import in a process, before TF runs anything.
    """
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as capture:
        os.dup2(capture.fileno(), 2)
        try:
            import tensorflow as tf

            if threads:
                tf.config.threading.set_intra_op_parallelism_threads(threads)
                tf.config.threading.set_inter_op_parallelism_threads(1)
            tf.constant(0)  # oneDNN announces itself on first use
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            for line in capture.read().decode(errors="replace").splitlines(keepends=True):
                if not any(marker in line for marker in _BANNER):
                    sys.stderr.write(line)
            sys.stderr.flush()
    return tf
