"""Stage 3, rendering: tiles resized, blended and laid out in bands on the workers, written in order.

:func:`render_mosaic` renders an assignment record again (``mosaic render``);
:func:`render_assignment` renders a matched grid on a given client. The pure
kernels that compose a band are :func:`resize_tiles`, :func:`blend_tiles` and
:func:`tile_canvas`; the band task is :func:`render_band`.
"""
from ._bands import BandPixels, TileBand, release_worker_state, render_band
from ._compose import blend_tiles, resize_tiles, tile_canvas
from ._correct import correct_tiles
from ._render import RenderResult, render_assignment, render_mosaic

__all__ = ["BandPixels", "RenderResult", "TileBand", "blend_tiles", "correct_tiles", "release_worker_state", "render_assignment",
           "render_band", "render_mosaic", "resize_tiles", "tile_canvas"]
