"""`mosaic index` over a library that holds videos, on a real LocalCluster: frames as tiles, kept current, pruned, rendered."""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys

import dask
import numpy as np
import pytest

from pipeline import ReuseRule, TileCache, index_library, make_mosaic, read_assignment
from pipeline.cache import forget_files
from pipeline.ingest import CacheWriter, FileEntry, VideoSegment, index_batch
from pipeline.video import FrameSampling, load_source_thumbnail, read_frames, split_source
from support.media import encode_audio, encode_video, moving_frames, rotate_display, unknown_codec

MOSAIC = [sys.executable, "-m", "pipeline"]


@pytest.fixture
def film_library(tmp_path, demo_photos):
    """Three photos, a 6 s film in segments, a portrait clip, a still shot, a cut film, a voice memo and an odd codec."""
    library = tmp_path / "library"
    library.mkdir()
    for photo in demo_photos[:3]:
        shutil.copy(photo, library / photo.name)
    encode_video(library / "film.mp4", moving_frames(150, seed=1))
    rotate_display(encode_video(library / "portrait.mov", moving_frames(50, seed=2)), 90)
    encode_video(library / "still.mkv", [np.full((96, 160, 3), 90, np.uint8)] * 75, codec="libvpx-vp9")
    whole = encode_video(tmp_path / "whole.webm", moving_frames(150, seed=3), codec="libvpx-vp9").read_bytes()
    (library / "cut.webm").write_bytes(whole[: len(whole) // 2])
    encode_audio(library / "memo.m4a")
    # A codec no FFmpeg knows, in a file of several segments: each segment finds it out, one failure is recorded.
    unknown_codec(library / "odd.avi", encode_video(tmp_path / "ok.avi", moving_frames(150, seed=4), codec="mpeg4"))
    return library


@pytest.fixture
def small_segments():
    with dask.config.set({"mosaic.index.segment-bytes": 4000}):  # the 6 s film in several tasks
        yield


def test_videos_become_frames_that_render_from_their_source(client, film_library, small_segments, tmp_path, demo_target):
    cache = tmp_path / "c.h5"
    summary = index_library(film_library, cache, tile_size=32, client=client, progress=False)
    assert (summary.videos, dict(summary.failures)) == (6, {"truncated": 1, "no-video-stream": 1, "unsupported": 1})
    assert os.path.getsize(film_library / "odd.avi") > 3 * 4000  # so it was read in several segments
    with TileCache.open(cache) as c:
        paths = c.paths()
        films = {name: [split_source(p)[1] for p in paths if os.path.basename(split_source(p)[0]) == name]
                 for name in ("film.mp4", "portrait.mov", "still.mkv", "cut.webm")}
        assert films["film.mp4"] == [0, 1, 2, 3, 4, 5]  # every:1s, whichever segment each came from
        assert films["portrait.mov"] == [0, 1] and films["still.mkv"] == [0]
        assert 1 <= len(films["cut.webm"]) < 6  # the frames before the damage
        videos = c.videos()
        assert videos[str(film_library / "still.mkv")].skipped == 2 and videos[str(film_library / "memo.m4a")].frames == 0
        assert sum(v.frames for v in videos.values()) == len(paths) - 3
        assert sorted(reason for _, reason, _ in c.failures()) == ["no-video-stream", "truncated", "unsupported"]
        assert c.record_count("failures") == 3  # each written once, not once a segment
        # Each frame's tile is the one made from its frame read again through its source.
        for row, path in enumerate(paths):
            assert np.array_equal(c.thumbnails([row])[0], load_source_thumbnail(path, 32)), path
        assert c.check() == []
    # each frame at most once, re-read from its video: the record names it as path#t=SECONDS
    out = tmp_path / "m.png"
    made = make_mosaic(demo_target, cache, out, cols=4, rows=3, tile_px=32, rule=ReuseRule(max_uses=1),
                       from_originals=True, client=client, progress=False)
    record = read_assignment(tmp_path / "m.assignment.npz")
    frames = [p for p in record.tile_paths.values() if "#t=" in p]
    assert frames and len(set(record.tiles.ravel())) == 12
    assert frames[0] in (tmp_path / "m.assignment.csv").read_text()  # the CSV names the frame
    report = open(made.report, encoding="utf-8").read()
    listed = re.findall(r"<tr><td>(\d+)</td><td>([^<]+)</td></tr>", report.split('id="most-used"')[1])
    assert len(listed) == 10 and all(uses == "1" and source in record.tile_paths.values() for uses, source in listed)
    assert sum("#t=" in source for _, source in listed) >= 7  # at most 3 of the 12 cells got one of the 3 photos


def test_frames_stay_current_change_with_their_video_and_go_with_it(client, film_library, small_segments, tmp_path):
    cache = tmp_path / "c.h5"
    index_library(film_library, cache, tile_size=32, client=client, progress=False)
    again = index_library(film_library, cache, client=client, progress=False)
    assert (again.videos, again.added, again.unchanged) == (0, 0, again.files_seen)
    # A shorter film under the same name: its frames are re-indexed, those it no longer has removed.
    encode_video(film_library / "film.mp4", moving_frames(75, seed=5))
    changed = index_library(film_library, cache, client=client, progress=False)
    assert (changed.videos, changed.replaced, changed.stale_frames) == (1, 3, 3)
    with TileCache.open(cache) as c:
        film = [p for p in c.paths() if "film.mp4" in p]
        assert [split_source(p)[1] for p in film] == [0, 1, 2]
        fresh = read_frames(str(film_library / "film.mp4"), (32, 32), FrameSampling.parse("every:1s"))
        rows = [c.paths().index(p) for p in film]
        assert np.array_equal(c.thumbnails(rows), fresh.thumbnails)
        assert c.check() == []
    (film_library / "portrait.mov").unlink()
    pruned = index_library(film_library, cache, prune=True, client=client, progress=False)
    assert pruned.pruned == 2
    with TileCache.open(cache) as c:
        assert not any("portrait.mov" in p for p in c.paths()) and str(film_library / "portrait.mov") not in c.videos()
        assert c.check() == []


def test_a_video_cut_off_between_its_segments_is_read_again(tmp_path, film_library, small_segments):
    """A kill after some of a video's segments were written: the video is not current, and the next run completes it."""
    cache_path = tmp_path / "c.h5"
    film = film_library / "film.mp4"
    stat = film.stat()
    entry = FileEntry(str(film), stat.st_size, stat.st_mtime_ns)
    with TileCache.create(cache_path, 32, 4) as cache:
        writer = CacheWriter(cache)
        writer.write(index_batch([VideoSegment(entry, 0, 3)], 32, 4, frames="every:1s"))
        assert not writer.is_current(entry) and len(cache) == 2
    with TileCache.open(cache_path, "r+") as cache:
        writer = CacheWriter(cache)
        assert not writer.is_current(entry)
        for k in range(3):
            writer.write(index_batch([VideoSegment(entry, k, 3)], 32, 4, frames="every:1s"))
        assert writer.is_current(entry) and len(cache) == 6 and cache.videos()[str(film)].frames == 6
        assert forget_files(cache, writer.known, writer.stale) == 0


def test_the_command_line_takes_frames_and_says_what_it_did(film_library, tmp_path):
    cache = tmp_path / "c.h5"
    done = subprocess.run([*MOSAIC, "index", film_library, "--cache", cache, "--frames", "every:0.5s", "--workers", "1",
                           "--quiet"], capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    assert "6 videos (" in done.stdout and "near-identical frames skipped" in done.stdout
    with TileCache.open(cache) as c:
        assert str(c.frames) == "every:0.5s" and sum("film.mp4#t=" in p for p in c.paths()) == 12
    info = subprocess.run([*MOSAIC, "info", cache, "--videos"], capture_output=True, text=True, timeout=60)
    assert info.returncode == 0 and "videos:        6: " in info.stdout and "(every:0.5s)" in info.stdout
    assert f"  12\t0\t{film_library / 'film.mp4'}" in info.stdout.splitlines() and "#t=0.000" in info.stdout
    other = subprocess.run([*MOSAIC, "index", film_library, "--cache", cache, "--frames", "all", "--workers", "1", "--quiet"],
                           capture_output=True, text=True, timeout=180)
    assert other.returncode == 2 and other.stderr.strip().splitlines() == [
        f"mosaic: error: {cache} was built with --frames every:0.5s, not all; use another cache file"]
    bad = subprocess.run([*MOSAIC, "index", film_library, "--cache", cache, "--frames", "often"], capture_output=True,
                         text=True, timeout=60)
    assert bad.returncode == 2 and "--frames" in bad.stderr.strip().splitlines()[-1] and "Traceback" not in bad.stderr
