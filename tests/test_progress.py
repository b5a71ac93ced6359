"""Progress lines: tqdm's bar on a terminal, whole lines in a log, nothing when quiet."""
from pipeline.progress import Progress


def test_a_log_gets_whole_lines_with_the_counts(capsys):
    bar = Progress("index", 0, "files")
    bar.grow(300)
    for _ in range(3):
        bar.update(100)
    bar.close()
    err = capsys.readouterr().err
    assert "\r" not in err and err.endswith("\n")
    last = err.strip().splitlines()[-1]
    assert last.startswith("index: 300/300 files (100%, ") and "files/s" in last


def test_quiet_prints_nothing(capsys):
    bar = Progress("match", 10, "cells", enabled=False)
    bar.update(10)
    bar.close()
    assert capsys.readouterr().err == ""
