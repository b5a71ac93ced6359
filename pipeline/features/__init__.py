"""Colour features of RGB patches, library tiles and target cells alike, and where tiles are cut (pure numpy).

Every function takes and returns ndarrays; nothing here reads or writes files.
"""
from ._color import lab_to_srgb, srgb_to_lab
from ._crop import ANALYSIS_SIDE, CROP_MODES, SQUARE, TileAspect, crop_box, pixel_shape, salient_window_offset
from ._tile_features import DOMINANT_BINS_PER_CHANNEL, TileFeatures, block_averaging, block_edges, block_means, compute_features
from ._weighting import matching_vectors, mirror_grids

__all__ = ["ANALYSIS_SIDE", "CROP_MODES", "DOMINANT_BINS_PER_CHANNEL", "SQUARE", "TileAspect", "TileFeatures", "block_averaging", "block_edges",
           "block_means", "compute_features", "crop_box", "lab_to_srgb", "matching_vectors", "mirror_grids", "pixel_shape", "salient_window_offset", "srgb_to_lab"]

