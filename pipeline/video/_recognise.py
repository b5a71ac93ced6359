"""Which files are videos: by their first bytes (ISO base media, Matroska/WebM, AVI, MPEG), else by extension."""
from __future__ import annotations

from ..photo import photo_kind
from ._sampling import VIDEO_EXTENSIONS

__all__ = ["is_video"]


def is_video(head: bytes, extension: str = "") -> bool:
    """Whether a file whose first bytes are ``head`` (and lower-case ``extension``) is a video to take frames from.

    HEIF/AVIF stills and Canon CR3 share the ISO base media layout with MP4 and are
    told apart by their ``ftyp`` brand; they are photos.
    """
    if head[4:8] == b"ftyp":
        return photo_kind(head) is None  # the brands of stills are the photo decoders' to know
    if head.startswith(b"\x1a\x45\xdf\xa3"):  # EBML: Matroska, WebM
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head.startswith(b"\x00\x00\x01\xba") or (len(head) > 188 and head[0] == 0x47 and head[188] == 0x47):
        return True  # MPEG program stream, transport stream
    return extension in VIDEO_EXTENSIONS and not head.startswith((b"\xff\xd8\xff", b"\x89PNG"))
