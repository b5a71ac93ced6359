"""Shared fixtures: real photos (the bundled demo set), small libraries, and a real LocalCluster."""
from __future__ import annotations

import functools
import http.server
import logging
import shutil
import subprocess
import sys
import threading
from importlib.resources import files
from pathlib import Path

import pytest
from distributed import Client, LocalCluster

DEMO = Path(str(files("pipeline") / "data" / "demo"))
CLUSTER_CONFIG = Path(__file__).parents[1] / "cluster-config"


@pytest.fixture(scope="session")
def demo_photos() -> list[Path]:
    """The bundled real JPEG photos."""
    return sorted((DEMO / "library").glob("*.jpg"))


@pytest.fixture(scope="session")
def demo_target() -> Path:
    return DEMO / "target.jpg"


@pytest.fixture
def small_library(tmp_path: Path, demo_photos: list[Path]) -> Path:
    """A library of 120 real photos in nested folders, plus files that are not photos."""
    return _small_library(tmp_path / "library", demo_photos)


@pytest.fixture(scope="session")
def small_cache(tmp_path_factory, demo_photos: list[Path]) -> Path:
    """The small library indexed once by `mosaic index --tile-size 16`, for tests that only read a cache."""
    folder = tmp_path_factory.mktemp("small-cache")
    cache = folder / "tiles.h5"
    mosaic = Path(sys.executable).parent / "mosaic"
    subprocess.run([mosaic, "index", _small_library(folder / "library", demo_photos), "--cache", cache, "--tile-size",
                    "16", "--workers", "1", "--quiet"], check=True, capture_output=True, timeout=300)
    return cache


def _small_library(root: Path, demo_photos: list[Path]) -> Path:
    for i, photo in enumerate(demo_photos[::6][:120]):
        folder = root / f"album{i % 3}" / ("more" if i % 2 else "")
        folder.mkdir(parents=True, exist_ok=True)
        name = photo.name if i % 5 else photo.stem + ".JPG"
        shutil.copy(photo, folder / name)
    (root / "album0" / "empty.jpg").write_bytes(b"")
    (root / "album0" / "notes.jpg").write_text("this is not a photo\n")
    (root / "album1" / "sidecar.xmp").write_text("<xmp/>")
    (root / ".hidden").mkdir()
    shutil.copy(demo_photos[0], root / ".hidden" / "skipped.jpg")
    return root


@pytest.fixture
def cluster_config(tmp_path: Path, tls_credentials: Path) -> Path:
    """A copy of cluster-config/'s dask files to point DASK_CONFIG at.

    Dask plugins write their default files into DASK_CONFIG when imported
    (dask.config.ensure_file), so tests must not point it at the source tree.
    """
    copy = tmp_path / "cluster-config"
    copy.mkdir()
    for path in CLUSTER_CONFIG.glob("*.yaml"):
        shutil.copy(path, copy / path.name)
    shutil.copy(tls_credentials.parent / "tls.yaml", copy / "tls.yaml")  # the folder's dask.yaml requires TLS
    return copy


@pytest.fixture(scope="session")
def tls_credentials(tmp_path_factory) -> Path:
    """TLS credentials made by cluster-config/make-tls.sh, as a user makes them (tls.yaml beside them)."""
    folder = tmp_path_factory.mktemp("tls") / "tls"
    subprocess.run(["bash", CLUSTER_CONFIG / "make-tls.sh", folder], check=True, capture_output=True)
    return folder


@pytest.fixture(scope="session")
def client():
    """A real two-worker LocalCluster shared by the tests that pass it.

    Not dask's current client: a test that passes no client sees what a user's
    program would, a stage starting its own cluster.
    """
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=":0", silence_logs=logging.ERROR) as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture
def served(tmp_path):
    """tmp_path served over HTTP on 127.0.0.1, as a user's browser would get it."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
