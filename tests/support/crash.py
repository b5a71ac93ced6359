"""SIGKILLs at random moments of `mosaic index`, `make` and `render`, and what each left behind.

Shared by ``tests/benchmarks/bench_crash.py`` (hundreds of kills) and the suite's short
soak. Every run is a real `mosaic` process with its own LocalCluster; a kill hits the
client alone (its workers are left to notice) or the whole process group.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np
from PIL import Image

BIN = Path(sys.executable).parent
CLUSTER = ["--workers", "2", "--threads", "1", "--dashboard-address", ":0", "--quiet"]


@dataclass
class SoakTally:
    """What the kills of one command left."""

    kills: int = 0
    broken: list[str] = field(default_factory=list)  # caches or outputs that did not read back
    reruns_equal: int = 0
    reruns_differ: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)  # work files or processes left after the rerun
    phases: Counter = field(default_factory=Counter)  # what was on disk when the kill came

    def after_rerun(self, k: int, again: subprocess.CompletedProcess, equal: bool, work: Path, session: int) -> None:
        """Count the rerun after kill ``k`` and what the killed run left; end whatever of it still runs."""
        if equal:
            self.reruns_equal += 1
        else:
            self.reruns_differ.append(f"kill {k}: rerun exit {again.returncode}: {again.stderr.strip()[-300:]}")
        self.orphans += [f"kill {k}: {name}" for name in _leftovers(work)]
        self.orphans += [f"kill {k}: process {pid}" for pid in _survivors(session)]
        _end_session(session)

    def line(self, command: str) -> str:
        return (f"{command:7s} kills {self.kills:4d}   broken {len(self.broken):3d} (goal 0)   "
                f"reruns equal to a clean run {self.reruns_equal:4d}/{self.kills} (goal all)   "
                f"orphans {len(self.orphans):3d} (goal 0)   on disk at the kill: "
                + ", ".join(f"{n} {phase}" for phase, n in sorted(self.phases.items())))


def mosaic(*args, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([BIN / "mosaic", *map(str, args)], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"mosaic {' '.join(map(str, args))} failed: {done.stderr}")
    return done


def every_column(cache: Path) -> dict[str, bytes]:
    """Every dataset and attribute of a cache, read in full (raises on any unreadable byte)."""
    values: dict[str, bytes] = {}
    with h5py.File(cache, "r") as file:
        def read(name, node):
            for key, value in node.attrs.items():
                values[f"{name}@{key}"] = np.asarray(value).tobytes()
            if isinstance(node, h5py.Dataset):
                values[name] = node[()].tobytes()
        read("/", file)
        file.visititems(read)
    return values


def cache_content(cache: Path) -> dict:
    """What a cache holds, independent of row order and of uncommitted tails."""
    from pipeline import TileCache

    with TileCache.open(cache) as opened:
        paths = opened.paths()
        features = opened.features()
        thumbs = opened.thumbnails(np.arange(len(paths))) if paths else np.empty(0)
        tiles = {p: (*(f[i].tobytes() for f in features), thumbs[i].tobytes()) for i, p in enumerate(paths)}
        return {"tiles": tiles, "aliases": sorted(opened.aliases()), "failures": sorted(opened.failures()),
                "roots": opened.roots}


def _kill(process: subprocess.Popen, whole_group: bool) -> None:
    if whole_group:
        os.killpg(process.pid, signal.SIGKILL)
    else:
        os.kill(process.pid, signal.SIGKILL)
    process.wait()


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".partial"))


# A worker process spawned just before its client was killed is still importing; it exits on
# its own once distributed's watch on its parent starts: 1.6-3.0 s after the kill, seen with
# the machine's other core busy. A process still there after this long was left behind.
_EXIT_GRACE = 30.0


def _session_processes(session: int) -> list[str]:
    alive = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) != session:
                    continue
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":  # a zombie has exited
                    continue
                command = (entry / "cmdline").read_bytes().replace(bytes(1), b" ").decode()[:80].strip()
                alive.append(f"{entry.name} ({command})")
            except OSError:  # gone meanwhile, or not ours to read
                pass
    return alive


def _survivors(session: int) -> list[str]:
    """Processes of a killed run's session (its workers) still alive ``_EXIT_GRACE`` seconds after the rerun."""
    deadline = time.monotonic() + _EXIT_GRACE
    while (alive := _session_processes(session)) and time.monotonic() < deadline:
        time.sleep(0.2)
    return alive


