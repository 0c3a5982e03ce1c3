"""adapter.platform.dataset_runs: dataset runs sized by video duration, and the progress-bar switch of the SDK's
flows as calls on several threads at once use it."""

from __future__ import annotations

import io
import sys
import threading
import types

import pytest
import tqdm

from adapter.platform.dataset_runs import progress_bars_on_terminal_only, subset_limit_for
from adapter.platform.items import video_seconds


@pytest.fixture
def flows_module(monkeypatch) -> types.ModuleType:
    """A module calling tqdm.tqdm(...) through its own `tqdm` name, as dtlpy's flows do."""
    module = types.ModuleType("fake_sdk_flows")
    module.tqdm = tqdm
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def bar_is_off(module) -> bool:
    # Written to a stream that is not a terminal, as a service's log.
    with module.tqdm.tqdm(range(1), file=io.StringIO()) as bar:
        return bool(bar.disable)


def test_each_calls_bars_follow_its_own_scope_while_another_call_ends(flows_module):
    first_inside, second_inside, first_left = threading.Event(), threading.Event(), threading.Event()
    seen = {}

    def first_call():
        with progress_bars_on_terminal_only(flows_module.__name__):
            first_inside.set()
            second_inside.wait(timeout=30)
        first_left.set()

    def second_call():
        first_inside.wait(timeout=30)
        with progress_bars_on_terminal_only(flows_module.__name__):
            second_inside.set()
            first_left.wait(timeout=30)
            seen["second, after the first call ended"] = bar_is_off(flows_module)
        seen["second, after its own call"] = bar_is_off(flows_module)

    threads = [threading.Thread(target=first_call), threading.Thread(target=second_call)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert seen == {"second, after the first call ended": True, "second, after its own call": False}
    assert not bar_is_off(flows_module)  # outside any call, a bar is as the module asked for


@pytest.mark.parametrize(
    ("system", "seconds"),
    [
        ({"duration": 600.5}, 600.5),
        ({"nb_frames": 900, "fps": 30}, 30.0),
        ({"ffmpeg": {"nb_frames": 300}, "fps": 10}, 30.0),
        ({"fps": 30}, None),
        ({"duration": "long"}, None),
        ({}, None),
    ],
)
def test_video_seconds_from_platform_metadata(system, seconds):
    assert video_seconds({"metadata": {"system": system}}) == seconds


def test_the_limit_counts_one_minute_videos_and_shrinks_for_the_longest():
    assert subset_limit_for(550, [30.0, 60.0, None]) == 550
    assert subset_limit_for(550, []) == 550
    # Ten-minute videos on a0: a tenth as many per execution, as the docs' rule says.
    assert subset_limit_for(550, [30.0, 600.0, None]) == 55
    # Never zero: a video longer than the whole budget still runs, alone.
    assert subset_limit_for(50, [10 * 60 * 60.0]) == 1
