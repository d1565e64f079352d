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
    Weights,
    check_spec,
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


def save_checkpoint(path) -> None:
    """The demo architecture's randomly initialised weights, as a safetensors file."""
    from safetensors.torch import save_file

    source = load_engine(ModelSpec(DEMO_MODEL_NAME, ""))
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, path)


@pytest.fixture
def offline(monkeypatch):
    """The model hub is outside the system: stand in for "no network" by refusing connections."""
    import workers.embedding.model as model_module

    monkeypatch.setattr(model_module, "_hub_reachable", lambda timeout=3.0: False)


def test_a_checkpoint_in_the_models_directory_loads_by_name_or_by_path(tmp_path):
    models = tmp_path / "models"
    save_checkpoint(models / "mine" / "weights.safetensors")

    by_name = load_engine(ModelSpec(DEMO_MODEL_NAME, "mine/weights.safetensors"), models_dir=models)
    by_path = load_engine(
        ModelSpec(DEMO_MODEL_NAME, str(models / "mine" / "weights.safetensors")), models_dir=models
    )

    assert by_name.model_id == by_path.model_id
    assert by_name.model_id.startswith(f"{DEMO_MODEL_NAME}/weights-")


OUTSIDE = "checkpoint files are loaded only from the models directory, {} (MEDIASEARCH_MODELS_DIR)"


def test_a_checkpoint_outside_the_models_directory_is_refused_whether_or_not_it_exists(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    save_checkpoint(tmp_path / "elsewhere" / "real.safetensors")  # loadable, but not in there
    (models / "escape.safetensors").symlink_to(tmp_path / "elsewhere" / "real.safetensors")
    tries = [
        str(tmp_path / "elsewhere" / "real.safetensors"),
        str(tmp_path / "elsewhere" / "missing.safetensors"),
        "../elsewhere/real.safetensors",
        "escape.safetensors",  # a link out of the folder
        "/etc/hostname",
        "/etc/no-such-file",
    ]

    reasons = set()
    for pretrained in tries:
        with pytest.raises(ModelLoadError) as error:
            check_spec(ModelSpec(DEMO_MODEL_NAME, pretrained), models_dir=models)
        reasons.add(str(error.value))

    assert reasons == {OUTSIDE.format(models)}


def test_a_damaged_checkpoint_is_refused_without_quoting_its_contents(tmp_path):
    (tmp_path / "notes.pt").write_bytes(b"PASSWORD=hunter2\n")  # the unpickler quotes byte 80

    with pytest.raises(ModelLoadError) as error:
        load_engine(ModelSpec(DEMO_MODEL_NAME, "notes.pt"), models_dir=tmp_path)

    assert str(error.value) == (
        f"could not load {DEMO_MODEL_NAME} (notes.pt): notes.pt is not a checkpoint of "
        f"{DEMO_MODEL_NAME} open_clip can load (UnpicklingError)"
    )


def test_a_missing_checkpoint_in_the_models_directory_says_so(tmp_path):
    with pytest.raises(ModelLoadError) as error:
        check_spec(ModelSpec(DEMO_MODEL_NAME, "gone.safetensors"), models_dir=tmp_path)
    assert str(error.value) == (
        f"no checkpoint file gone.safetensors in the models directory, {tmp_path.resolve()}"
    )


def test_a_made_up_hub_tag_is_an_unknown_tag_not_an_unreachable_hub(offline):
    with pytest.raises(ModelLoadError) as error:
        load_engine(ModelSpec("ViT-B-32", "made_up_tag"))

    reason = str(error.value)
    assert reason.startswith(
        "could not load ViT-B-32 (made_up_tag): unknown pretrained tag 'made_up_tag' for "
        "ViT-B-32; known tags: openai, laion400m_e31, "
    )
    assert "laion2b_s34b_b79k" in reason and "hub cannot be reached" not in reason
    with pytest.raises(ModelLoadError, match=r"unknown pretrained tag 'made_up_tag'.*known tags"):
        check_spec(ModelSpec("ViT-B-32", "made_up_tag"), models_dir="/nowhere")


def test_a_hub_repository_is_accepted_and_fetched_from_the_hub(offline):
    spec = ModelSpec("ViT-B-32", "hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K")
    assert check_spec(spec, models_dir="/nowhere") == Weights("hub", spec.pretrained)

    with pytest.raises(ModelLoadError) as error:
        load_engine(spec)
    assert str(error.value) == (
        f"could not load {spec}: the model hub cannot be reached and these weights are not "
        "in the local cache"
    )


@pytest.mark.parametrize(
    ("spec", "reason"),
    [
        (ModelSpec("ViT-B-32", "hf-hub:no-repository"), "a hub id is hf-hub:organisation/"),
        (ModelSpec("ViT-B-32", DEMO_PRETRAINED), "the demo weights are for MediaSearch-Demo"),
        (
            ModelSpec(DEMO_MODEL_NAME, "openai"),
            "tag 'openai' for MediaSearch-Demo; known tags: demo",
        ),
        (ModelSpec("No-Such-Model", "openai"), "open_clip knows no model called 'No-Such-Model'"),
        (ModelSpec(DEMO_MODEL_NAME, "a\x00b.pt"), "no checkpoint file can be called"),
    ],
)
def test_check_spec_refuses_with_a_reason(spec, reason):
    with pytest.raises(ModelLoadError, match=reason):
        check_spec(spec, models_dir="/nowhere")


def test_check_spec_says_where_the_weights_are(tmp_path):
    save_checkpoint(tmp_path / "w.safetensors")
    found = {
        pretrained: check_spec(ModelSpec(name, pretrained), models_dir=tmp_path)
        for name, pretrained in [
            (DEMO_MODEL_NAME, ""),
            (DEMO_MODEL_NAME, DEMO_PRETRAINED),
            ("ViT-B-32", "laion2b_s34b_b79k"),
            (DEMO_MODEL_NAME, "w.safetensors"),
        ]
    }
    assert found == {
        "": Weights("random"),
        DEMO_PRETRAINED: Weights("file", str(DEMO_WEIGHTS), DEMO_PRETRAINED),
        "laion2b_s34b_b79k": Weights("tag", "laion2b_s34b_b79k"),
        "w.safetensors": Weights(
            "file", str(tmp_path.resolve() / "w.safetensors"), "w.safetensors"
        ),
    }
