"""Video files as sources of tiles: which frames to take, reading them with PyAV, and finding one again.

A frame's source reads ``path#t=SECONDS`` wherever a tile's source is shown
(:func:`frame_source`, :func:`split_source`); :func:`read_frames` makes one time
segment of a video into thumbnails (a task's work), :func:`load_frame` seeks one
frame for ``render --from-originals``.
"""
from ._frames import FrameBatch, load_frame, read_frames, segment_bounds
from ._recognise import is_video
from ._tiles import load_source_thumbnail
from ._sampling import FRAME_MODES, VIDEO_EXTENSIONS, FrameSampling, frame_source, is_named_video, split_source

__all__ = ["FRAME_MODES", "VIDEO_EXTENSIONS", "FrameBatch", "FrameSampling", "frame_source", "is_named_video", "is_video", "load_frame", "load_source_thumbnail",
           "read_frames", "segment_bounds", "split_source"]
