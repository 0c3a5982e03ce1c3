"""The progress-bar switch of the SDK's flows, as calls on several threads at once use it."""

from __future__ import annotations

import io
import sys
import threading
import types

import pytest
import tqdm

from adapter.platform.dataset_runs import progress_bars_on_terminal_only


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
