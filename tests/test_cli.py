"""The `mosaic` command as a user runs it: real processes, real files, one-line errors."""
import os
import subprocess
import sys
from pathlib import Path

from PIL import Image

MOSAIC = [str(Path(sys.executable).parent / "mosaic")]


def run(*args, cwd=None, env=None):
    return subprocess.run([*MOSAIC, *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300,
                          env={**os.environ, **(env or {})})


def assert_one_line_error(result, text):
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mosaic: error:") and text in lines[0], result.stderr


def test_demo_writes_a_mosaic(tmp_path):
    result = run("demo", "--out-dir", tmp_path / "out", "--workers", "2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Dask dashboard: http://127.0.0.1:" in result.stderr
    output = tmp_path / "out" / "demo-mosaic.jpg"
    assert f"demo mosaic: {output}" in result.stdout
    with Image.open(output) as im:
        assert im.size == (64 * 24, 41 * 24)
    assert (tmp_path / "out" / "demo-mosaic.assignment.csv").exists()


def test_index_info_make(small_library, tmp_path, demo_target):
    cache = tmp_path / "photos.h5"
    indexed = run("index", small_library, "--cache", cache, "--workers", "2", "--tile-size", "32")
    assert indexed.returncode == 0, indexed.stderr
    assert "120 added" in indexed.stdout and "index: " in indexed.stderr  # progress went to stderr

    info = run("info", cache, "--failures")
    assert info.returncode == 0, info.stderr
    assert "tiles:         120 of 32x32 px" in info.stdout
    assert "failures:      2 (" in info.stdout and str(small_library) in info.stdout
    assert f"empty\t{small_library / 'album0' / 'empty.jpg'}" in info.stdout
    assert f"not-an-image\t{small_library / 'album0' / 'notes.jpg'}" in info.stdout

    made = run("make", demo_target, "--cache", cache, "--cols", "30", "--tile-px", "16", "--out", tmp_path / "m.jpg", "--quiet")
    assert made.returncode == 0, made.stderr
    assert made.stderr == ""
    with Image.open(tmp_path / "m.jpg") as im:
        assert im.size == (30 * 16, 19 * 16)


def test_bad_input_gives_one_line(tmp_path, small_library, demo_target):
    assert_one_line_error(run("index", tmp_path / "nowhere", "--cache", tmp_path / "c.h5"), "library folder not found")
    assert_one_line_error(run("make", demo_target, "--cache", tmp_path / "none.h5", "--out", tmp_path / "m.jpg"), "no tile cache")
    (tmp_path / "junk.h5").write_text("not hdf5")
    assert_one_line_error(run("info", tmp_path / "junk.h5"), "is not a tile cache (not an HDF5 file)")

    cache = tmp_path / "c.h5"
    assert run("index", small_library, "--cache", cache, "--workers", "1", "--quiet").returncode == 0
    bad_target = small_library / "album0" / "notes.jpg"
    assert_one_line_error(run("make", bad_target, "--cache", cache, "--out", tmp_path / "m.jpg", "--quiet"), "cannot read target")
    assert_one_line_error(run("make", demo_target, "--cache", cache, "--out", tmp_path / "m.gif", "--quiet"), "must end in one of")
    assert_one_line_error(run("make", demo_target, "--cache", cache, "--out", demo_target, "--quiet"), "refusing to write")
    assert_one_line_error(
        run("make", demo_target, "--cache", cache, "--out", tmp_path / "m.jpg", "--max-uses", "1", "--quiet"),
        "use --max-uses 35",  # 80x52 = 4160 cells from 120 tiles: ceil(34.7): the library's names, as flags
    )
    assert_one_line_error(
        run("make", demo_target, "--cache", cache, "--out", tmp_path / "m.jpg", "--unique", "--max-uses", "3", "--quiet"),
        "--unique means --max-uses 1")
    assert_one_line_error(
        run("make", demo_target, "--cache", cache, "--out", tmp_path / "m.jpg", "--tile-px", "2000", "--quiet"),
        "over JPEG's 65500 px limit; write .tif (BigTIFF pyramid), .dzi (Deep Zoom) or .png instead, or use a smaller "
        "--tile-px")
    unreachable = run("index", small_library, "--cache", cache, "--scheduler", "tcp://127.0.0.1:9", "--quiet",
                      env={"DASK_MOSAIC__CLUSTER__CONNECT_TIMEOUT": "2s"})
    assert_one_line_error(unreachable, "cannot reach the Dask scheduler at tcp://127.0.0.1:9")


def test_python_dash_m_and_help():
    result = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and all(c in result.stdout for c in ("demo", "index", "make", "info"))


def test_a_reader_that_goes_away_ends_the_command_quietly(small_library, tmp_path):
    # `mosaic info CACHE | head -1`: the reader closes the pipe before mosaic writes.
    cache = tmp_path / "c.h5"
    subprocess.run([*MOSAIC, "index", small_library / "album1", "--cache", cache, "--workers", "1", "--quiet"],
                   check=True, capture_output=True, timeout=180)
    read, write = os.pipe()
    os.close(read)  # no reader at all: the first write fails
    done = subprocess.run([*MOSAIC, "info", cache], stdout=write, stderr=subprocess.PIPE, text=True, timeout=60)
    os.close(write)
    assert done.returncode == 141 and done.stderr == ""
