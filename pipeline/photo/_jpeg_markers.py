"""A JPEG's orientation and ICC profile read straight from its marker segments (no Pillow header parse)."""
from __future__ import annotations

__all__ = ["jpeg_metadata"]


def jpeg_metadata(data: bytes) -> tuple[int, bytes | None] | None:
    """A JPEG's EXIF orientation and ICC profile, read from its APP1/APP2 segments.

    Walking the segments costs a few microseconds; asking Pillow for the header costs
    ~80 us, 7 % of a reduced-scale decode. Anything unusual (XMP, a profile split over
    several segments, odd EXIF) returns None: Pillow then reads the header.
    """
    orientation, icc, exif_seen = 1, None, False
    position = 2
    while position + 4 <= len(data) and data[position] == 0xFF:
        marker = data[position + 1]
        if marker == 0xFF:  # fill byte
            position += 1
            continue
        if marker == 0xDA:  # start of scan: no more metadata
            return orientation, icc
        end = position + 2 + int.from_bytes(data[position + 2 : position + 4], "big")
        segment = data[position + 4 : end]
        if marker == 0xE1:
            if not segment.startswith(b"Exif\0\0"):
                return None  # XMP may carry an orientation too
            if not exif_seen:  # the first EXIF segment counts, as in Pillow
                exif_seen, orientation = True, _exif_orientation(segment[6:])
                if orientation is None:
                    return None
        elif marker == 0xE2 and segment.startswith(b"ICC_PROFILE\0"):
            if segment[12:14] != b"\x01\x01" or icc is not None:
                return None  # a profile in several chunks
            icc = segment[14:]
        position = end
    return None  # malformed


def _exif_orientation(tiff: bytes) -> int | None:
    """Tag 0x0112 of a TIFF structure's first IFD (1 when absent); None when unsure."""
    order = {b"II*\0": "little", b"MM\0*": "big"}.get(tiff[:4])
    if order is None:
        return None
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd : ifd + 2], order)
    entries = tiff[ifd + 2 : ifd + 2 + 12 * count]
    if ifd < 8 or len(entries) < 12 * count:
        return None
    for k in range(0, len(entries), 12):
        if int.from_bytes(entries[k : k + 2], order) == 0x0112:
            kind, n = int.from_bytes(entries[k + 2 : k + 4], order), int.from_bytes(entries[k + 4 : k + 8], order)
            if n != 1 or kind not in (3, 4):  # SHORT or LONG, stored in the entry itself
                return None
            return int.from_bytes(entries[k + 8 : k + 8 + (2 if kind == 3 else 4)], order)
    return 1
