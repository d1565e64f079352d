import pytest
from django.core.management import CommandError, call_command


def test_download_model_without_a_network_says_what_to_do(settings, monkeypatch):
    # The model hub is outside the system: stand in for "no network".
    import workers.embedding.model as model_module

    monkeypatch.setattr(model_module, "_hub_reachable", lambda timeout=3.0: False)
    settings.MEDIASEARCH_CLIP_MODEL = "ViT-B-32"
    settings.MEDIASEARCH_CLIP_PRETRAINED = "laion2b_s34b_b79k"

    with pytest.raises(CommandError) as error:
        call_command("download_model")

    assert str(error.value) == (
        "could not load ViT-B-32 (laion2b_s34b_b79k): the model hub cannot be reached and these "
        "weights are not in the local cache. Connect to the network and run this again, or set "
        "MEDIASEARCH_CLIP_PRETRAINED to the path of a checkpoint file."
    )


def test_download_model_with_a_local_checkpoint_reports_the_model_id(settings, tmp_path, capsys):
    from safetensors.torch import save_file

    from workers.embedding.model import DEMO_MODEL_NAME, ModelSpec, load_engine

    source = load_engine(ModelSpec(DEMO_MODEL_NAME, ""))
    path = tmp_path / "weights.safetensors"
    save_file({k: v.contiguous() for k, v in source.model.state_dict().items()}, path)
    settings.MEDIASEARCH_CLIP_MODEL = DEMO_MODEL_NAME
    settings.MEDIASEARCH_CLIP_PRETRAINED = str(path)

    call_command("download_model")

    assert f"Ready: {DEMO_MODEL_NAME}/weights-" in capsys.readouterr().out


@pytest.mark.django_db
def test_demo_gallery_has_dates_cameras_and_pictures_of_the_same_thing(alice):
    from search.models import Photo
    from tests.pipeline import embed_waiting

    call_command("load_demo_gallery", owner="alice", count=8, videos=1)
    call_command("load_demo_gallery", owner="alice", count=8, videos=1)  # safe to run twice

    videos = list(Photo.objects.filter(owner=alice, kind="video"))
    assert len(videos) == 1 and videos[0].original_filename.startswith("demo-video-0-")
    stills = Photo.objects.filter(owner=alice, kind="photo")
    photos = list(stills.exclude(original_filename__startswith="demo-text-").order_by("pk"))
    assert len(photos) == 8
    # And the photos with words in them, named so that the words are only in the pictures.
    text_names = sorted(
        stills.filter(original_filename__startswith="demo-text-").values_list(
            "original_filename", flat=True
        )
    )
    assert text_names == [f"demo-text-{i:02d}.jpg" for i in range(12)]
    embedded = embed_waiting()
    assert len(embedded) == 20 and set(embedded.values()) == {Photo.Status.READY}
    for photo in photos:
        photo.refresh_from_db()
        assert photo.status == "ready" and photo.taken_at is not None and photo.camera_model
    # Some are placed in real cities, which the geocoder names, so the place filters have data.
    from workers.embedding.demo.places import DEMO_PLACES

    placed = [photo for photo in photos if photo.country_code]
    assert 0 < len(placed) < len(photos)
    cities = {(city, code) for _, _, city, code in DEMO_PLACES.values()}
    assert {(photo.city, photo.country_code) for photo in placed} <= cities
    # The fourth picture shows what the third shows: "find similar" on one finds the other.
    from search.retrieval.query import Strictness
    from search.retrieval.selectors import photo_search

    hits = photo_search(user=alice, similar_to=photos[2], strictness=Strictness.ALL).hits
    assert hits[0].photo == photos[3]
