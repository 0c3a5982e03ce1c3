"""A service's log: the agent imports adapter/movinet_adapter.py (dataloop.json's entry point) by
file path with the root logger at DEBUG; TensorFlow's C++ logs go straight to the process's stderr.
Each case runs in a fresh interpreter: TensorFlow reads its log level once, at import."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.conftest import ROOT

# As the agent: its root handler takes every record (DEBUG), the entry point is loaded from its
# file; then what an epoch does that logs (a checkpoint write) and a first TensorFlow op.
RUNNER = r"""
import importlib.util, logging, os, sys
logging.basicConfig(level=logging.DEBUG, stream=sys.stderr, format="%(name)s - %(levelname)s - %(message)s")
sys.path.insert(0, os.getcwd())
spec = importlib.util.spec_from_file_location("movinet_adapter", os.path.join("adapter", "movinet_adapter.py"))
spec.loader.exec_module(importlib.util.module_from_spec(spec))
import tensorflow as tf
tf.train.Checkpoint(step=tf.Variable(1)).write(os.path.join(sys.argv[1], "checkpoint"))
print("devices:", [device.device_type for device in tf.config.list_physical_devices()], file=sys.stderr)
"""
# TensorFlow's C++ log line: "2026-12-01 15:33:04.301937: I external/...cc:31] ..."
TF_INFO_LINE = re.compile(r"^\S+ \S+: I \S+\] ", re.MULTILINE)


def service_stderr(tmp_path, **env_changes) -> str:
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env.update(env_changes)
    result = subprocess.run(
        [sys.executable, "-c", RUNNER, str(tmp_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stderr


@pytest.mark.skipif(os.environ.get("MOVINET_REQUIRE_GPU"), reason="a GPU service keeps the cuInit line")
def test_a_service_logs_no_tensorflow_info_no_cuinit_failure_and_no_checkpoint_sharding_lines(tmp_path):
    stderr = service_stderr(tmp_path)

    assert "devices: [" in stderr  # it ran to the end
    assert not TF_INFO_LINE.search(stderr), stderr
    assert "failed call to cuInit" not in stderr
    assert "Sharding callback duration" not in stderr


def test_a_users_own_tensorflow_log_level_is_kept(tmp_path):
    stderr = service_stderr(tmp_path, TF_CPP_MIN_LOG_LEVEL="0")

    assert TF_INFO_LINE.search(stderr), stderr  # everything TensorFlow says, as asked
