"""What decoding one item gives the embed write path (``search.ingest.services``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from search.models import Photo


@dataclass(frozen=True)
class Decoded:
    photo: Photo
    frames: list[tuple[int, np.ndarray]]  # (time in ms, unit vector); a still has one, at 0
    renditions: tuple[bytes, bytes] | None  # thumbnail and preview JPEGs; None: keep them
    fields: dict[str, object]  # the row's new metadata (size, date, camera, ...); {}: keep
    files: dict[str, str] = field(default_factory=dict)  # other files written: {field: name}
