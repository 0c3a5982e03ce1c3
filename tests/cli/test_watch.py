"""`movinet watch` as a user runs it (standard input, Ctrl-C, wrong models) and its parts: a loopback socket, periods."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from adapter.cli.watch import watch_periods
from adapter.core.presets import kinetics_600_labels, preset_model
from adapter.runtime.results import Segment
from adapter.video.inputs import local_video
from adapter.video.live import LiveFrame, LiveSource
from adapter.video.preprocessing import preprocess_frame
from tests.cli.test_parser import run_cli
from tests.conftest import ROOT
from tests.movinet_adapter.test_predict import make_adapter
from tests.video.test_live import piped, served
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


@pytest.fixture(scope="module")
def stream_adapter(hub_cache, module_platform):
    return make_adapter("stream")


def test_a_loopback_socket_gives_a_line_per_period_ending_in_what_predict_says(stream_adapter, stream, tmp_path):
    config = stream_adapter.config
    with served(stream) as url:
        source = LiveSource(
            url,
            config.frame_rate,
            transform=lambda image: preprocess_frame(image, config.imgz),
            shorter_side=config.imgz,  # as the command resizes
        )
        results = watch_periods(
            source,
            stream_adapter.classifier,
            stream_adapter.loaded.labels,
            fps=config.frame_rate,
            every=0.4,
            top_k=config.top_k,
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


def test_watch_on_stdin_goes_on_past_a_corrupt_packet_and_ends_cleanly_on_ctrl_c(hub_cache, stream):
    damaged = mark_ts_packets_corrupt(stream, start_fraction=0.5)
    watch = subprocess.Popen(
        watch_command("-", "--stall-timeout", "600"),
        cwd=ROOT,
        env=environment(hub_cache),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        watch.stdin.write(damaged)
        watch.stdin.flush()  # and the stream stays open: only Ctrl-C can end this watch
        # The periods before, across and after the damage (at 2 s) come, one line per second.
        lines = [json.loads(watch.stdout.readline()) for _ in range(SECONDS - 1)]
        watch.send_signal(signal.SIGINT)
        rest, stderr = watch.communicate(timeout=120)
    finally:
        watch.kill()
        watch.wait()

    stderr = stderr.decode(errors="replace")
    assert watch.returncode == 0, stderr[-3000:]
    assert "'<stdin>'" in stderr and "corrupt packet" in stderr
    assert "Ctrl-C" in stderr and "Traceback" not in stderr
    undamaged = [line for line in lines if line["frames"] == PRESET["fps"]]
    assert len(undamaged) >= len(lines) - 1
    check_lines(undamaged[:1], every=1, seconds=1, fps=PRESET["fps"], top_k=PRESET["top_k"])
    for index, line in enumerate(lines):
        assert (line["start"], line["end"]) == (index, index + 1)
    # The period open at Ctrl-C (if it had frames) ends within what was sent.
    assert all(json.loads(line)["end"] <= SECONDS for line in rest.decode().splitlines())


def test_a_base_model_is_refused_before_loading(tmp_path):
    result = run_cli("watch", "-", "--model", "movinet-a0-base")

    assert result.returncode == 2
    assert "stream models only" in result.stderr and "movinet-a0-base" in result.stderr


class FakeStreamClassifier:
    """segments() as stream classifiers give it: each window's own probabilities, and a running mean."""

    def __init__(self, num_classes: int):
        self.num_classes = num_classes

    def segments(self, windows):
        total = np.zeros(self.num_classes)
        for count, window in enumerate(windows, start=1):
            own = np.full(self.num_classes, 0.5 / (self.num_classes - 1))
            own[window.first_index % self.num_classes] = 0.5  # slot k votes for class k mod n
            total += own
            yield Segment(window.first_index, window.last_index, int(np.argmax(own)), 0.5, own), total / count


def live_frames(slots):
    return [LiveFrame(slot, slot / 5, np.zeros((8, 8, 3), np.float32)) for slot in slots]


