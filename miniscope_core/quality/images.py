"""The QC page's images, encoded by Pillow at exactly their size: projections as PNG (gray,
contrast-stretched), behaviour-camera frames as JPEG. Pillow is imported only when an image is
encoded, so a conversion without a report never loads it."""

from __future__ import annotations

import io

import numpy as np

JPEG_QUALITY = 85
STRETCH_PERCENTILES = (0.5, 99.5)


def image_png(image: np.ndarray, stretch: bool = True) -> bytes:
    """`image` as a PNG of exactly its size: gray (contrast-stretched from the 0.5th to the
    99.5th percentile, or over its dtype's range; NaN black) or RGB as it is.

    In float32 and in place: a 608x608 projection takes ~5 MB on its way to a PNG, not the
    ~20 MB of a chain of float64 temporaries (the page is drawn within the conversion's peak).
    """
    if image.ndim == 3:
        return _encoded(np.ascontiguousarray(image[..., :3], dtype=np.uint8), "PNG")
    scaled = np.array(image, dtype=np.float32)  # a copy, scaled in place below
    finite = scaled[np.isfinite(scaled)]
    if stretch and len(finite):
        low, high = (float(v) for v in np.percentile(finite, STRETCH_PERCENTILES))
    else:
        low, high = 0.0, float(np.iinfo(image.dtype).max) if image.dtype.kind == "u" else 1.0
    del finite
    # As a 256-level gray colour map: [0, 1] in 256 equal steps, below and above clipped.
    scaled -= np.float32(low)
    scaled /= np.float32(max(high - low, 1e-9))
    scaled *= np.float32(256)
    np.nan_to_num(scaled, copy=False, nan=0.0)
    np.clip(scaled, 0, 255, out=scaled)
    return _encoded(scaled.astype(np.uint8), "PNG")


def photo_jpeg(image: np.ndarray, quality: int = JPEG_QUALITY) -> bytes:
    """A behaviour-camera frame (RGB or gray, uint8) as a JPEG of exactly its size: a photo,
    which PNG would keep at ~10x the bytes (the page carries one per camera and acquisition)."""
    pixels = image[..., :3] if image.ndim == 3 else image
    return _encoded(np.ascontiguousarray(pixels, dtype=np.uint8), "JPEG", quality=quality)


def _encoded(pixels: np.ndarray, kind: str, **options: int) -> bytes:
    """uint8 (height, width) gray or (height, width, 3) RGB pixels as a `kind` file."""
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format=kind, **options)
    return buffer.getvalue()
