"""One ranking from several signals: CLIP similarity plus the other things a text query can
match (the text read in a photo; later its place, its tags, its file name).

The fused score stays in CLIP's units, so that the model's weak-match cut-offs (and the
messages that quote them) still apply: it is the photo's CLIP cosine plus, for every other
signal, ``weight x strength x unit``, where ``unit`` is the cut-off of a good text match for
the active model and ``strength`` (0..1) says how fully the photo matches that signal. A photo
whose text holds every word of the query (strength 1, weight 1) therefore passes the "good"
cut-off on its text alone, whatever CLIP thinks of it; a partial text match and a fair CLIP
score together can pass it; a query no signal but CLIP matches ranks exactly as CLIP ranks it.

This is a calibrated score sum rather than reciprocal rank fusion: RRF needs no calibration but
has no absolute scale, so it could not say when a photo is a good match at all.

To add a signal (the places concern's "in Lisbon", say): compute ``{photo id: strength}`` over
the photos the user may see, with the same filters, and pass it as one more ``Signal`` to
``fuse``; photos it names that CLIP did not rank get their CLIP score from
``selectors.clip_scores``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Signal:
    """One ranked list: how strongly (0..1) each photo matches, and what it matched."""

    name: str
    strengths: Mapping[int, float]
    weight: float = 1.0
    matched: Mapping[int, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Fused:
    photo_id: int
    score: float  # in CLIP's units, comparable with the model's cut-offs
    clip_score: float
    contributions: dict[str, float]  # each extra signal's share of ``score``


def fuse(*, clip: Mapping[int, float], signals: Sequence[Signal], unit: float) -> list[Fused]:
    """Every photo of ``clip`` (cosine scores, which must cover the photos each signal names),
    with its fused score, best first (ties: lower photo id first)."""
    fused = []
    for photo_id, clip_score in clip.items():
        contributions = {
            signal.name: signal.weight * signal.strengths[photo_id] * unit
            for signal in signals
            if signal.strengths.get(photo_id)
        }
        fused.append(
            Fused(
                photo_id=photo_id,
                score=clip_score + sum(contributions.values()),
                clip_score=clip_score,
                contributions=contributions,
            )
        )
    fused.sort(key=lambda row: (-row.score, row.photo_id))
    return fused
