"""The devices TensorFlow runs on, said once in the log; a GPU service refuses to run on CPU.

The prebuilt GPU runner image sets MOVINET_REQUIRE_GPU=1; on any other image an NVIDIA device
in the machine (NVIDIA_DEVICE_NODE, as on a GPU pod running Dataloop's public CUDA 11.8 base,
whose CUDA TensorFlow 2.20 cannot use) requires it too. A service whose GPU TensorFlow cannot
use (no CUDA libraries, a driver mismatch, a CPU pod) stops with an error naming the devices
TensorFlow sees, instead of silently training on the CPU. MOVINET_REQUIRE_GPU=0 runs on the
CPU on purpose.
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


# The control device node the NVIDIA driver creates on a machine (or pod) that has a GPU.
NVIDIA_DEVICE_NODE = "/dev/nvidiactl"


def gpu_required() -> bool:
    """Whether this process must use a GPU.

    Returns:
        True when REQUIRE_GPU_ENV is 1/true/yes; False when it is 0/false/no; when it is unset or
        empty, whether the machine has an NVIDIA GPU (NVIDIA_DEVICE_NODE exists).
    """
    value = os.environ.get(REQUIRE_GPU_ENV, "").strip().lower()
    if value in {"1", "true", "yes"}:
        return True
    if value in {"0", "false", "no"}:
        return False
    return os.path.exists(NVIDIA_DEVICE_NODE)


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
        reason = (
            f"{REQUIRE_GPU_ENV}={os.environ[REQUIRE_GPU_ENV]!r} (the GPU runner image)"
            if os.environ.get(REQUIRE_GPU_ENV, "").strip()
            else f"an NVIDIA GPU in the machine ({NVIDIA_DEVICE_NODE})"
        )
        raise AcceleratorUnavailable(
            f"{purpose.capitalize()} was started with {reason}, but TensorFlow sees no usable GPU, only {names}; "
            f"TensorFlow built with CUDA: {tf.test.is_built_with_cuda()}. TensorFlow 2.20 needs CUDA 12 and "
            "cuDNN 9 (tensorflow[and-cuda], which the prebuilt GPU runner image installs: docs/deploy.md); "
            f"set {REQUIRE_GPU_ENV}=0 to run on the CPU on purpose."
        )
    return names
