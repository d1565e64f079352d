"""Comparing embeddings: by cosine, after checking that they are unit length.

A dot product is the cosine only for unit vectors: vectors that lost their normalisation (say,
of length 10) pass ``a @ b >= 0.9999`` while pointing apart. Search ranks by cosine distance
over stored vectors it trusts to be unit length, so a test checks both.
"""

from __future__ import annotations

import numpy as np

# float32 normalisation leaves lengths within a few 1e-7 of 1.
UNIT_TOLERANCE = 1e-5


def assert_unit_length(vectors: np.ndarray) -> None:
    """Each row of ``vectors`` (or the one vector) has length 1 within ``UNIT_TOLERANCE``."""
    lengths = np.linalg.norm(np.atleast_2d(np.asarray(vectors, dtype=np.float64)), axis=1)
    assert np.abs(lengths - 1).max() <= UNIT_TOLERANCE, f"not unit length: {lengths}"


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of ``a`` and ``b`` (float64), whatever their lengths."""
    a = np.atleast_2d(np.asarray(a, dtype=np.float64))
    b = np.atleast_2d(np.asarray(b, dtype=np.float64))
    return np.einsum("ij,ij->i", a, b) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
