import os

import pytest

from pipeline.files import replaced_atomically


@pytest.mark.parametrize("binary", [True, False])
def test_interrupted_write_keeps_the_old_file_and_leaves_nothing(tmp_path, binary):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with replaced_atomically(path, binary=binary) as f:
            f.write(b"half" if binary else "half")
            raise RuntimeError("killed")
    assert path.read_text() == "old" and os.listdir(tmp_path) == ["out.txt"]


def test_completed_write_replaces(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with replaced_atomically(path, binary=False, encoding="utf-8") as f:
        f.write("new é")
    assert path.read_text(encoding="utf-8") == "new é" and os.listdir(tmp_path) == ["out.txt"]
