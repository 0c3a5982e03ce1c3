"""TensorFlow's log noise, quieted for services as for the command line.

The agent imports the module dataloop.json names (adapter/movinet_adapter.py) once when a
service starts, so that module calls quiet_tensorflow_logs() before anything imports
TensorFlow, and initialize_devices_quietly() after. Without them a service's log gets
TensorFlow's C++ INFO lines at import, an ERROR-level "failed call to cuInit" on every CPU
pod (TensorFlow built with CUDA looks for a driver that is not there), and, through the
agent's DEBUG root handler, absl's "Sharding callback duration" line at every checkpoint
(each epoch). A user's own TF_CPP_MIN_LOG_LEVEL, or level set on the absl logger, is kept.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import tempfile

from adapter.core.devices import gpu_required

TF_LOG_LEVEL_ENV = "TF_CPP_MIN_LOG_LEVEL"
QUIET_TF_LOG_LEVEL = "2"  # C++ warnings and errors only
CUINIT_FAILURE = "failed call to cuInit"

_level_is_ours = False


def quiet_tensorflow_logs() -> bool:
    """Set TensorFlow's C++ log level and absl's Python level unless the user set them; call before TF's import.

    Returns:
        Whether TF_CPP_MIN_LOG_LEVEL is this process's default (the user set none).
    """
    global _level_is_ours
    if TF_LOG_LEVEL_ENV not in os.environ:
        os.environ[TF_LOG_LEVEL_ENV] = QUIET_TF_LOG_LEVEL
        _level_is_ours = True
    absl_logger = logging.getLogger("absl")
    if absl_logger.level == logging.NOTSET:  # absl INFO (checkpoint sharding times) is not news
        absl_logger.setLevel(logging.WARNING)
    return _level_is_ours


def _nvidia_driver_present() -> bool:
    if not sys.platform.startswith("linux"):
        return True  # no CUDA build of TensorFlow elsewhere: nothing to hide
    try:
        ctypes.CDLL("libcuda.so.1")
    except OSError:
        return False
    return True


def initialize_devices_quietly() -> None:
    """List TensorFlow's devices once, dropping the cuInit failure a machine with no NVIDIA driver logs.

    Only where it is noise: the log level is this process's default, no driver library can be
    loaded, and no GPU is required (devices.REQUIRE_GPU_ENV: there the line says why). The C++
    log writes straight to file descriptor 2, so that descriptor is captured while TensorFlow
    looks for devices and everything else it wrote is written back.
    """
    if not _level_is_ours or gpu_required() or _nvidia_driver_present():
        return
    import tensorflow as tf

    if hasattr(sys.stderr, "flush"):  # the agent replaces sys.stderr with its own writer
        sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as captured:
        os.dup2(captured.fileno(), 2)
        try:
            tf.config.list_physical_devices()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        captured.seek(0)
        written = captured.read().decode(errors="replace")
    kept = "".join(line for line in written.splitlines(keepends=True) if CUINIT_FAILURE not in line)
    if kept:
        os.write(2, kept.encode())
