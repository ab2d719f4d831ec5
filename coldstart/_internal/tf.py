"""Import TensorFlow without its start-up noise.

TensorFlow's C++ runtime writes a screenful of INFO lines (oneDNN notes, CUDA probing) straight to
file descriptor 2 *before* its logging is configured, so ``TF_CPP_MIN_LOG_LEVEL`` cannot hide them and
they land in every notebook's output. :func:`import_tensorflow` imports TensorFlow (and probes the
devices once) with that descriptor pointed at /dev/null; Python exceptions are unaffected.
"""

from __future__ import annotations

import contextlib
import os
import sys


@contextlib.contextmanager
def silenced_fd2():
    """Point file descriptor 2 at /dev/null for the duration (C-level stderr only)."""
    try:
        sys.stderr.flush()
    except Exception:  # pragma: no cover
        pass
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def import_tensorflow():
    """Return the ``tensorflow`` module, importing it quietly the first time."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    with silenced_fd2():
        import tensorflow as tf

        tf.config.list_physical_devices()  # CUDA/TPU probing prints here too
    tf.get_logger().setLevel("ERROR")
    return tf


def quiet_transformers() -> None:
    """Keep transformers to errors only (its TF deprecation and weight-conversion notices are expected here)."""
    import warnings

    from transformers.utils import logging

    logging.set_verbosity_error()
    warnings.filterwarnings("ignore", message=".*seed_generator.*deprecated")
