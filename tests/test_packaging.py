"""The installed package is whole: README's `pip install .` (not editable) must carry every subpackage and data file."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_every_subpackage_and_the_packaged_data(tmp_path):
    # A `packages = ["pipeline"]` setting installed the top package alone: `import pipeline` failed after
    # `pip install .` while every editable install (the tests' own) worked.
    # From a clean copy of the sources: a checkout's stale build/ folder would fill the gaps.
    source = tmp_path / "source"
    shutil.copytree(ROOT / "pipeline", source / "pipeline", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path / "dist"), str(source)],
                   check=True, timeout=300, capture_output=True)
    [wheel] = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = sorted(str(p.parent.relative_to(ROOT)) for p in (ROOT / "pipeline").rglob("__init__.py"))
    assert len(packages) > 5
    missing = [p for p in packages if f"{p}/__init__.py" not in names]
    assert not missing, missing
    modules = [str(p.relative_to(ROOT)) for p in (ROOT / "pipeline").rglob("*.py")]
    assert not [m for m in modules if m not in names]
    for data in ("pipeline/mosaic.yaml", "pipeline/data/demo/target.jpg", "pipeline/data/demo/CREDITS.md"):
        assert data in names, data
    assert any(n.startswith("pipeline/data/demo/library/") and n.endswith(".jpg") for n in names)
    assert any(n.startswith("pipeline/data/viewer/") for n in names)
