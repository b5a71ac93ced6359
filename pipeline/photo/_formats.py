"""Which files are still photos, and which decoder reads them: by extension, and by their first bytes.

Content decides when it can: a HEIC named ``.jpg``, a DNG named ``.bin`` or a JPEG with
no extension go to the decoder their bytes call for. Camera RAW files are TIFF
structures (DNG, NEF, ARW, CR2, ...) or formats of their own (CR3, RAF, ORF, RW2); a
TIFF-shaped RAW is told from a plain TIFF by its extension or its DNGVersion tag, since
Pillow would read the first would-be TIFF page of it, the sensor's mosaic, as grey.
"""
from __future__ import annotations

__all__ = ["HEIF_EXTENSIONS", "PHOTO_EXTENSIONS", "RAW_EXTENSIONS", "SIGNATURE_BYTES", "has_image_signature", "photo_kind"]

RAW_EXTENSIONS = frozenset({".dng", ".cr2", ".cr3", ".crw", ".nef", ".nrw", ".arw", ".srf", ".sr2", ".orf", ".raf",
                            ".rw2", ".pef", ".srw", ".3fr", ".iiq", ".erf", ".kdc", ".mrw", ".x3f"})
HEIF_EXTENSIONS = frozenset({".heic", ".heif", ".hif"})
PHOTO_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".tif", ".tiff", ".bmp", ".gif", ".avif", ".jxl"}
                             | HEIF_EXTENSIONS | RAW_EXTENSIONS)

# How many leading bytes :func:`photo_kind` wants: enough for a DNG's first IFD in the usual place.
SIGNATURE_BYTES = 4096

_PILLOW_SIGNATURES = (
    b"\xff\xd8\xff",  # JPEG
    b"\x89PNG\r\n\x1a\n",
    b"GIF87a",
    b"GIF89a",
    b"BM",
    b"\xff\x0a",  # JPEG XL codestream
    b"\x00\x00\x00\x0cJXL \r\n\x87\n",  # JPEG XL container
)
_TIFF = (b"II*\x00", b"MM\x00*")
_RAW_SIGNATURES = (
    b"FUJIFILMCCD-RAW",  # RAF
    b"IIRO", b"IIRS", b"MMOR",  # Olympus ORF
    b"IIU\x00",  # Panasonic RW2
    b"FOVb",  # Sigma X3F
    b"\x00MRM",  # Minolta MRW
)
# ISO base media brands of still images: HEIF/HEIC (pillow-heif) and AVIF (Pillow); CR3 is Canon's RAW.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_DNG_VERSION_TAG = 50706


def _ftyp_brands(head: bytes) -> set[bytes]:
    """The major and compatible brands of an ISO base media file's leading ``ftyp`` box."""
    if head[4:8] != b"ftyp":
        return set()
    size = int.from_bytes(head[:4], "big")
    box = head[8 : min(size, len(head))]
    return {box[:4]} | {box[k : k + 4] for k in range(8, len(box) - 3, 4)}


def _tiff_has_tag(head: bytes, tag: int) -> bool:
    """Whether the first IFD of a TIFF structure in ``head`` holds ``tag``."""
    order = "little" if head[:2] == b"II" else "big"
    ifd = int.from_bytes(head[4:8], order)
    count = int.from_bytes(head[ifd : ifd + 2], order)
    entries = head[ifd + 2 : ifd + 2 + 12 * count]
    return any(int.from_bytes(entries[k : k + 2], order) == tag for k in range(0, len(entries) - 11, 12))


def photo_kind(head: bytes, extension: str = "") -> str | None:
    """Which decoder reads a file: ``"pillow"``, ``"heif"``, ``"raw"``, or None for no still photo.

    Parameters
    ----------
    head : bytes
        The file's first bytes (:data:`SIGNATURE_BYTES` of them tell a DNG named otherwise).
    extension : str
        Its lower-case extension with the dot; decides only when the bytes do not.
    """
    brands = _ftyp_brands(head)
    if brands:
        if brands & _AVIF_BRANDS:
            return "pillow"
        if brands & _HEIF_BRANDS:
            return "heif"
        if b"crx " in brands:
            return "raw"
        return None  # a video, or another ISO base media file
    if head.startswith(_TIFF):
        if extension in RAW_EXTENSIONS or head[8:10] == b"CR" or _tiff_has_tag(head, _DNG_VERSION_TAG):
            return "raw"
        return "pillow"
    if head.startswith(_RAW_SIGNATURES):
        return "raw"
    if head.startswith(_PILLOW_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP"):
        return "pillow"
    if extension in RAW_EXTENSIONS:
        return "raw"
    if extension in HEIF_EXTENSIONS:
        return "heif"
    return "pillow" if extension in PHOTO_EXTENSIONS else None


def has_image_signature(head: bytes) -> bool:
    """Whether the first bytes of a file look like one of the supported still formats."""
    return photo_kind(head) is not None
