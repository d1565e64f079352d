import numpy as np
import open_clip
import pytest
import torch

from tests.conftest import make_image
from tests.workers.embedding.vectors import assert_unit_length, cosines
from workers.embedding.model import (
    DEMO_MODEL_NAME,
    DEMO_PRETRAINED,
    DEMO_WEIGHTS,
    ModelLoadError,
    ModelSpec,
    load_engine,
    load_engine_with_fallback,
    register_demo_config,
)

IMAGES = [
    make_image(color="red", shape="circle"),
    make_image(color="blue", shape="square", background="yellow", size=(200, 300)),
]
TEXTS = ["a red circle", "a blue square on a yellow background"]


def reference_embeddings(name: str, pretrained: str | None):
    """open_clip's own path: create_model_and_transforms + its preprocess + encode_*."""
    register_demo_config()
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(name, pretrained=pretrained)
    model.eval()
    tokenizer = open_clip.get_tokenizer(name)
    with torch.no_grad():
        images = model.encode_image(torch.stack([preprocess(image) for image in IMAGES]))
        texts = model.encode_text(tokenizer(TEXTS))
    images = images / images.norm(dim=-1, keepdim=True)
    texts = texts / texts.norm(dim=-1, keepdim=True)
    return images.numpy(), texts.numpy()


@pytest.mark.parametrize(
    ("name", "pretrained", "reference_weights"),
    [
        (DEMO_MODEL_NAME, DEMO_PRETRAINED, str(DEMO_WEIGHTS)),  # the trained weights we ship
        (DEMO_MODEL_NAME, "", None),
        ("ViT-B-32", "", None),  # what real checkpoints of the default model go through
    ],
)
def test_engine_matches_open_clip_reference_path(name, pretrained, reference_weights):
    engine = load_engine(ModelSpec(name, pretrained))
    ref_images, ref_texts = reference_embeddings(name, reference_weights)

    images = engine.encode_images(IMAGES)
    texts = engine.encode_texts(TEXTS)

    assert images.dtype == np.float32 and texts.dtype == np.float32
    assert images.shape == (2, engine.dim) and texts.shape == (2, engine.dim)
    assert_unit_length(images)
    assert_unit_length(texts)
    assert cosines(images, ref_images).min() >= 0.9999
    assert cosines(texts, ref_texts).min() >= 0.9999


def test_embeddings_are_unit_length_and_the_same_in_every_process_load():
    first = load_engine(ModelSpec(DEMO_MODEL_NAME, ""))
    second = load_engine(ModelSpec(DEMO_MODEL_NAME, ""))
    vectors = first.encode_texts(TEXTS)
    assert_unit_length(vectors)
    assert_unit_length(first.encode_images(IMAGES))
    np.testing.assert_allclose(second.encode_texts(TEXTS), vectors, atol=1e-5)
    assert first.model_id == second.model_id == f"{DEMO_MODEL_NAME}/random-0"


def test_local_checkpoint_file_loads_and_names_the_vectors_by_content(tmp_path):
    from safetensors.torch import save_file

    source = load_engine(ModelSpec(DEMO_MODEL_NAME, ""))
    path = tmp_path / "my-weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, path)

    engine = load_engine(ModelSpec(DEMO_MODEL_NAME, str(path)))

    assert engine.model_id.startswith(f"{DEMO_MODEL_NAME}/my-weights-")
    np.testing.assert_allclose(
        engine.encode_images(IMAGES), source.encode_images(IMAGES), atol=1e-5
    )


def test_unknown_architecture_or_missing_file_is_a_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="no model called 'No-Such-Model'"):
        load_engine(ModelSpec("No-Such-Model", ""))
    with pytest.raises(ModelLoadError, match="no checkpoint file at /"):
        load_engine(ModelSpec(DEMO_MODEL_NAME, str(tmp_path / "missing.safetensors")))


def test_unreachable_hub_falls_back_to_the_demo_model_quickly_and_says_why(monkeypatch):
    # The model hub is outside the system: stand in for "no network" by refusing connections.
    import workers.embedding.model as model_module

    monkeypatch.setattr(model_module, "_hub_reachable", lambda timeout=3.0: False)

    engine = load_engine_with_fallback(ModelSpec("ViT-B-32", "laion2b_s34b_b79k"))

    assert engine.is_demo
    assert engine.fallback_reason == (
        "could not load ViT-B-32 (laion2b_s34b_b79k): the model hub cannot be reached "
        "and these weights are not in the local cache"
    )
