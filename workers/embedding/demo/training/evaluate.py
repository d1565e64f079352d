"""Recall and tag quality of a CLIP model on held-out generated scenes, without the rest of
the app.

The full-stack counterpart (upload → worker → pgvector → search views) is
``search/evaluation.py``; ``manage.py evaluate_search`` prints both.
"""

from __future__ import annotations

import io
import random
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from workers.embedding.demo.scenes import (
    Scene,
    caption,
    random_scene,
    scene_family,
    scene_jpeg,
    scene_variant,
)


@dataclass(frozen=True)
class ModelRecall:
    scenes: int
    text_at_1: float
    text_at_5: float
    image_at_1: float
    image_at_5: float

    def __str__(self) -> str:
        return (
            f"text→image recall@1 {self.text_at_1:.3f} @5 {self.text_at_5:.3f}; "
            f"image→image recall@1 {self.image_at_1:.3f} @5 {self.image_at_5:.3f} "
            f"({self.scenes} held-out scenes)"
        )


def evaluate_model(
    model: Any, preprocess: Any, tokenizer: Any, *, n: int, seed: int
) -> ModelRecall:
    """Text→image: each scene's caption must find that scene. Image→image: another picture of
    each scene's family must find the family. Both among ``n`` held-out scenes."""
    import torch

    rng = random.Random(seed)
    scenes = [random_scene(rng, split="heldout") for _ in range(n)]
    captions = [caption(scene, rng) for scene in scenes]
    queries = [scene_variant(scene, rng) for scene in scenes]

    def encode_images(batch) -> np.ndarray:
        pixels = torch.stack(
            [preprocess(Image.open(io.BytesIO(scene_jpeg(s, rng))).convert("RGB")) for s in batch]
        )
        with torch.inference_mode():
            return torch.nn.functional.normalize(model.encode_image(pixels), dim=-1).numpy()

    with torch.inference_mode():
        texts = torch.nn.functional.normalize(model.encode_text(tokenizer(captions)), dim=-1)
    gallery = encode_images(scenes)
    text_ranks = _ranks(texts.numpy() @ gallery.T, [[i] for i in range(n)])
    families = [scene_family(scene) for scene in scenes]
    same_family = [[j for j in range(n) if families[j] == families[i]] for i in range(n)]
    image_ranks = _ranks(encode_images(queries) @ gallery.T, same_family)
    return ModelRecall(
        scenes=n,
        text_at_1=float(np.mean(text_ranks < 1)),
        text_at_5=float(np.mean(text_ranks < 5)),
        image_at_1=float(np.mean(image_ranks < 1)),
        image_at_5=float(np.mean(image_ranks < 5)),
    )


def _ranks(similarity: np.ndarray, relevant: list[list[int]]) -> np.ndarray:
    """For each row, the rank of its best relevant column (0 = first)."""
    order = np.argsort(-similarity, axis=1)
    return np.array(
        [min(int(np.where(order[i] == j)[0][0]) for j in relevant[i]) for i in range(len(order))]
    )


# What each group of the demo tag vocabulary should say about a scene.
SCENE_TAGS = {
    "colour": lambda scene: scene.colour,
    "shape": lambda scene: scene.shape,
    "pattern": lambda scene: scene.pattern,
    "background": lambda scene: f"{scene.background} background",
}


@dataclass(frozen=True)
class GroupTagQuality:
    group: str
    scenes: int
    right: float  # share of scenes given the true tag of this group
    wrong: float  # wrong tags of this group given, per scene
    none: float  # share of scenes given no tag of this group

    def __str__(self) -> str:
        return (
            f"[{self.group}] right {self.right:.3f}, wrong tags per scene {self.wrong:.3f}, "
            f"no tag {self.none:.3f}"
        )


def evaluate_tags(
    engine: Any, tagger: Any, *, n: int, seed: int, min_score: float
) -> list[GroupTagQuality]:
    """How well ``tagger`` (built for the demo vocabulary) tags ``n`` held-out scenes drawn and
    compressed as users upload them, per group that ``SCENE_TAGS`` knows."""
    rng = random.Random(seed)
    scenes = [random_scene(rng, split="heldout") for _ in range(n)]
    images = [Image.open(io.BytesIO(scene_jpeg(s, rng))).convert("RGB") for s in scenes]
    vectors = np.concatenate(
        [engine.encode_images(images[start : start + 64]) for start in range(0, n, 64)]
    )
    given = [{name for name, _ in tags} for tags in tagger.tags(vectors, min_score=min_score)]
    return tag_quality(tagger.vocabulary, scenes, given)


def tag_quality(
    vocabulary: Any, scenes: Sequence[Scene], given: Sequence[Collection[str]]
) -> list[GroupTagQuality]:
    """Score the tag names ``given`` to each scene, per group of ``vocabulary`` (a
    ``TagVocabulary``) that ``SCENE_TAGS`` knows."""
    result = []
    for group in vocabulary.groups:
        truth_of = SCENE_TAGS.get(group.name)
        if truth_of is None:
            continue
        names = {tag.name for tag in group.tags}
        right = wrong = none = 0
        for scene, tags in zip(scenes, given, strict=True):
            in_group = names & set(tags)
            truth = truth_of(scene)
            right += truth in in_group
            wrong += len(in_group - {truth})
            none += not in_group
        n = len(scenes)
        result.append(
            GroupTagQuality(
                group=group.name, scenes=n, right=right / n, wrong=wrong / n, none=none / n
            )
        )
    return result
