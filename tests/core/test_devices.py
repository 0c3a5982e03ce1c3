"""adapter.core.devices: a service started for a GPU refuses to run on the CPU, and says what it sees."""

from __future__ import annotations

import logging

import pytest

from adapter.core.devices import REQUIRE_GPU_ENV, AcceleratorUnavailable, check_devices
from adapter.core.errors import MovinetError


def test_without_the_requirement_the_devices_are_logged_and_returned(monkeypatch, caplog):
    monkeypatch.delenv(REQUIRE_GPU_ENV, raising=False)

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
def test_other_values_do_not_require_a_gpu(monkeypatch, value):
    monkeypatch.setenv(REQUIRE_GPU_ENV, value)

    assert check_devices("training")
