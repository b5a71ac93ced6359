"""Reading photos: read each file once, decode it fast, return sRGB thumbnails of the tile aspect as ndarrays.

Formats: JPEG (libjpeg-turbo at reduced DCT scale), PNG, GIF, WebP, TIFF, BMP, AVIF
and JPEG XL (Pillow and its plugins), HEIF/HEIC (libheif, through its stored thumbnail
when big enough) and camera RAW (LibRaw: the embedded preview, else a half-size decode).
A file is recognised by its bytes first, its extension second (:func:`photo_kind`).
"""
from ._decode import BACKGROUND_RGB, PhotoError, decode_thumbnail, load_rgb, load_thumbnail, read_photo, thumbnail_of
from ._formats import HEIF_EXTENSIONS, PHOTO_EXTENSIONS, RAW_EXTENSIONS, SIGNATURE_BYTES, has_image_signature, photo_kind
from ._heif import register_plugins

__all__ = ["BACKGROUND_RGB", "HEIF_EXTENSIONS", "PHOTO_EXTENSIONS", "RAW_EXTENSIONS", "SIGNATURE_BYTES", "PhotoError",
           "decode_thumbnail", "has_image_signature", "load_rgb", "load_thumbnail", "photo_kind", "read_photo",
           "register_plugins", "thumbnail_of"]
