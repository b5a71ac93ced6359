"""The benchmark's HEIC, camera RAW and video libraries, made once from the corpus's real photos, and their decoders' floors.

- HEIC: photos upscaled to 1152 x 864 (1 MP; a 12 MP encode takes 17 s here), HEVC at
  quality 80 with a 320 px thumbnail, as phones store them; 300 of them, four times over
  (hard links: the later ones are aliases, but every file is read and decoded).
- RAW: DNGs of 1600 x 1200 12-bit RGGB sensor data, no embedded preview (pidng cannot
  write one): the half-size LibRaw decode, the slow path.
- Video: H.264 (x264 ``superfast``, CABAC on as phones encode) 1280 x 720 at 25 fps,
  5-minute films panning across the photos, enough of them for the hour.
"""
from __future__ import annotations

import io
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["decode_floor", "make_heic", "make_raw", "make_videos", "media_files"]


def _photos(library: str, count: int, seed: int = 0) -> list[str]:
    paths = sorted(str(p) for p in Path(library).rglob("*.jpg"))
    rng = np.random.default_rng(seed)
    return [paths[i] for i in rng.choice(len(paths), size=min(count, len(paths)), replace=False)]


def _one_heic(args) -> None:
    from pipeline.photo import register_plugins

    source, out, thumbnails = args
    register_plugins()
    with Image.open(source) as image:
        image.convert("RGB").resize((1152, 864), Image.Resampling.BICUBIC).save(out, "HEIF", quality=80,
                                                                                thumbnails=[320] if thumbnails else [])


def _one_dng(args) -> None:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from support.media import write_dng

    source, out = args
    with Image.open(source) as image:
        write_dng(Path(out), np.asarray(image.convert("RGB").resize((1600, 1200), Image.Resampling.BICUBIC)))


def _one_film(args) -> None:
    import av

    sources, out, frames = args
    pictures = [np.asarray(Image.open(p).convert("RGB").resize((1600, 1000), Image.Resampling.BICUBIC)) for p in sources]
    with av.open(out + ".partial", "w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=25, options={"preset": "superfast", "crf": "23"})
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        stream.codec_context.thread_count = 1
        shot = 250  # 10 s a photo, panning 1 px a frame down and 1.2 across
        for i in range(frames):
            picture, k = pictures[(i // shot) % len(pictures)], i % shot
            view = np.ascontiguousarray(picture[k : k + 720, round(1.2 * k) : round(1.2 * k) + 1280])
            container.mux(stream.encode(av.VideoFrame.from_ndarray(view, format="rgb24")))
        container.mux(stream.encode())
    os.replace(out + ".partial", out)


def _make(folder: Path, jobs: list, work, suffix: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    todo = [job for job in jobs if not os.path.exists(job[1])]
    if todo:
        start = time.perf_counter()
        with ProcessPoolExecutor(os.cpu_count()) as pool:
            list(pool.map(work, todo))
        print(f"  made {len(todo)} {suffix} files in {folder} ({time.perf_counter() - start:.0f} s)", flush=True)


def make_heic(library: str, folder: Path, count: int = 300, copies: int = 4) -> None:
    """``count`` HEICs, and ``copies`` - 1 hard-linked copies of them in subfolders: each HEIC decodes in ~5 ms, so a
    run over 300 files would be over before the cluster's fixed costs (~0.2 s a run) stopped mattering.

    A folder whose name ends in ``-whole`` gets HEICs without a thumbnail (as converters write them): each is
    decoded whole.
    """
    originals = folder / "originals"
    thumbnails = not folder.name.endswith("-whole")
    jobs = [(p, str(originals / f"{k:04d}.heic"), thumbnails) for k, p in enumerate(_photos(library, count))]
    _make(originals, jobs, _one_heic, "HEIC")
    for copy in range(1, copies):
        (folder / f"copy{copy}").mkdir(exist_ok=True)
        for path in originals.iterdir():
            if not (folder / f"copy{copy}" / path.name).exists():
                os.link(path, folder / f"copy{copy}" / path.name)


def make_raw(library: str, folder: Path, count: int = 200) -> None:
    _make(folder, [(p, str(folder / f"{k:04d}.dng")) for k, p in enumerate(_photos(library, count, seed=1))], _one_dng, "DNG")


def make_videos(library: str, folder: Path, films: int = 12, minutes: float = 5.0) -> None:
    """``films`` films of ``minutes`` at 25 fps: 12 x 5 min is an hour."""
    photos = _photos(library, films * 30, seed=2)
    frames = round(minutes * 60 * 25)
    jobs = [(photos[30 * k : 30 * k + 30], str(folder / f"film{k:02d}.mp4"), frames) for k in range(films)]
    _make(folder, jobs, _one_film, "MP4")


def media_files(folder: Path) -> list[Path]:
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".partial"))
    for path in files:  # warm the page cache, as for the JPEGs
        path.read_bytes()
    return files


def decode_floor(kind: str, files: list[Path], tile: int) -> tuple[float, int]:
    """The decoder alone on ``files``: seconds, and items (photos, or video frames) decoded.

    HEIC: pillow-heif decodes what the pipeline decodes for a ``tile`` px tile (the stored
    thumbnail if big enough, else the photo). RAW: rawpy's half-size decode. Both read the
    file whole first and decode from memory, as the pipeline does (LibRaw reading a DNG
    through its own file access is 20 % slower: 66 against 80 DNGs/s here). Video: PyAV
    decodes every frame (each must be, to reach the ones kept), one thread.
    """
    start = time.perf_counter()
    items = 0
    for path in files:
        if kind == "heic":
            import pillow_heif

            image = pillow_heif.open_heif(io.BytesIO(path.read_bytes()))[0]
            thumbs = [i for i, side in enumerate(image.info.get("thumbnails", [])) if side * 3 // 4 >= tile]  # 4:3
            np.asarray(image.get_thumbnail(thumbs[0]).to_pillow() if thumbs else image)
            items += 1
        elif kind == "raw":
            import rawpy

            with rawpy.imread(io.BytesIO(path.read_bytes())) as raw:
                raw.postprocess(half_size=True, use_camera_wb=True, output_bps=8)
            items += 1
        else:
            import av

            with av.open(str(path)) as container:
                stream = container.streams.video[0]
                stream.codec_context.thread_count = 1
                items += sum(1 for _ in container.decode(stream))
    return time.perf_counter() - start, items


def median_rate(runs: list[tuple[float, int]]) -> float:
    return statistics.median(items / seconds for seconds, items in runs)
