"""sRGB -> CIELAB conversion (D65 white, CIE 1976), pure numpy."""
from __future__ import annotations

import numpy as np

__all__ = ["lab_from_f", "lab_to_srgb", "srgb_to_lab", "srgb_to_lab_f"]

# sRGB primaries to CIE XYZ (IEC 61966-2-1), rows scaled by the D65 white point so
# that the result is XYZ / white directly.
_D65_WHITE = np.array([0.95047, 1.0, 1.08883])
_RGB_TO_XYZ = np.array(
    [
        [0.4124564, 0.3575761, 0.1804375],
        [0.2126729, 0.7151522, 0.0721750],
        [0.0193339, 0.1191920, 0.9503041],
    ]
)
_RGB_TO_XYZ_WHITE = (_RGB_TO_XYZ / _D65_WHITE[:, None]).astype(np.float32)
_XYZ_WHITE_TO_RGB = np.linalg.inv(_RGB_TO_XYZ / _D65_WHITE[:, None]).astype(np.float32)


def _srgb_decode_table() -> np.ndarray:
    c = np.arange(256, dtype=np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    return linear.astype(np.float32)


# uint8 input is linearised by table lookup: far cheaper than a power per pixel.
_SRGB_TO_LINEAR = _srgb_decode_table()

_F_TO_LAB = np.array([[0.0, 116.0, 0.0], [500.0, -500.0, 0.0], [0.0, 200.0, -200.0]], dtype=np.float32)
_EPSILON = 216.0 / 24389.0
_KAPPA = 24389.0 / 27.0


def srgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    """Convert sRGB colours to CIELAB (D65).

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        uint8 sRGB values in 0..255, or floats in 0..1.

    Returns
    -------
    lab : ndarray of float32, shape (..., 3)
        L* in 0..100, a* and b* roughly in -128..127.
    """
    return lab_from_f(srgb_to_lab_f(rgb))


def srgb_to_lab_f(rgb: np.ndarray, *, out: np.ndarray | None = None) -> np.ndarray:
    """The CIELAB companding ``f(X/Xn), f(Y/Yn), f(Z/Zn)`` of sRGB colours.

    Lab is an affine map of these (:func:`lab_from_f`), so a mean of Lab values is the
    map of the mean of f: callers that average (colour features) average f and map the
    few means, sparing a matrix product per pixel.

    Parameters
    ----------
    rgb : ndarray, shape (..., 3)
        uint8 sRGB values in 0..255, or floats in 0..1.
    out : ndarray of float32, shape (..., 3), optional
        Where to write the result (a caller converting many batches reuses one buffer).

    Returns
    -------
    ndarray of float32, shape (..., 3)
    """
    rgb = np.asarray(rgb)
    if rgb.shape[-1] != 3:
        raise ValueError(f"expected a last axis of length 3, got shape {rgb.shape}")
    if rgb.dtype == np.uint8:
        linear = np.take(_SRGB_TO_LINEAR, rgb, mode="clip")  # 'clip': no bounds check, uint8 is in range
    else:
        c = np.clip(rgb.astype(np.float32), 0.0, 1.0)
        linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    xyz = linear @ _RGB_TO_XYZ_WHITE.T
    f = np.cbrt(xyz, out=linear if out is None else out)
    # The linear toe applies to very dark values only: patch those few in place
    # rather than evaluate both branches for every pixel (np.where is 5x slower here).
    dark = xyz <= _EPSILON
    if dark.any():
        f[dark] = (_KAPPA * xyz[dark] + 16.0) / 116.0
    return f


def lab_from_f(f: np.ndarray) -> np.ndarray:
    """CIELAB from :func:`srgb_to_lab_f`'s values (or from their means): an affine map."""
    # L = 116 fy - 16, a = 500 (fx - fy), b = 200 (fy - fz) as one small matrix product:
    # three strided channel writes cost twice as much.
    lab = np.matmul(f, _F_TO_LAB.T.astype(f.dtype))
    lab[..., 0] -= 16.0
    return lab


def lab_to_srgb(lab: np.ndarray) -> np.ndarray:
    """Convert CIELAB (D65) colours back to uint8 sRGB, clipping what sRGB cannot show.

    Parameters
    ----------
    lab : ndarray, shape (..., 3)

    Returns
    -------
    ndarray of uint8, shape (..., 3)
    """
    lab = np.asarray(lab, dtype=np.float32)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    xyz = f * f * f
    # The linear toe applies to very dark values only: patch those few (as srgb_to_lab_f does).
    dark = f <= _EPSILON ** (1 / 3)
    if dark.any():
        xyz[dark] = (116.0 * f[dark] - 16.0) / _KAPPA
    linear = xyz @ _XYZ_WHITE_TO_RGB.T
    # sRGB encoding by table on 16-bit linear levels (a power per pixel costs 3x as much); the table's
    # steps are at most 0.05 of an output level, so rounding agrees with the formula's.
    linear *= _LINEAR_LEVELS
    linear += 0.5
    np.clip(linear, 0, _LINEAR_LEVELS, out=linear)  # in place: each temporary of a large batch costs a pass
    return np.take(_LINEAR_TO_SRGB, linear.astype(np.uint16))


def _srgb_encode_table(levels: int) -> np.ndarray:
    linear = np.arange(levels + 1, dtype=np.float64) / levels
    encoded = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    return np.clip(np.round(encoded * 255.0), 0, 255).astype(np.uint8)


_LINEAR_LEVELS = 65535
_LINEAR_TO_SRGB = _srgb_encode_table(_LINEAR_LEVELS)
