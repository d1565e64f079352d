"""Calibrate the weak-match cut-off of the demo model on held-out generated scenes.

A cosine score means different things under different models, so "is this a good match?" needs
a threshold per model. For each query kind this measures, over many queries against a gallery
of held-out scenes, how precise the results above each score are, and picks the lowest score
whose results are at least 40% / 60% / 85% right for loose / normal / strict.

    python -m workers.embedding.demo.training.calibrate          # prints the table, writes the JSON

Writes ``calibration.json`` next to the weights; ``search.relevance`` reads it.
"""

from __future__ import annotations

import argparse
import io
import json
import random

import numpy as np
from PIL import Image

from workers.embedding.demo import CALIBRATION_FILE
from workers.embedding.demo import scenes as S

PRECISION_BY_STRICTNESS = {"loose": 0.4, "normal": 0.6, "strict": 0.85}

# Queries as people type them: which labels a query names, and how it says them.
_QUERY_FORMS = (
    ("colour", "shape"),
    ("colour", "shape", "pattern"),
    ("count", "colour", "shape"),
    ("colour", "shape", "background"),
    ("shape", "background"),
)


def _query(scene: S.Scene, labels: tuple[str, ...]) -> str:
    noun = S._plural(scene.shape) if scene.count > 1 else scene.shape
    words = []
    if "count" in labels:
        words.append({1: "one", 2: "two", 3: "three"}[scene.count])
    if "colour" in labels:
        words.append(scene.colour)
    words.append(noun)
    if "background" in labels:
        pattern = f"{scene.pattern} " if "pattern" in labels and scene.pattern != "plain" else ""
        words.append(f"on a {pattern}{scene.background} background")
    elif "pattern" in labels:
        words.append(f"on a {scene.pattern} background")
    return " ".join(words)


def _matches(scene: S.Scene, query_scene: S.Scene, labels: tuple[str, ...]) -> bool:
    if scene.shape != query_scene.shape:
        return False
    if "count" not in labels and query_scene.count > 1 and scene.count == 1:
        return False  # "red stars" asks for more than one
    return all(getattr(scene, label) == getattr(query_scene, label) for label in labels)


def threshold_for_precision(scores: np.ndarray, relevant: np.ndarray, precision: float) -> float:
    """The lowest score above which at least ``precision`` of the results are relevant."""
    order = np.argsort(-scores)
    hits = np.cumsum(relevant[order])
    precisions = hits / np.arange(1, len(order) + 1)
    ok = np.nonzero(precisions >= precision)[0]
    if len(ok) == 0:
        return float(scores.max())
    return float(scores[order][ok[-1]])


def calibrate(engine, *, gallery_size: int = 300, queries: int = 400, seed: int = 4321) -> dict:
    rng = random.Random(seed)
    gallery = [S.random_scene(rng, "heldout") for _ in range(gallery_size)]
    images = [Image.open(io.BytesIO(S.scene_jpeg(s, rng))).convert("RGB") for s in gallery]
    gallery_vectors = engine.encode_images(images)

    # Text: half the queries describe a scene of the gallery, half a scene that is not in it.
    text_scores: list[float] = []
    text_relevant: list = []
    no_match_top: list[float] = []
    match_top: list[float] = []
    query_scenes = [
        rng.choice(gallery) if i % 2 == 0 else S.random_scene(rng, "heldout")
        for i in range(queries)
    ]
    forms = [rng.choice(_QUERY_FORMS) for _ in query_scenes]
    texts = [_query(scene, form) for scene, form in zip(query_scenes, forms, strict=True)]
    similarity = engine.encode_texts(texts) @ gallery_vectors.T
    for row, scene, form in zip(similarity, query_scenes, forms, strict=True):
        relevant = np.array([_matches(g, scene, form) for g in gallery])
        text_scores.append(row)
        text_relevant.append(relevant)
        (match_top if relevant.any() else no_match_top).append(float(row.max()))
    text_scores_all = np.concatenate(text_scores)
    text_relevant_all = np.concatenate(text_relevant)

    # Image: another picture of a gallery scene's family should find that family.
    families = [S.scene_family(s) for s in gallery]
    probes = [S.scene_variant(rng.choice(gallery), rng) for _ in range(queries // 2)]
    probe_vectors = engine.encode_images(
        [Image.open(io.BytesIO(S.scene_jpeg(s, rng))).convert("RGB") for s in probes]
    )
    image_similarity = probe_vectors @ gallery_vectors.T
    image_relevant = np.array(
        [[families[j] == S.scene_family(p) for j in range(gallery_size)] for p in probes]
    )

    result: dict = {"model": engine.model_id, "text": {}, "image": {}, "report": {}}
    for strictness, precision in PRECISION_BY_STRICTNESS.items():
        t = threshold_for_precision(text_scores_all, text_relevant_all, precision)
        i = threshold_for_precision(image_similarity.ravel(), image_relevant.ravel(), precision)
        result["text"][strictness] = round(t, 4)
        result["image"][strictness] = round(i, 4)
        kept = text_scores_all >= t
        result["report"][strictness] = {
            "text_recall": round(float(text_relevant_all[kept].sum() / text_relevant_all.sum()), 3),
            "text_no_match_said": round(float(np.mean(np.array(no_match_top) < t)), 3),
            "text_match_found": round(float(np.mean(np.array(match_top) >= t)), 3),
            "image_recall": round(
                float(image_relevant[image_similarity >= i].sum() / image_relevant.sum()), 3
            ),
        }
    return result


def main() -> None:
    from workers.embedding.model import DEMO_MODEL_NAME, DEMO_PRETRAINED, ModelSpec, load_engine

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args()
    engine = load_engine(ModelSpec(DEMO_MODEL_NAME, DEMO_PRETRAINED))
    result = calibrate(engine)
    print(json.dumps(result, indent=2))
    if not args.no_write:
        CALIBRATION_FILE.write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {CALIBRATION_FILE}")


if __name__ == "__main__":
    main()
