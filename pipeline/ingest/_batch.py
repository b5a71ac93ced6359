"""One batch of files made into tiles: read, hash, decode, thumbnail and describe (runs inside a Dask task).

A batch is many photos, or one time segment of one video (:class:`VideoSegment`),
whose kept frames become tiles named ``path#t=SECONDS``.
"""
from __future__ import annotations

import os
import socket
from typing import NamedTuple, Sequence

import numpy as np
import xxhash
from distributed import get_worker

from ..config import or_config
from ..features import compute_features, pixel_shape
from ..photo import PHOTO_EXTENSIONS, SIGNATURE_BYTES, PhotoError, decode_thumbnail, photo_kind, read_photo
from ..video import FrameSampling, frame_source, is_video, read_frames
from ._scan import FileEntry
from ._stderr import caught_stderr
from ._writer import IndexedBatch, VideoPart

__all__ = ["VideoSegment", "index_batch"]


class VideoSegment(NamedTuple):
    """Time segment ``segment`` of ``segments`` equal ones of a video: one task's work."""

    entry: FileEntry
    segment: int
    segments: int

_VISIBILITY_REASONS = frozenset({"missing", "unreadable"})


def _this_process() -> str:
    try:
        return f"worker {get_worker().address}"
    except ValueError:  # not inside a Dask worker
        return f"host {socket.gethostname()}"


def _summarised(text: str, most: int = 3) -> str:
    """A decoder's messages as one line: the first few, and how many more (a bad strip repeats one per scan line)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    more = f"; and {len(lines) - most} more" if len(lines) > most else ""
    return "; ".join(lines[:most]) + more


def _head(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(SIGNATURE_BYTES)
    except OSError:
        return b""


def _kind_of(path: str) -> str | None:
    """``"photo"``, ``"video"`` or None, from the extension when it names a photo, else from the first bytes."""
    extension = os.path.splitext(path)[1].lower()
    if extension in PHOTO_EXTENSIONS:
        return "photo"  # its bytes are read whole next, and looked at again there
    head = _head(path)
    if photo_kind(head, extension) is not None:
        return "photo"
    return "video" if is_video(head, extension) else None


def index_batch(files: Sequence[FileEntry | VideoSegment], thumbnail: int | tuple[int, int], grid: int, *,
                min_size: int | None = None, max_pixels: int | None = None, crop: str = "centre",
                frames: str | FrameSampling | None = None, near_identical: float | None = None,
                scene_change: float | None = None) -> IndexedBatch:
    """Make tiles and features of a batch of files (runs inside a Dask task).

    Each photo is read once; its bytes are hashed (xxh3-128, to find copies of one photo
    under several paths) and decoded from memory. A video (a :class:`VideoSegment`, or a
    file whose bytes say video) gives the tiles of its kept frames, each hashed by its
    thumbnail, so that the same frame in two copies of a film is one tile.

    Parameters
    ----------
    files : sequence of FileEntry or VideoSegment
        Paths with their size and mtime; or one segment of a video.
    thumbnail : int or (int, int)
        The thumbnails' ``(height, width)`` in pixels (an int: square).
    grid : int
        The feature grid.
    min_size : int, optional
        Photos (and video frames) whose shorter side is below this many pixels are
        failures (``too-small``); default ``mosaic.index.min-size``.
    max_pixels : int, optional
        Decodes larger than this are failures (``too-large``); default
        ``mosaic.index.max-pixels``.
    crop : {"centre", "smart"}
        Where each photo's window is cut (:func:`pipeline.photo.decode_thumbnail`).
    frames : str or FrameSampling, optional
        Which frames of a video become tiles (default ``mosaic.index.frames``).
    near_identical, scene_change : float, optional
        A video frame's difference from the last kept (mean absolute, 8-bit levels) below
        which it is skipped, and above which ``scenes`` keeps it (defaults: the
        ``mosaic.index`` settings; :func:`pipeline.video.read_frames`).

    Returns
    -------
    IndexedBatch
        Every file is a tile, a failure with its reason, or counted as not an image;
        each video segment is a :class:`VideoPart` and its frames tiles.
    """
    min_size = or_config(min_size, "index.min-size")
    max_pixels = or_config(max_pixels, "index.max-pixels")
    shape = pixel_shape(thumbnail)
    photos = _Photos(len(files), shape, min_size, max_pixels, crop)
    video_options = {"min_size": min_size, "max_pixels": max_pixels, "crop": crop,
                     "near_identical": float(or_config(near_identical, "index.near-identical")),
                     "scene_change": float(or_config(scene_change, "index.scene-change"))}
    videos = _Videos(shape, FrameSampling.parse(or_config(frames, "index.frames")), video_options)
    for item in files:
        if isinstance(item, VideoSegment):
            videos.add(item)
            continue
        kind = _kind_of(item.path)
        if kind is None:
            photos.ignored += 1
        elif kind == "video" or not photos.add(item):
            videos.add(VideoSegment(item, 0, 1))
    tiles = photos.tiles + videos.tiles
    thumbnails = photos.thumbnails[: len(photos.tiles)]
    if videos.tiles:
        thumbnails = np.concatenate([thumbnails, *videos.thumbnails])
    features = compute_features(thumbnails, grid) if tiles else None
    hashes = np.frombuffer(b"".join(photos.digests + videos.digests), dtype="<u8").reshape(-1, 2).astype(np.uint64)
    return IndexedBatch(tiles, thumbnails, features, hashes, photos.failures + videos.failures, photos.ignored,
                        photos.messages + videos.messages, videos.parts)


class _Photos:
    """The photos of a batch, their thumbnails filled in place (no stacking copy)."""

    def __init__(self, count: int, shape: tuple[int, int], min_size: int, max_pixels: int, crop: str):
        self.options = {"max_pixels": max_pixels, "min_size": min_size, "crop": crop}
        self.shape = shape
        self.thumbnails = np.empty((count, *shape, 3), np.uint8)
        self.tiles, self.digests, self.failures, self.messages = [], [], [], []
        self.ignored = 0

    def add(self, entry: FileEntry) -> bool:
        """Make one photo a tile or a failure; False when its bytes are a video's instead."""
        failure = None
        with caught_stderr() as caught:
            try:
                data = read_photo(entry.path)
                head = data[:SIGNATURE_BYTES]
                if photo_kind(head) is None and is_video(head):
                    return False
                self.thumbnails[len(self.tiles)] = decode_thumbnail(data, self.shape, name=entry.path, **self.options)
                self.digests.append(xxhash.xxh3_128_digest(data))
                self.tiles.append(entry)
            except PhotoError as exc:
                failure = (entry, exc.reason, _located(exc.reason, exc.detail))
            except Exception as exc:  # one odd file must never end a run over millions
                failure = (entry, "error", f"{type(exc).__name__}: {exc}")
        _note(caught, entry, failure, self.failures, self.messages)
        return True


