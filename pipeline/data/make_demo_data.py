"""Regenerate the bundled demo photos from the shared benchmark corpus (provenance, not runtime code).

    python pipeline/data/make_demo_data.py /var/tmp/mosaic-corpus

Keeps only pool photos whose source has a permissive licence (public domain, CC0, CC-BY*,
BSD, Apache, MIT), at most PER_SOURCE per source photo, downscaled so the short side is
SHORT_SIDE px, and writes CREDITS.md with every source, licence and credit.
"""
import csv
import random
import sys
from collections import defaultdict
from pathlib import Path

from PIL import Image, ImageOps

PER_SOURCE = 4
SHORT_SIDE = 96
QUALITY = 80
PERMISSIVE = ("public-domain", "CC0", "CC-BY", "BSD", "Apache", "MIT", "no known copyright")
TARGET = "02_cat_portrait.jpg"


def main(corpus: Path) -> None:
    out = Path(__file__).parent / "demo"
    sources = {}
    with open(corpus / "pool_src/MANIFEST.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["licence"].startswith(PERMISSIVE) or "public domain" in row["licence"]:
                sources[row["file"]] = row
    by_source = defaultdict(list)
    with open(corpus / "pool/MANIFEST.tsv") as f:
        for row in csv.DictReader(f, delimiter="\t"):
            if row["source"] in sources:
                by_source[row["source"]].append(row["file"])
    rng = random.Random(20261122)
    library = out / "library"
    library.mkdir(parents=True, exist_ok=True)
    used = []
    for source in sorted(by_source):
        for name in rng.sample(sorted(by_source[source]), min(PER_SOURCE, len(by_source[source]))):
            with Image.open(corpus / "pool" / name) as im:
                im = ImageOps.exif_transpose(im).convert("RGB")
                scale = SHORT_SIDE / min(im.size)
                im = im.resize((max(1, round(im.width * scale)), max(1, round(im.height * scale))), Image.Resampling.LANCZOS)
                dest = f"{len(used):04d}_{Path(name).stem}.jpg"
                im.save(library / dest, quality=QUALITY, optimize=True)
            used.append((dest, source))
    with Image.open(corpus / "targets" / TARGET) as im:
        im.convert("RGB").save(out / "target.jpg", quality=90, optimize=True)
    with open(out / "CREDITS.md", "w") as f:
        f.write("# Demo photo credits\n\nEvery demo photo is a downscaled crop of a real photograph shipped in a Debian "
                "(bookworm, main) package or a PyPI wheel, under the licence given. Regenerate with "
                "`python pipeline/data/make_demo_data.py CORPUS` (see `../shared/corpus`).\n\n")
        f.write(f"target.jpg: {TARGET} of the corpus; cat portrait, puzzle-jigsaw (Debian), "
                "samples/cat-animal-cat-portrait-mackerel.jpg; licence CC0-1.0; credit Pexels.\n\n")
        f.write("| file | source package | version | path in package | licence | credit |\n|---|---|---|---|---|---|\n")
        for dest, source in used:
            s = sources[source]
            f.write(f"| library/{dest} | {s['package']} | {s['version']} | {s['path_in_package']} | {s['licence']} | {s['credit']} |\n")
    print(f"{len(used)} photos from {len(by_source)} sources")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
