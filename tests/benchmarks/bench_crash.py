"""SIGKILL soak: `mosaic index`, `make` and `render` killed at uniformly random moments, and what was left.

    python tests/benchmarks/bench_crash.py                       # 200 kills of index, 50 each of make and render
    python tests/benchmarks/bench_crash.py --kills 20 --make-kills 5

Each kill of index comes at a uniformly random moment of a run the length of a clean
one (start-up, creation of the cache, its first and later batches), into a new cache;
half the kills hit the client alone, half its whole process group. After each:
``mosaic info --check`` and a read of every dataset and attribute; then the same
command again, whose cache must hold exactly what a clean run's holds. make and render
are killed the same way: an output under its final name must be the whole picture,
no assignment record without a mosaic, and no work files left after the rerun.
The library is the bundled demo photos (600 real JPEGs) unless ``--library`` is given.
"""
from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[1]))  # tests/support

from support.crash import copy_library, soak_index, soak_make_render  # noqa: E402

DEMO = Path(str(files("pipeline") / "data" / "demo"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=200, help="kills of mosaic index")
    parser.add_argument("--make-kills", type=int, default=50, help="kills of mosaic make, and as many of render")
    parser.add_argument("--library", type=Path, help="photo folder (default: the bundled demo photos)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    start = time.monotonic()
    with tempfile.TemporaryDirectory(dir="/var/tmp") as folder:
        work = Path(folder)
        library = args.library or copy_library(sorted((DEMO / "library").glob("*.jpg")), work / "library")
        index = soak_index(library, work / "index", args.kills, rng)
        print(index.line("index"), flush=True)
        others = soak_make_render(DEMO / "target.jpg", work / "index" / "clean.h5", work / "outputs",
                                  args.make_kills, rng)
        for command, tally in others.items():
            print(tally.line(command), flush=True)
        for command, tally in {"index": index, **others}.items():
            for problem in tally.broken + tally.reruns_differ + tally.orphans:
                print(f"  {command}: {problem}")
    print(f"{time.monotonic() - start:.0f} s")


if __name__ == "__main__":
    main()