class _Videos:
    """The video segments of a batch: their kept frames as tiles, and a part record each."""

    def __init__(self, shape: tuple[int, int], sampling: FrameSampling, options: dict):
        self.shape, self.sampling, self.options = shape, sampling, options
        self.tiles, self.thumbnails, self.digests, self.failures, self.messages, self.parts = [], [], [], [], [], []

    def add(self, item: VideoSegment) -> None:
        entry = item.entry
        failure = None
        with caught_stderr() as caught:
            try:
                got = read_frames(entry.path, self.shape, self.sampling, item.segment, item.segments, **self.options)
            except Exception as exc:  # one odd file must never end a run over millions
                failure = (entry, "error", f"{type(exc).__name__}: {exc}")
                got = None
        if got is not None:
            self.tiles += [FileEntry(frame_source(entry.path, t), entry.size, entry.mtime_ns) for t in got.seconds]
            self.thumbnails.append(got.thumbnails)
            self.digests += [xxhash.xxh3_128_digest(t.tobytes()) for t in got.thumbnails]
            if got.failure is not None:
                failure = (entry, got.failure[0], _located(*got.failure))
        self.parts.append(VideoPart(entry, item.segment, item.segments, len(got.seconds) if got else 0,
                                    got.skipped if got else 0))
        _note(caught, entry, failure, self.failures, self.messages)


def _located(reason: str, detail: str) -> str:
    if reason in _VISIBILITY_REASONS:  # on a cluster: which machine could not see it
        return f"on {_this_process()}: {detail}"
    return detail


def _note(caught, entry: FileEntry, failure, failures: list, messages: list) -> None:
    """File a failure (with what the decoder printed) and keep a decoder's messages about a file that worked."""
    said = _summarised(caught.text)
    if failure is not None:
        if said and not caught.shared:
            failure = (*failure[:2], f"{failure[2]} (decoder: {said})")
        failures.append(failure)
    if said and (failure is None or caught.shared):
        messages.append(("" if caught.shared else entry.path, said))
