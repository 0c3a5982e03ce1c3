"""`movinet watch` as a user runs it: MPEG-TS on standard input and over a loopback socket, Ctrl-C, wrong models."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from adapter.items import local_video
from adapter.live import LiveSource
from adapter.preprocessing import preprocess_frame
from adapter.presets import kinetics_600_labels, preset_model
from adapter.watch import watch_periods
from tests.conftest import ROOT
from tests.test_cli import run_cli
from tests.test_live import served
from tests.test_predict import make_adapter
from tests.videos import mark_ts_packets_corrupt, mpegts_bytes

SOURCE_FPS = 10
SECONDS = 4
SMALL = ("--set", "imgz=48")  # the a0 stream preset otherwise: 5 fps, its top_k
PRESET = preset_model("movinet-a0-stream")["configuration"]


@pytest.fixture(scope="module")
def stream() -> bytes:
    return mpegts_bytes(frames=SECONDS * SOURCE_FPS, fps=SOURCE_FPS)


def watch_command(source: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "adapter", "watch", source, *SMALL, *options]


def environment(hub_cache) -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT), "TFHUB_CACHE_DIR": str(hub_cache)}


def check_lines(lines: list[dict], every: float, seconds: float, fps: float, top_k: int) -> None:
    """Consecutive periods of `every` seconds covering `seconds`, each with its frames, labels of the label map."""
    assert len(lines) == round(seconds / every), lines
    labels = set(kinetics_600_labels())
    frame_times = [k / fps for k in range(round(seconds * fps))]
    for index, line in enumerate(lines):
        start, end = index * every, (index + 1) * every
        assert line["start"] == pytest.approx(start)
        assert line["end"] == pytest.approx(end)
        assert line["frames"] == sum(start - 1e-9 <= t < end - 1e-9 for t in frame_times)
        assert len(line["top_k"]) == top_k
        probabilities = [entry["probability"] for entry in line["top_k"]]
        assert probabilities == sorted(probabilities, reverse=True) and all(0 < p <= 1 for p in probabilities)
        assert {entry["label"] for entry in line["top_k"]} <= labels
        assert line["top1"]["label"] in labels and 0 < line["top1"]["probability"] <= 1


def test_watch_reads_mpegts_from_stdin_and_goes_on_past_a_corrupt_packet(hub_cache, stream):
    damaged = mark_ts_packets_corrupt(stream, start_fraction=0.5)

    result = subprocess.run(
        watch_command("-"), input=damaged, cwd=ROOT, env=environment(hub_cache), capture_output=True, timeout=600
    )

    stderr = result.stderr.decode(errors="replace")
    assert result.returncode == 0, stderr[-3000:]
    # A line per second of video, to the end: the damage cost a frame at most, not the watch.
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert len(lines) == SECONDS and lines[-1]["end"] == pytest.approx(SECONDS)
    assert sum(line["frames"] for line in lines) >= SECONDS * PRESET["fps"] - 1
    undamaged = [line for line in lines if line["frames"] == PRESET["fps"]]
    check_lines(undamaged[:1], every=1, seconds=1, fps=PRESET["fps"], top_k=PRESET["top_k"])
    assert "'<stdin>'" in stderr and "corrupt packet" in stderr
    assert "end of stream" in stderr


@pytest.fixture(scope="module")
def stream_adapter(hub_cache, module_platform):
    return make_adapter("stream")


def test_a_loopback_socket_gives_a_line_per_period_ending_in_what_predict_says(stream_adapter, stream, tmp_path):
    config = stream_adapter.config
    with served(stream) as url:
        source = LiveSource(url, config.frame_rate, transform=lambda image: preprocess_frame(image, config.imgz))
        results = watch_periods(
            source, stream_adapter.classifier, stream_adapter.loaded.labels, fps=config.frame_rate, every=0.4, top_k=config.top_k
        )
        lines = [result.to_json() for result in results]

    check_lines(lines, every=0.4, seconds=SECONDS, fps=config.frame_rate, top_k=config.top_k)
    # After the last frame the stream model has seen the whole video: predict's answer on the same stream.
    path = tmp_path / "stream.ts"
    path.write_bytes(stream)
    prediction, _ = stream_adapter.classify_video(local_video(str(path)))
    best = np.argsort(prediction.probabilities)[::-1][: config.top_k]
    assert [entry["label"] for entry in lines[-1]["top_k"]] == [stream_adapter.loaded.labels[i] for i in best]
    np.testing.assert_allclose(
        [entry["probability"] for entry in lines[-1]["top_k"]], prediction.probabilities[best], atol=1e-5
    )


def test_ctrl_c_ends_the_watch_cleanly_with_the_open_period(hub_cache, stream):
    first_half = stream[: len(stream) // 2 // 188 * 188]
    watch = subprocess.Popen(
        watch_command("-", "--stall-timeout", "600"),
        cwd=ROOT,
        env=environment(hub_cache),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        watch.stdin.write(first_half)
        watch.stdin.flush()  # and the stream stays open: only Ctrl-C can end this watch
        first = json.loads(watch.stdout.readline())
        assert first["start"] == 0
        watch.send_signal(signal.SIGINT)
        rest, stderr = watch.communicate(timeout=120)
    finally:
        watch.kill()
        watch.wait()

    stderr = stderr.decode(errors="replace")
    assert watch.returncode == 0, stderr[-3000:]
    assert "Ctrl-C" in stderr and "Traceback" not in stderr
    # The period open at Ctrl-C is still reported, and nothing past what was sent.
    lines = [first] + [json.loads(line) for line in rest.decode().splitlines()]
    assert len(lines) >= 2 and lines[-1]["end"] <= SECONDS / 2


def test_a_base_model_is_refused_before_loading(tmp_path):
    result = run_cli("watch", "-", "--model", "movinet-a0-base")

    assert result.returncode == 2
    assert "stream models only" in result.stderr and "movinet-a0-base" in result.stderr
