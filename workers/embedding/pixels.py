"""A cheap pixel-level check that two images are one picture, edited. Plain Python, no Django.

CLIP-like embeddings put merely similar pictures (the same things, arranged differently) about as
close as a picture and its re-encoded, resized or slightly cropped copy. Comparing the pixels of
small thumbnails tells them apart: a copy keeps every edge where it was, another picture of the
same things does not. docs/DUPLICATES.md has the measurements.
"""

from __future__ import annotations

import numpy as np
from PIL import Image

# 32x32 keeps the layout and drops JPEG noise and resampling differences; a crop of 2% per side
# moves edges by under a pixel. Larger signatures (or searching over one-pixel shifts) let more
# copies fail or more look-alikes pass.
SIGNATURE_SIDE = 32


def pixel_signature(image: Image.Image) -> np.ndarray:
    """Return the image reduced to ``SIGNATURE_SIDE``² RGB pixels, as float32 (side, side, 3).

    The aspect ratio is not kept: near-duplicates share it, and squeezing loses no layout.
    """
    small = image.convert("RGB").resize((SIGNATURE_SIDE, SIGNATURE_SIDE), Image.Resampling.BOX)
    return np.asarray(small, dtype=np.float32)


def pixel_correlation(first: np.ndarray, second: np.ndarray) -> float:
    """Return the normalised cross-correlation of two signatures, from -1 to 1.

    1.0 means the same layout. Each colour channel is compared around its own mean, so a
    brightness change does not count. Two flat images correlate 1.0, a flat and a textured one 0.0.
    """
    a = first - first.mean(axis=(0, 1))
    b = second - second.mean(axis=(0, 1))
    energy_a, energy_b = float((a * a).sum()), float((b * b).sum())
    # Below this, the image is one flat colour (up to JPEG noise): there is no layout to compare.
    flat = a.size * 0.5
    if energy_a < flat or energy_b < flat:
        return 1.0 if energy_a < flat and energy_b < flat else 0.0
    return float((a * b).sum() / np.sqrt(energy_a * energy_b))
