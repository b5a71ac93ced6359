"""Video files as sources of tiles: frames chosen, decoded and found again, in the codecs and containers phones and cameras write."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.photo import thumbnail_of
from pipeline.video import FrameSampling, frame_source, is_video, load_frame, read_frames, split_source
from support.media import encode_audio, encode_video, moving_frames, rotate_display, unknown_codec

SHAPE = (32, 48)


def _difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


@pytest.fixture(scope="module")
def frames() -> list[np.ndarray]:
    return list(moving_frames(100))  # 4 s at 25 fps


@pytest.fixture(scope="module")
def clip(tmp_path_factory, frames):
    return encode_video(tmp_path_factory.mktemp("video") / "clip.mp4", frames)


@pytest.mark.parametrize("rule, times", [
    ("every:1s", [0, 1, 2, 3]),
    ("every:1.5s", [0, 1.52, 3]),  # no frame at 1.5 s: the first one after it
    ("every:40", [0, 1.6, 3.2]),
    ("all", [k / 25 for k in range(100)]),
])
def test_the_sampling_keeps_the_frames_it_names(clip, frames, rule, times):
    got = read_frames(str(clip), SHAPE, FrameSampling.parse(rule), near_identical=0)
    assert got.failure is None and got.skipped == 0
    assert got.seconds == pytest.approx(times)
    # Each kept frame is the one at its time: closer to that frame's own thumbnail than to its neighbours'.
    for t, tile in zip(got.seconds, got.thumbnails):
        k = round(t * 25)
        own = _difference(tile, thumbnail_of(frames[k], SHAPE))
        assert own < 8
        for other in (k - 1, k + 1):
            if 0 <= other < len(frames):
                assert own < _difference(tile, thumbnail_of(frames[other], SHAPE))


def test_segments_together_give_the_whole_video(clip):
    whole = read_frames(str(clip), SHAPE, FrameSampling.parse("every:5"), near_identical=0)
    for segments in (2, 3, 7):
        parts = [read_frames(str(clip), SHAPE, FrameSampling.parse("every:5"), k, segments, near_identical=0)
                 for k in range(segments)]
        assert [t for p in parts for t in p.seconds] == whole.seconds
        assert np.array_equal(np.concatenate([p.thumbnails for p in parts]), whole.thumbnails)
        assert all(p.failure is None for p in parts)


def test_scenes_keep_a_frame_per_change_and_near_identical_frames_are_counted(tmp_path):
    red, green, blue = (np.full((96, 160, 3), c, np.uint8) for c in ((200, 30, 30), (30, 200, 30), (30, 30, 200)))
    video = encode_video(tmp_path / "scenes.mkv", [red] * 30 + [green] * 30 + [blue] * 30, codec="libvpx-vp9")
    scenes = read_frames(str(video), SHAPE, FrameSampling.parse("scenes"))
    assert scenes.seconds == pytest.approx([0, 1.2, 2.4], abs=0.05)
    assert np.allclose([t[16, 24] for t in scenes.thumbnails], [(200, 30, 30), (30, 200, 30), (30, 30, 200)], atol=12)
    every = read_frames(str(video), SHAPE, FrameSampling.parse("every:10"))
    assert len(every.seconds) == 3 and every.skipped == 6  # 9 chosen, 6 like the one before
    assert read_frames(str(video), SHAPE, FrameSampling.parse("every:10"), near_identical=0).skipped == 0


@pytest.mark.parametrize("name, codec, container", [
    ("h264.mp4", "libx264", None), ("h264.mov", "libx264", None), ("mpeg4.m4v", "mpeg4", "mp4"),
    ("vp9.mkv", "libvpx-vp9", None), ("vp9.webm", "libvpx-vp9", None), ("mpeg4.avi", "mpeg4", None),
    ("av1.mkv", "libsvtav1", None),
])
def test_codecs_and_containers_give_the_same_frames(tmp_path, frames, name, codec, container):
    video = encode_video(tmp_path / name, frames[:50], codec=codec, container_format=container)
    assert is_video(video.read_bytes()[:4096])
    got = read_frames(str(video), SHAPE, FrameSampling.parse("every:0.5s"), near_identical=0)
    assert got.failure is None and got.seconds == pytest.approx([0, 0.52, 1.0, 1.52], abs=0.01)
    for t, tile in zip(got.seconds, got.thumbnails):
        assert _difference(tile, thumbnail_of(frames[round(t * 25)], SHAPE)) < 12


def test_a_phone_video_held_upright_gives_upright_frames(tmp_path, frames):
    video = rotate_display(encode_video(tmp_path / "portrait.mp4", frames[:25]), 90)
    clockwise, anticlockwise = (np.ascontiguousarray(np.rot90(frames[0], k)) for k in (-1, 1))  # players turn it clockwise
    shown = load_frame(str(video), 0.0, 96)
    assert shown.shape == (160, 96, 3)  # 160 x 96 coded, 96 x 160 shown
    assert _difference(shown, clockwise) < 6 and _difference(shown, anticlockwise) > 10
    got = read_frames(str(video), (48, 32), FrameSampling.parse("every:1s"))
    assert _difference(got.thumbnails[0], thumbnail_of(clockwise, (48, 32))) < 6
    assert _difference(got.thumbnails[0], thumbnail_of(anticlockwise, (48, 32))) > 10


def test_a_truncated_video_keeps_the_frames_before_the_damage(tmp_path, frames):
    whole = encode_video(tmp_path / "whole.mkv", frames, codec="libvpx-vp9")
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    got = read_frames(str(cut), SHAPE, FrameSampling.parse("every:0.5s"), near_identical=0)
    assert got.failure is not None and got.failure[0] == "truncated" and "of a 4.00 s video" in got.failure[1]
    assert 1 <= len(got.seconds) < 8
    assert got.seconds == read_frames(str(whole), SHAPE, FrameSampling.parse("every:0.5s"), near_identical=0).seconds[: len(got.seconds)]


def test_files_that_are_no_readable_video_fail_with_a_reason(tmp_path, frames):
    avi = encode_video(tmp_path / "ok.avi", frames[:10], codec="mpeg4")
    cases = {
        "no-video-stream": encode_audio(tmp_path / "memo.m4a"),
        "unsupported": unknown_codec(tmp_path / "odd.avi", avi),
        "corrupt": tmp_path / "noise.mp4",
        "missing": tmp_path / "gone.mp4",
    }
    cases["corrupt"].write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    for reason, path in cases.items():
        got = read_frames(str(path), SHAPE, FrameSampling.parse("every:1s"))
        assert got.failure is not None and got.failure[0] == reason, (path.name, got.failure)
        assert got.seconds == [] and got.thumbnails.shape == (0, *SHAPE, 3) and "\n" not in got.failure[1]


def test_frame_sources_name_a_video_and_a_time():
    assert frame_source("/v/a.mp4", 12.4804) == "/v/a.mp4#t=12.480"
    assert split_source("/v/a.mp4#t=12.480") == ("/v/a.mp4", 12.48)
    assert split_source("/p/party#t=1.5.jpg") == ("/p/party#t=1.5.jpg", None)  # a photo whose name holds #t=
    assert split_source("/p/x.jpg#t=2.0") == ("/p/x.jpg#t=2.0", None)  # #t= after a photo's extension: a name
    assert [str(FrameSampling.parse(r)) for r in ("every:1s", "EVERY:0.5s", "every:25", "scenes", "all")] == \
        ["every:1s", "every:0.5s", "every:25", "scenes", "all"]
    for bad in ("every:0s", "every:1.5", "every:", "sometimes", "every:-1s"):
        with pytest.raises(ValueError, match="--frames must be"):
            FrameSampling.parse(bad)


def test_the_pixel_limit_and_the_minimum_size_apply_to_frames(clip):
    assert read_frames(str(clip), SHAPE, FrameSampling.parse("every:1s"), max_pixels=10_000).failure[0] == "too-large"
    assert read_frames(str(clip), SHAPE, FrameSampling.parse("every:1s"), min_size=100).failure[0] == "too-small"
    assert read_frames(str(clip), SHAPE, FrameSampling.parse("every:1s"), max_pixels=20_000, min_size=96).failure is None
