"""Keep TensorFlow's start-up and log noise out of notebooks, the CLI and the app.

TensorFlow writes C++ log lines (``I0000 …``, a red ``E0000 … failed call to cuInit`` on
machines without a GPU driver) straight to the process's standard error before its own log
level applies, and Keras warns about ``tf.function`` retracing through Python logging.
``quiet_tensorflow()`` imports TensorFlow once with that start-up output discarded and turns
the Python loggers down to errors. Call it before anything imports TensorFlow: the CLI does,
and each notebook's imports cell does. Nothing happens at import of this module.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def discard_stderr() -> Iterator[None]:
    """Send the process's file descriptor 2 to ``/dev/null`` for the ``with`` block.

    Python's ``sys.stderr`` and C libraries both write there; the original descriptor is
    restored afterwards, even on an exception. Where descriptor 2 cannot be duplicated
    (an embedded interpreter), the block runs unchanged.

    Yields:
        Nothing.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:
        yield
        return
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 2)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        os.close(null)


def quiet_tensorflow(level: str = "2") -> None:
    """Import TensorFlow without its start-up noise and keep its loggers to errors.

    Sets ``TF_CPP_MIN_LOG_LEVEL`` (unless already set; ``"2"`` keeps C++ errors after
    start-up), imports TensorFlow and looks for GPUs (where CUDA prints its start-up
    lines) with standard error discarded, then sets TensorFlow's and absl's Python
    loggers to ERROR (no retracing warnings). Calling it again does nothing new.

    Args:
        level: The C++ log level to use when none is set (``"0"`` shows everything).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", level)
    if "tensorflow" not in sys.modules:
        with discard_stderr():
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")
    import tensorflow as tf

    tf.get_logger().setLevel(logging.ERROR)
    with contextlib.suppress(ImportError):
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
