"""The registry of output formats: the only place that goes from a file name to a format."""
from __future__ import annotations

import os

from ..errors import MosaicError
from ._protocol import Format

__all__ = ["format_for", "output_extensions", "register_format", "registered_formats"]

_BY_EXTENSION: dict[str, Format] = {}


def register_format(output_format: Format) -> Format:
    """Make ``output_format`` the writer of its extensions (a later registration of one wins)."""
    if not isinstance(output_format, Format):
        raise TypeError(f"{output_format!r} does not provide the Format protocol")
    for extension in output_format.extensions:
        _BY_EXTENSION[extension.lower()] = output_format
    return output_format


def output_extensions() -> list[str]:
    """Every extension a registered format writes, sorted."""
    return sorted(_BY_EXTENSION)


def registered_formats() -> list[Format]:
    """Every registered format, once each, in the order registered."""
    return list({id(f): f for f in _BY_EXTENSION.values()}.values())


def format_for(path: str | os.PathLike) -> Format:
    """The format that writes ``path``, by its extension (any letter case).

    Raises
    ------
    MosaicError
        If no registered format writes that extension.
    """
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in _BY_EXTENSION:
        raise MosaicError(f"cannot write {os.fspath(path)}: output must end in one of {', '.join(output_extensions())}")
    return _BY_EXTENSION[extension]
