"""Frame preprocessing: the one function that prediction and fine-tuning both use.

BGR uint8 frame (as decoded) -> RGB float32 in [0, 1], shorter side resized to imgz,
cropped to imgz x imgz. Prediction crops the centre; training may move the crop window
(the same window for every frame of a clip, so motion is left intact).

The readers can do the resize while they convert the decoded picture (VideoReader and
LiveSource with shorter_side=imgz: FFmpeg's scaler resizes and converts YUV to BGR in one
pass, so the full-size BGR frame is never made). preprocess_frame takes either: a frame
already at shorter_side_size is only cropped, so predict and training get the same
geometry whichever reader resized.
"""

from __future__ import annotations

import cv2
import numpy as np

CENTRE = (0.5, 0.5)


def crop_positions(height: int, width: int, crops: int) -> list[tuple[float, float]]:
    """Where the square windows of multi-view testing sit in a frame of this size.

    Args:
        height, width: the frame's size (any scale: only which side is longer matters).
        crops: 1 (the centre) or 3 (start, centre and end of the long side: left, centre,
            right in a wide frame; top, centre, bottom in a tall one).
    Returns:
        The (y, x) crop positions preprocess_frame takes, in that order.
    """
    if crops == 1:
        return [CENTRE]
    if crops != 3:
        raise ValueError(f"crops must be 1 or 3, got {crops!r}")
    if width >= height:
        return [(0.5, 0.0), CENTRE, (0.5, 1.0)]
    return [(0.0, 0.5), CENTRE, (1.0, 0.5)]


def preprocess_views(image_bgr: np.ndarray, imgz: int, crops: int) -> np.ndarray:
    """The model inputs of one decoded frame seen through `crops` square windows (crop_positions).

    The frame is resized once; each view equals preprocess_frame at its position.

    Args:
        image_bgr: the H x W x 3 BGR frame.
        imgz: the model's frame size.
        crops: 1 or 3.
    Returns:
        crops x imgz x imgz x 3 float32 RGB in [0, 1].
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 BGR frame, got shape {image_bgr.shape}")
    resized = resize_shorter_side(image_bgr, imgz)
    positions = crop_positions(*resized.shape[:2], crops)
    return np.stack([preprocess_frame(resized, imgz, position) for position in positions])


def preprocess_frame(image_bgr: np.ndarray, imgz: int, crop_position: tuple[float, float] = CENTRE) -> np.ndarray:
    """Return the model input for one decoded frame: imgz x imgz x 3 float32 RGB in [0, 1].

    crop_position is where the square window sits along (y, x) of the resized frame:
    0 = top/left edge, 0.5 = centre, 1 = bottom/right edge.
    """
    if image_bgr.ndim != 3 or image_bgr.shape[2] != 3:
        raise ValueError(f"expected an H x W x 3 BGR frame, got shape {image_bgr.shape}")
    resized = resize_shorter_side(image_bgr, imgz)
    resized_h, resized_w = resized.shape[:2]
    top = round((resized_h - imgz) * crop_position[0])
    left = round((resized_w - imgz) * crop_position[1])
    crop = resized[top : top + imgz, left : left + imgz]
    rgb = cv2.cvtColor(crop, cv2.COLOR_BGR2RGB)
    return rgb.astype(np.float32) * np.float32(1.0 / 255.0)


def resize_shorter_side(image: np.ndarray, imgz: int) -> np.ndarray:
    """The resize step of preprocess_frame alone: shorter side to imgz, aspect ratio kept.

    A frame already at that size comes back unchanged, so frames resized once (by a reader
    given shorter_side, or in the training frame cache) and cropped later give exactly
    preprocess_frame's output for them.
    """
    height, width = image.shape[:2]
    size = shorter_side_size(width, height, imgz)
    if size == (width, height):
        return image
    # INTER_AREA averages when shrinking (no aliasing of fine texture); linear when enlarging.
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if imgz < min(height, width) else cv2.INTER_LINEAR)


def shorter_side_size(width: int, height: int, imgz: int) -> tuple[int, int]:
    """The size a width x height frame is resized to: shorter side imgz, aspect ratio kept.

    Args:
        width: the frame's width as displayed.
        height: the frame's height as displayed.
        imgz: the model's input size.
    Returns:
        (width, height) of the resized frame; neither is below imgz.
    """
    scale = imgz / min(height, width)
    return max(imgz, round(width * scale)), max(imgz, round(height * scale))
