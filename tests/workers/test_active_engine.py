"""Which checkpoints this process loads: the operator's configured one from anywhere, one chosen
on the dashboard only from MEDIASEARCH_MODELS_DIR."""

import threading

import pytest

from workers import active_engine as active
from workers.active_engine import check_chosen_spec, engine_for
from workers.embedding.model import DEMO_MODEL_NAME, ModelLoadError, ModelSpec, load_engine


@pytest.fixture
def no_engines(monkeypatch):
    """This process's engines, emptied for the test and put back after it."""
    monkeypatch.setattr(active, "_engines", {})


@pytest.fixture
def checkpoint(tmp_path):
    from safetensors.torch import save_file

    source = load_engine(ModelSpec(DEMO_MODEL_NAME, ""))
    path = tmp_path / "elsewhere" / "weights.safetensors"
    path.parent.mkdir()
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, path)
    return path


def test_a_chosen_checkpoint_outside_the_models_directory_is_neither_accepted_nor_loaded(
    settings, tmp_path, checkpoint, no_engines
):
    settings.MEDIASEARCH_MODELS_DIR = str(tmp_path / "models")
    chosen = ModelSpec(DEMO_MODEL_NAME, str(checkpoint))

    with pytest.raises(ModelLoadError, match="loaded only from the models directory"):
        check_chosen_spec(chosen)
    with pytest.raises(ModelLoadError, match="loaded only from the models directory"):
        engine_for(chosen)
    assert active._engines == {}


def test_the_configured_checkpoint_may_be_anywhere(settings, tmp_path, checkpoint, no_engines):
    settings.MEDIASEARCH_MODELS_DIR = str(tmp_path / "models")
    settings.MEDIASEARCH_CLIP_MODEL = DEMO_MODEL_NAME
    settings.MEDIASEARCH_CLIP_PRETRAINED = str(checkpoint)
    configured = ModelSpec(DEMO_MODEL_NAME, str(checkpoint))

    check_chosen_spec(configured)
    engine = engine_for(configured)

    assert engine.model_id.startswith(f"{DEMO_MODEL_NAME}/weights-") and not engine.fallback_reason


def test_a_chosen_checkpoint_in_the_models_directory_loads(settings, checkpoint, no_engines):
    settings.MEDIASEARCH_MODELS_DIR = str(checkpoint.parent)
    chosen = ModelSpec(DEMO_MODEL_NAME, checkpoint.name)

    check_chosen_spec(chosen)

    assert engine_for(chosen).model_id.startswith(f"{DEMO_MODEL_NAME}/weights-")


def test_the_tag_vectors_are_ready_before_the_first_photo(settings, tmp_path, no_engines):
    """A worker computes them in the background at start: the first photo reads them."""
    from workers.embedding import tags

    settings.MEDIASEARCH_TAG_CACHE_DIR = str(tmp_path)
    tags.forget_taggers()
    engine = engine_for(active.configured_spec())
    encoded = []
    original = engine.encode_texts
    engine.encode_texts = lambda texts: encoded.append(len(texts)) or original(texts)
    try:
        active.warm_tagger_in_background(engine).join(timeout=120)
        assert sum(encoded) > 0 and max(encoded) > 1  # batched, in that thread
        calls = len(encoded)

        tagger = active.get_tagger(engine)  # what the first photo does

        assert len(encoded) == calls  # nothing left to encode
        assert tagger.dim == engine.dim
        assert list(tmp_path.glob("*.npz"))  # and kept for the next process
    finally:
        engine.encode_texts = original
        tags.forget_taggers()


def test_a_web_process_preloads_the_model_a_switch_is_building(no_engines):
    spec = ModelSpec(DEMO_MODEL_NAME, "")
    active.preload_in_background(spec)
    active.preload_in_background(spec)  # once only

    for thread in [t for t in threading.enumerate() if t.name == "clip-preload"]:
        thread.join(timeout=120)

    assert spec in active._engines
    assert not active._preloading
