"""Output formats: one module per format behind one protocol, found through a registry.

Each format (:mod:`.jpeg`, :mod:`.png`, :mod:`.tiff`, :mod:`.deepzoom`) says which
extensions it writes, what size it can hold, how a render cuts it into bands, how
a worker encodes a band, and how the client files encoded bands
(:class:`Format`). :func:`format_for` finds the format of an output path;
:func:`write_bands` writes an output from its bands under a temporary name;
:func:`write_image` writes an in-memory image. A new format is a new module with a
``Format`` and a :func:`register_format` call below.
"""
from ._protocol import BandPlace, BandSource, BandWriter, Format
from ._pyramid import halve
from ._registry import format_for, output_extensions, register_format, registered_formats
from ._write import ArraySource, check_output, write_bands, write_image
from .deepzoom import DEEP_ZOOM
from .jpeg import JPEG
from .png import PNG
from .tiff import TIFF

for _builtin in (JPEG, PNG, TIFF, DEEP_ZOOM):
    register_format(_builtin)
del _builtin

__all__ = ["ArraySource", "BandPlace", "BandSource", "BandWriter", "Format", "check_output", "format_for", "halve",
           "output_extensions", "register_format", "registered_formats", "write_bands", "write_image"]
