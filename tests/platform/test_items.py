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
