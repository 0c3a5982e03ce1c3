"""adapter.platform.items: a download that would not fit on the disk fails that item, by name, before it starts."""

from __future__ import annotations

import shutil

import pytest

from adapter.platform import items
from tests.videos import write_video


@pytest.fixture
def video_item(platform, tmp_path):
    def make(size):
        item = platform.add_item(write_video(tmp_path / "long.mp4", frames=6, fps=10), item_id="item-long")
        if size is not None:
            item.metadata["system"]["size"] = size
        return item

    return make


def test_an_item_larger_than_the_free_disk_fails_by_name_and_downloads_nothing(video_item, monkeypatch):
    free = shutil.disk_usage("/tmp").free
    item = video_item(free * 2)
    downloads = []
    monkeypatch.setattr(type(item), "download", lambda self, **kwargs: downloads.append(self.id))

    video = items.download_item(item)

    assert downloads == []
    assert video.path is None
    assert "item 'long.mp4' (id item-long) was not downloaded" in video.error
    assert f"{free * 2 / 1e6:.1f} MB" in video.error and "free" in video.error


@pytest.mark.parametrize("size", [None, 1000])
def test_an_item_that_fits_or_has_no_recorded_size_is_downloaded(video_item, size):
    video = items.download_item(video_item(size))

    assert video.error is None and video.path is not None
    video.cleanup()


def test_the_headroom_counts_against_the_free_space(tmp_path):
    free = shutil.disk_usage(tmp_path).free
    assert items.disk_space_error("x", free - items.DISK_HEADROOM_BYTES // 2, str(tmp_path)) is not None
    assert items.disk_space_error("x", 0, str(tmp_path)) is None


def test_a_video_longer_than_an_execution_can_process_fails_by_name_before_its_download(video_item):
    from adapter.core.presets import CHILD_BUDGET_S, DEPLOY_EXECUTION_TIMEOUT_S, longest_video_seconds

    item = video_item(None)
    # a5's limit: 50 one-minute videos per 3 h budget, so one video may last 50 min x (24 h / 3 h).
    longest = longest_video_seconds(50)
    assert longest == 50 * 60 * DEPLOY_EXECUTION_TIMEOUT_S / CHILD_BUDGET_S
    item.metadata["system"]["duration"] = longest + 1
    downloads = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(type(item), "download", lambda self, **kwargs: downloads.append(self.id))
        video = items.download_item(item, max_seconds=longest)

    assert downloads == [] and video.path is None
    assert f"item 'long.mp4' (id item-long) is {longest + 1:.0f} s long" in video.error

    item.metadata["system"]["duration"] = longest - 1
    fits = items.download_item(item, max_seconds=longest)
    assert fits.error is None
    fits.cleanup()
