"""adapter.core.devices: a service started for a GPU refuses to run on the CPU, and says what it sees."""

from __future__ import annotations

import logging

import pytest

from adapter.core import devices
from adapter.core.devices import REQUIRE_GPU_ENV, AcceleratorUnavailable, check_devices
from adapter.core.errors import MovinetError


def test_without_the_requirement_the_devices_are_logged_and_returned(monkeypatch, caplog, tmp_path):
    monkeypatch.delenv(REQUIRE_GPU_ENV, raising=False)
    monkeypatch.setattr(devices, "NVIDIA_DEVICE_NODE", str(tmp_path / "absent"))

    with caplog.at_level(logging.INFO, logger="adapter.core.devices"):
        names = check_devices("training")

    assert any(name.endswith("CPU:0") for name in names)
    assert "CPU:0" in caplog.text and "Training" in caplog.text


def test_a_required_gpu_that_tensorflow_cannot_use_is_a_loud_error(monkeypatch):
    # This machine has no GPU, which is exactly the case the check exists for.
    monkeypatch.setenv(REQUIRE_GPU_ENV, "1")

    with pytest.raises(AcceleratorUnavailable, match="no usable GPU") as raised:
        check_devices("evaluation")

    assert "CPU:0" in str(raised.value) and REQUIRE_GPU_ENV in str(raised.value)
    assert isinstance(raised.value, MovinetError)


@pytest.mark.parametrize("value", ["", "0", "false", "no"])
def test_other_values_do_not_require_a_gpu(monkeypatch, value, tmp_path):
    monkeypatch.setenv(REQUIRE_GPU_ENV, value)
    monkeypatch.setattr(devices, "NVIDIA_DEVICE_NODE", str(tmp_path / "absent"))

    assert check_devices("training")


def test_a_gpu_machine_without_cuda_tensorflow_is_an_error_unless_the_cpu_is_chosen(monkeypatch, tmp_path):
    # A GPU pod on Dataloop's public CUDA 11.8 base: the requirements' TensorFlow sees no GPU there.
    node = tmp_path / "nvidiactl"
    node.write_text("")
    monkeypatch.setattr(devices, "NVIDIA_DEVICE_NODE", str(node))
    monkeypatch.delenv(REQUIRE_GPU_ENV, raising=False)

    with pytest.raises(AcceleratorUnavailable, match="NVIDIA GPU in the machine") as raised:
        check_devices("training")
    assert "tensorflow[and-cuda]" in str(raised.value) and "docs/deploy.md" in str(raised.value)

    monkeypatch.setenv(REQUIRE_GPU_ENV, "0")
    assert check_devices("training")