def _end_session(session: int) -> None:
    try:
        os.killpg(session, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _killed_run(args: list, seconds: float, rng: random.Random) -> tuple[subprocess.Popen, bool]:
    process = subprocess.Popen([BIN / "mosaic", *map(str, args)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    time.sleep(rng.uniform(0, seconds))
    whole_group = rng.random() < 0.5
    if process.poll() is None:
        _kill(process, whole_group)
    else:
        process.wait()
    return process, whole_group


def soak_index(library: Path, work: Path, kills: int, rng: random.Random, batch_size: int = 16) -> SoakTally:
    """Kill `mosaic index` into a new cache ``kills`` times; after each, read the cache and rerun."""
    work.mkdir(parents=True, exist_ok=True)
    index = ["index", library, "--batch-size", batch_size, *CLUSTER]
    start = time.monotonic()
    mosaic(*index[:2], "--cache", work / "clean.h5", *index[2:])
    seconds = time.monotonic() - start
    clean = cache_content(work / "clean.h5")
    tally = SoakTally()
    for k in range(kills):
        cache = work / "killed.h5"
        cache.unlink(missing_ok=True)
        process, _ = _killed_run([*index[:2], "--cache", cache, *index[2:]], seconds, rng)
        tally.kills += 1
        if not cache.exists():
            tally.phases["no cache"] += 1
        else:
            verdict = mosaic("info", "--check", cache, check=False)
            try:
                every_column(cache)
            except Exception as exc:
                tally.broken.append(f"kill {k}: {type(exc).__name__}: {exc}")
            if verdict.returncode != 0:
                tally.broken.append(f"kill {k}: {verdict.stdout.strip()}")
            else:
                held = len(cache_content(cache)["tiles"])
                tally.phases["an empty cache" if held == 0 else "all tiles" if held == len(clean["tiles"])
                             else "part of the tiles"] += 1
        again = mosaic(*index[:2], "--cache", cache, *index[2:], check=False)
        tally.after_rerun(k, again, again.returncode == 0 and cache_content(cache) == clean, work, process.pid)
    return tally


def _image_pixels(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def soak_make_render(target: Path, cache: Path, work: Path, kills: int, rng: random.Random) -> dict[str, SoakTally]:
    """Kill `mosaic make` and `mosaic render` ``kills`` times each; check their outputs are whole or absent."""
    work.mkdir(parents=True, exist_ok=True)
    grid = ["--cols", "40", "--tile-px", "16"]
    tallies = {}
    start = time.monotonic()
    mosaic("make", target, "--cache", cache, "--out", work / "clean.png", *grid, *CLUSTER)
    make_seconds = time.monotonic() - start
    start = time.monotonic()
    mosaic("render", work / "clean.assignment.npz", "--cache", cache, "--out", work / "clean-render.png",
           "--tile-px", "16", "--quiet")
    render_seconds = time.monotonic() - start
    clean = _image_pixels(work / "clean.png")
    sidecars = (".assignment.csv", ".assignment.npz", ".match.json")
    runs = {
        "make": (["make", target, "--cache", cache, "--out", work / "out.png", *grid, *CLUSTER], make_seconds),
        "render": (["render", work / "clean.assignment.npz", "--cache", cache, "--out", work / "out.png",
                    "--tile-px", "16", "--quiet"], render_seconds),
    }
    for command, (args, seconds) in runs.items():
        tally = tallies[command] = SoakTally()
        for k in range(kills):
            for suffix in (".png", *sidecars):
                (work / f"out{suffix}").unlink(missing_ok=True)
            process, _ = _killed_run(args, seconds, rng)
            tally.kills += 1
            out = work / "out.png"
            written = [s for s in sidecars if (work / f"out{s}").exists()]
            tally.phases["an output" if out.exists() else "no output"] += 1
            if out.exists():
                try:
                    if not np.array_equal(_image_pixels(out), clean):
                        tally.broken.append(f"kill {k}: out.png differs from a clean run's")
                except Exception as exc:
                    tally.broken.append(f"kill {k}: out.png unreadable: {exc}")
            elif command == "make" and written:
                tally.broken.append(f"kill {k}: {written} written without a mosaic")
            again = mosaic(*args, check=False)
            tally.after_rerun(k, again, again.returncode == 0 and np.array_equal(_image_pixels(out), clean), work,
                              process.pid)
    return tallies


def copy_library(photos: list[Path], root: Path) -> Path:
    """A library folder of ``photos`` (copied, so a run owns its files)."""
    root.mkdir(parents=True, exist_ok=True)
    for photo in photos:
        shutil.copy(photo, root / photo.name)
    return root
