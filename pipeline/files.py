"""Writing output files so that an interrupted write never leaves a half file under the final name."""
from __future__ import annotations

import contextlib
import os
import secrets
from typing import IO, Iterator

import numpy as np

from .errors import MosaicError

__all__ = ["check_not_precious", "replaced_atomically", "write_all"]


@contextlib.contextmanager
def replaced_atomically(path: str | os.PathLike, binary: bool = True, **open_options) -> Iterator[IO]:
    """Open a hidden sibling of ``path`` for writing; rename it over ``path`` only if the block completes.

    The sibling is opened with mode ``x`` (not mkstemp, which forces mode 0600), so the
    finished file gets the user's usual permissions.
    """
    folder, name = os.path.split(os.path.abspath(path))
    temporary = os.path.join(folder, f".{name}.{os.getpid()}.{secrets.token_hex(4)}.partial")
    try:
        with open(temporary, "xb" if binary else "x", **open_options) as f:
            yield f
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def check_not_precious(out: str, *precious: str) -> None:
    """Refuse an output path that is one of the inputs, or lies in a missing folder."""
    for path in precious:
        if path and os.path.exists(out) and os.path.exists(path) and os.path.samefile(out, path):
            raise MosaicError(f"refusing to write the mosaic over {path}")
    if not os.path.isdir(os.path.dirname(os.path.abspath(out))):
        raise MosaicError(f"output folder does not exist: {os.path.dirname(os.path.abspath(out))}")


def write_all(fd: int, parts: list[bytes | np.ndarray]) -> None:
    """Write byte strings and 1-D uint8 arrays, in order, with as few system calls as the kernel allows."""
    first = 0
    while first < len(parts):
        written = os.writev(fd, parts[first : first + 1024])  # IOV_MAX
        while first < len(parts) and written >= len(parts[first]):
            written -= len(parts[first])
            first += 1
        if written:
            parts[first] = parts[first][written:]
