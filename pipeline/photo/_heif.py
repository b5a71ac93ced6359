"""HEIF/HEIC photos (iPhones since 2017, many Android phones) through libheif (pillow-heif).

libheif applies the file's own rotation and mirroring (``irot``/``imir``) and pillow-heif
then clears the EXIF orientation, so the picture comes upright once. A phone stores a
thumbnail (about 320 px wide) beside the photo: when it is big enough for the tile it is
decoded instead, ~20x faster than the 12 MP HEVC picture.
"""
from __future__ import annotations

import io
from functools import lru_cache

from PIL import Image

__all__ = ["decode_heif", "register_plugins"]


@lru_cache(maxsize=1)
def register_plugins() -> tuple[str, ...]:
    """Teach Pillow HEIF (pillow-heif) and JPEG XL (pillow-jxl-plugin, when installed); the names it learnt."""
    learnt = []
    try:
        import pillow_heif
    except ImportError:
        pass
    else:
        pillow_heif.register_heif_opener()
        learnt.append("HEIF")
    try:
        import pillow_jxl  # noqa: F401  (registers itself)
    except ImportError:
        pass
    else:
        learnt.append("JXL")
    return tuple(learnt)


def decode_heif(data: bytes, min_side: int) -> tuple[tuple[int, int], Image.Image | None, bytes | None]:
    """The primary picture's size, its stored thumbnail if that is big enough (upright), and its ICC profile.

    The thumbnail is the smallest one whose short side reaches ``min_side`` px; None when
    there is no such thumbnail (the caller decodes the whole picture). The profile is
    None when the file has none.
    """
    import pillow_heif

    heif = pillow_heif.open_heif(io.BytesIO(data), convert_hdr_to_8bit=True)
    primary = heif[heif.primary_index]
    icc = primary.info.get("icc_profile")
    for index, _ in sorted(enumerate(primary.info.get("thumbnails", [])), key=lambda item: item[1]):
        thumb = primary.get_thumbnail(index)
        if min(thumb.size) >= min_side:
            return primary.size, thumb.to_pillow(), icc
    return primary.size, None, icc
