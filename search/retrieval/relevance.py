"""The weak-match cut-off: the lowest cosine score a result needs, per model and query kind.

Scores are not comparable across models, so each model needs its own thresholds:

- the shipped demo model: measured on held-out scenes by
  ``workers.embedding.demo.training.calibrate``
  (the lowest score above which 40% / 60% / 85% of results are right, for loose / normal /
  strict);
- any other model: ``MEDIASEARCH_MATCH_THRESHOLDS`` (JSON, same shape as the demo's
  ``calibration.json``), else generic CLIP figures below. These are typical of published CLIP
  models (a matching caption scores about 0.25 to 0.35, an unrelated one about 0.1 to 0.2), not
  measured on your photos: adjust them if searches cut too much or too little.
"""

from __future__ import annotations

import json
from functools import cache

from django.conf import settings

from search.retrieval.query import Strictness
from workers.embedding.demo import CALIBRATION_FILE
from workers.embedding.model import DEMO_MODEL_NAME

QUERY_KINDS = ("text", "image")
GENERIC_CLIP_THRESHOLDS = {
    "text": {"loose": 0.18, "normal": 0.22, "strict": 0.26},
    "image": {"loose": 0.6, "normal": 0.7, "strict": 0.8},
}


def min_score(*, model_name: str, kind: str, strictness: Strictness) -> float | None:
    """The cut-off for a query of ``kind`` ("text" or "image"); ``None`` shows everything."""
    if strictness == Strictness.ALL:
        return None
    return thresholds_for(model_name)[kind][str(strictness)]


def text_weight_with_image(*, model_name: str) -> float:
    """How much to scale text against an image in a combined query: the ratio of a good image
    match's score to a good text match's, so that both pull about equally."""
    table = thresholds_for(model_name)
    return table["image"]["normal"] / table["text"]["normal"]


@cache
def thresholds_for(model_name: str) -> dict[str, dict[str, float]]:
    configured = settings.MEDIASEARCH_MATCH_THRESHOLDS
    if configured:
        table = json.loads(configured)
    elif model_name == DEMO_MODEL_NAME:
        table = json.loads(CALIBRATION_FILE.read_text())
    else:
        table = GENERIC_CLIP_THRESHOLDS
    return {kind: {level: float(v) for level, v in table[kind].items()} for kind in QUERY_KINDS}
