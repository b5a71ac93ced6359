"""Which frames of a video become tiles (``--frames``), and how a frame's source is written (``path#t=SECONDS``)."""
from __future__ import annotations

import math
import os
import re
from typing import NamedTuple

__all__ = ["FRAME_MODES", "FrameSampling", "VIDEO_EXTENSIONS", "frame_source", "is_named_video", "split_source"]

VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".webm", ".avi", ".3gp", ".mts", ".m2ts", ".mpg", ".mpeg",
                              ".wmv", ".flv", ".ogv"})
FRAME_MODES = ("every:1s", "every:Ns", "every:N", "scenes", "all")
_EVERY = re.compile(r"every:(\d+(?:\.\d+)?)(s?)\Z")
_SOURCE = re.compile(r"(.+)#t=(\d+(?:\.\d+)?)\Z", re.S)


class FrameSampling(NamedTuple):
    """Which frames to keep: every ``step`` seconds or frames, each change of scene, or all.

    ``mode`` is ``"seconds"``, ``"frames"``, ``"scenes"`` or ``"all"``; ``step`` the
    interval of the first two (0 otherwise).
    """

    mode: str
    step: float = 0.0

    @classmethod
    def parse(cls, text: "str | FrameSampling") -> "FrameSampling":
        """``every:1s``, ``every:0.5s``, ``every:25`` (frames), ``scenes`` or ``all``.

        Raises
        ------
        ValueError
            For anything else, with a message naming the forms.
        """
        if isinstance(text, FrameSampling):
            return text
        value = str(text).strip().lower()
        if value in ("scenes", "all"):
            return cls(value)
        match = _EVERY.match(value)
        if match and float(match[1]) > 0 and (match[2] or float(match[1]).is_integer()):
            return cls("seconds" if match[2] else "frames", float(match[1]))
        raise ValueError(f"--frames must be every:Ns (seconds, e.g. every:1s or every:0.5s), every:N (frames), scenes or all, got {text!r}")

    def interval(self, frame_rate: float) -> float | None:
        """Seconds between kept frames at ``frame_rate`` fps; None for ``scenes`` and ``all``."""
        if self.mode == "seconds":
            return self.step
        if self.mode == "frames":
            return self.step / frame_rate
        return None

    def __str__(self) -> str:
        if self.mode == "seconds":
            return f"every:{self.step:g}s"
        if self.mode == "frames":
            return f"every:{int(self.step)}"
        return self.mode


def frame_source(path: str, seconds: float) -> str:
    """How a frame is named wherever a tile's source is shown: ``path#t=SECONDS`` (milliseconds)."""
    return f"{path}#t={math.floor(seconds * 1000 + 0.5) / 1000:.3f}"


def split_source(source: str) -> tuple[str, float | None]:
    """A tile's source as ``(file, seconds)``: seconds is None for a photo.

    Only a ``#t=`` after a video's extension makes a frame, so a photo whose name
    happens to hold ``#t=`` is still a photo.
    """
    match = _SOURCE.match(source)
    if match and os.path.splitext(match[1])[1].lower() in VIDEO_EXTENSIONS:
        return match[1], float(match[2])
    return source, None


def is_named_video(path: str) -> bool:
    """Whether a path's extension is a video's (the client cuts such files into segments before reading them)."""
    return os.path.splitext(path)[1].lower() in VIDEO_EXTENSIONS
