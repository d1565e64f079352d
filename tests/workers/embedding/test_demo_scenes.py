import random

import numpy as np
import pytest

from workers.embedding.demo.scenes import (
    COLOURS,
    caption,
    random_scene,
    render,
    scene_family,
    scene_variant,
    split_of,
)


def test_held_out_label_combinations_never_appear_in_training():
    rng = random.Random(0)
    train = {scene_family(random_scene(rng, split="train")) for _ in range(3000)}
    heldout = {scene_family(random_scene(rng, split="heldout")) for _ in range(300)}

    assert train.isdisjoint(heldout)
    assert len(heldout) > 200  # many different held-out combinations, not a handful


@pytest.mark.parametrize("seed", range(20))
def test_a_full_caption_says_every_label(seed):
    rng = random.Random(seed)
    scene = random_scene(rng)

    text = caption(scene, rng)

    assert scene.colour in text and scene.shape in text and scene.size in text
    assert f"{scene.background} background" in text
    if scene.pattern != "plain":
        assert f"{scene.pattern} {scene.background}" in text
    if scene.count > 1:
        assert {2: "two", 3: "three"}[scene.count] in text
    else:
        assert any(word in text for word in ("left", "right", "top", "bottom", "middle", "centre"))


def test_rendering_is_deterministic_and_variants_differ_only_in_layout():
    rng = random.Random(3)
    scene = random_scene(rng)
    variant = scene_variant(scene, rng)

    first = np.asarray(render(scene, (128, 128)))
    assert np.array_equal(first, np.asarray(render(scene, (128, 128))))
    assert not np.array_equal(first, np.asarray(render(variant, (128, 128))))
    assert scene_family(variant) == scene_family(scene)
    assert split_of(variant) == split_of(scene)


def test_the_shape_is_drawn_in_its_colour_on_its_background():
    rng = random.Random(8)
    scene = random_scene(rng)
    pixels = np.asarray(render(scene, (200, 200))).reshape(-1, 3).astype(int)

    def share_near(rgb):
        return (np.abs(pixels - np.array(rgb)).max(axis=1) <= 20).mean()

    assert share_near(COLOURS[scene.colour]) > 0.01
    assert share_near(COLOURS[scene.background]) > 0.3