def test_watch_periods_close_on_their_last_frame_and_flush_a_partial_one():
    labels = ["a", "b", "c"]
    # 5 fps, a line per second: slots 0-4, 5-9, then slot 10 before the frames stop (end, Ctrl-C or a stall).
    results = list(watch_periods(live_frames(range(11)), FakeStreamClassifier(3), labels, fps=5, every=1, top_k=2))

    assert [(r.start, r.end, r.frames) for r in results] == [(0, 1, 5), (1, 2, 5), (2, 2.2, 1)]
    # Own label: slots 0-4 vote a, b, c, a, b -> a and b tie, the first wins; slots 5-9: c, a, b, c, a; slot 10: b.
    assert [r.top1[0] for r in results] == ["a", "a", "b"]
    assert results[0].top1[1] == pytest.approx((0.5 * 2 + 0.25 * 3) / 5)
    # top_k: the running output after each period's last frame (slots 0-9: a 4 votes, b and c 3), best first.
    assert [label for label, _ in results[1].top_k] == ["a", "b"]
    assert len(results[2].top_k) == 2


def test_watch_periods_with_lost_frames_report_what_arrived():
    # Slots 3-6 never came: the first period closes when slot 7 (the next period's) arrives.
    results = list(
        watch_periods(live_frames([0, 1, 2, 7, 8, 9]), FakeStreamClassifier(3), ["a", "b", "c"], fps=5, every=1)
    )

    assert [(r.start, r.end, r.frames) for r in results] == [(0, 0.6, 3), (1, 2, 3)]


@pytest.fixture
def fake_loaded_adapter(monkeypatch):
    """watch's CLI without TensorFlow: loaded_adapter answers with a stream "model" voting by slot."""
    import types

    from adapter.cli import commands
    from adapter.core.config import MovinetConfig

    fake = types.SimpleNamespace(
        config=MovinetConfig(model_mode="stream", imgz=32, fps=5, top_k=2),
        classifier=FakeStreamClassifier(3),
        loaded=types.SimpleNamespace(labels=["a", "b", "c"]),
    )
    monkeypatch.setattr(commands, "loaded_adapter", lambda args: fake)
    return fake


@pytest.mark.parametrize("ending", ["end of stream", "stalled"])
def test_watch_says_why_it_ended_and_exits_0_at_the_end_1_on_a_stall(
    ending, fake_loaded_adapter, stream, capsys, caplog
):
    from adapter.cli.parser import main

    data = stream if ending == "end of stream" else stream[: len(stream) // 2 // 188 * 188]
    with piped(data, hold_open=ending == "stalled") as url, caplog.at_level(logging.INFO, logger="adapter"):
        code = main(["watch", url, "--stall-timeout", "1"])

    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    stopped = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Stopped watching")]
    assert stopped and ending in stopped[0] and url in stopped[0]
    if ending == "end of stream":
        assert code == 0 and len(lines) == SECONDS
    else:
        assert code == 1 and "stall timeout 1 s" in stopped[0]
        assert lines and all(line["end"] <= SECONDS / 2 for line in lines)


class ScriptedStreamClassifier(FakeStreamClassifier):
    """Each slot's own probabilities put 0.8 on the class the script names for it."""

    def __init__(self, votes, num_classes=2):
        super().__init__(num_classes)
        self.votes = votes

    def segments(self, windows):
        for window in windows:
            own = np.full(self.num_classes, 0.2 / (self.num_classes - 1))
            own[self.votes[window.first_index]] = 0.8
            yield Segment(window.first_index, window.last_index, int(np.argmax(own)), 0.8, own), own


def test_temporal_smoothing_averages_the_seconds_before_each_periods_end_and_never_later_frames():
    votes = [0, 0, 0, 0, 1] + [1, 1, 1, 0, 0]  # period 1 alone leans to b, the last two seconds to a
    labels = ["a", "b"]

    def run(smoothing):
        classifier = ScriptedStreamClassifier(votes)
        return list(
            watch_periods(live_frames(range(10)), classifier, labels, fps=5, every=1, smoothing_seconds=smoothing)
        )

    plain, smoothed = run(0.0), run(2.0)

    assert [r.top1[0] for r in plain] == ["a", "b"]
    assert [r.top1[0] for r in smoothed] == ["a", "a"]
    assert smoothed[1].top1[1] == pytest.approx((6 * 0.8 + 4 * 0.2) / 10)
    # Causal: the first period sees nothing after its own last frame.
    assert smoothed[0].top1 == plain[0].top1
