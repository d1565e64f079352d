"""Which checkpoints this process loads: the operator's configured one from anywhere, one chosen
on the dashboard only from MEDIASEARCH_MODELS_DIR."""

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
