"""The devices TensorFlow runs on, said once in the log; a GPU service refuses to run on CPU.

The GPU runner image sets MOVINET_REQUIRE_GPU=1. A service started from it whose GPU
TensorFlow cannot use (no CUDA libraries, a driver mismatch, a CPU pod) stops with an
error naming the devices TensorFlow sees, instead of silently training on the CPU.
"""

from __future__ import annotations

import logging
import os

from adapter.core.errors import MovinetError

logger = logging.getLogger(__name__)

REQUIRE_GPU_ENV = "MOVINET_REQUIRE_GPU"


class AcceleratorUnavailable(MovinetError):
    """A GPU was required (REQUIRE_GPU_ENV) but TensorFlow cannot use one."""


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity on Linux, else the machine's count).

    Returns:
        At least 1.
    """
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def visible_gpus() -> list[str]:
    """The GPUs TensorFlow sees: the one query every device choice uses (layer swaps, runtime, training).

    Returns:
        Their device names, e.g. ["/physical_device:GPU:0"]; empty on a CPU machine.
    """
    import tensorflow as tf

    return [device.name for device in tf.config.list_physical_devices("GPU")]


def gpu_required() -> bool:
    """Whether this process was started where a GPU must be used (REQUIRE_GPU_ENV is 1/true/yes)."""
    return os.environ.get(REQUIRE_GPU_ENV, "").strip().lower() in {"1", "true", "yes"}


def check_devices(purpose: str) -> list[str]:
    """Log the devices TensorFlow sees; raise when a GPU is required and none is usable.

    Args:
        purpose: what is about to run ("training", "evaluation"), for the log and the error.

    Returns:
        The names of the physical devices TensorFlow sees, e.g. ["/physical_device:CPU:0"].
    """
    import tensorflow as tf

    names = [device.name for device in tf.config.list_physical_devices()]
    gpus = visible_gpus()
    logger.info("%s runs on the devices TensorFlow sees: %s", purpose.capitalize(), ", ".join(names) or "none")
    if gpu_required() and not gpus:
        raise AcceleratorUnavailable(
            f"{purpose.capitalize()} was started with {REQUIRE_GPU_ENV}={os.environ[REQUIRE_GPU_ENV]!r} "
            f"(the GPU runner image), but TensorFlow sees no usable GPU, only {names}; "
            f"TensorFlow built with CUDA: {tf.test.is_built_with_cuda()}. Check that the service runs on a "
            "GPU pod with the GPU runner image, or unset the variable to run on the CPU on purpose."
        )
    return names
