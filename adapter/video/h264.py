"""Just enough of H.264's bitstream to tell which coded pictures no other picture needs.

The decoder of video/decoders.py reads these from each packet before decoding it: a
picture whose slices all carry ``nal_ref_idc == 0`` is never used to predict another
picture (H.264, 7.4.1), so a picture the resampling drops can be left undecoded
without changing a single pixel of the pictures that are decoded. With libx264's
default B-frames that is about half of a video's pictures.

Packets come in one of two layouts: length-prefixed NAL units (MP4, MOV, Matroska:
the "avcC" layout, whose extradata starts with 1 and gives the prefix length) or
start-code-delimited ones (MPEG-TS and raw .h264: Annex B).
"""

from __future__ import annotations

from collections.abc import Iterator

# nal_unit_type of the NAL units that carry a picture's coded slices: a non-IDR slice
# (1), slice data partition A (2, which holds the slice header) and an IDR slice (5).
_SLICE_TYPES = frozenset((1, 2, 5))


def length_prefix_size(extradata: bytes | None) -> int | None:
    """The NAL length prefix size of an avcC stream, or None for Annex B.

    Args:
        extradata: the codec context's extradata (an AVCDecoderConfigurationRecord
            for length-prefixed streams; empty or SPS/PPS with start codes otherwise).
    Returns:
        1, 2 or 4 for length-prefixed NAL units; None when packets use start codes.
    """
    if extradata and len(extradata) >= 5 and extradata[0] == 1:
        return (extradata[4] & 0x03) + 1
    return None


def _nal_header_bytes(payload: bytes, prefix_size: int | None) -> Iterator[int]:
    if prefix_size is not None:
        position = 0
        while position + prefix_size < len(payload):
            size = int.from_bytes(payload[position : position + prefix_size], "big")
            if size == 0:
                return
            yield payload[position + prefix_size]
            position += prefix_size + size
        return
    # Annex B: each NAL unit follows a 00 00 01 start code (emulation prevention keeps
    # that sequence out of NAL payloads).
    position = payload.find(b"\x00\x00\x01")
    while position != -1 and position + 3 < len(payload):
        yield payload[position + 3]
        position = payload.find(b"\x00\x00\x01", position + 3)


def slice_reference_flags(payload: bytes, prefix_size: int | None) -> list[bool]:
    """For each coded slice of one packet, whether it is marked as a reference.

    Args:
        payload: the packet's bytes.
        prefix_size: from length_prefix_size(); None for Annex B packets.
    Returns:
        One flag per slice NAL unit, in packet order (nal_ref_idc != 0); empty when the
        packet holds no slice (parameter sets or SEI only).
    """
    return [bool(header & 0x60) for header in _nal_header_bytes(payload, prefix_size) if header & 0x1F in _SLICE_TYPES]
