import io

import pytest
from django.urls import reverse
from PIL import Image

from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "url",
    [
        "/",
        "/upload/",
        "/photos/",
        "/photos/1/",
        "/photos/1/similar/",
        "/albums/",
        "/albums/1/",
        "/photos/1/thumbnail/",
        "/photos/1/preview/",
        "/photos/1/original/",
        "/dashboard/",
    ],
)
def test_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_upload_several_files_lists_them_and_names_the_refused_one(alice_client, alice):
    files = [
        upload_file("red.jpg", encode(make_image(color="red"))),
        upload_file("todo.jpg", b"buy milk", "image/jpeg"),
        upload_file("blue.png", encode(make_image(color="blue"), "PNG"), "image/png"),
    ]
    response = alice_client.post(reverse("search:upload"), {"photos": files}, follow=True)

    page = response.content.decode()
    assert response.redirect_chain == [(reverse("search:photo_list"), 302)]
    assert "2 photo(s) uploaded and queued." in page
    assert "todo.jpg: not a supported image" in page
    assert sorted(
        Photo.objects.filter(owner=alice).values_list("original_filename", flat=True)
    ) == [
        "blue.png",
        "red.jpg",
    ]
    assert page.count('class="status status-pending"') == 2


def test_upload_without_files_shows_the_form_error(alice_client):
    response = alice_client.post(reverse("search:upload"), {})
    assert response.status_code == 200
    assert "Choose at least one photo." in response.content.decode()


def test_text_search_page_shows_ranked_results_with_scores(alice_client, alice):
    photo = photo_create(owner=alice, file=upload_file("r.jpg", encode(make_image()))).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY}

    response = alice_client.get(reverse("search:home"), {"q": "a red circle", "strictness": "all"})

    page = response.content.decode()
    assert reverse("search:photo_thumbnail", args=[photo.pk]) in page
    assert reverse("search:photo_similar", args=[photo.pk]) in page
    assert 'class="score"' in page
    assert "1 photo, all ranked by likeness" in page  # "show all" claims no good match


def test_image_search_refuses_a_non_image_clearly(alice_client):
    response = alice_client.post(
        reverse("search:search_by_image"), {"image": upload_file("x.jpg", b"nope")}
    )
    assert "x.jpg: not a supported image" in response.content.decode()


def test_image_search_ranks_the_same_picture_first(alice_client, alice):
    photos = []
    for color in ["red", "blue", "green"]:
        data = encode(make_image(color=color, shape="square", background="black"))
        photos.append(photo_create(owner=alice, file=upload_file(f"{color}.jpg", data)).photo)
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos}

    query = encode(make_image(color="blue", shape="square", background="black"), quality=70)
    response = alice_client.post(
        reverse("search:search_by_image"),
        {"image": upload_file("q.jpg", query), "strictness": "all"},
    )

    hits = response.context["outcome"].hits
    assert hits[0].photo.pk == photos[1].pk
    assert not Photo.objects.filter(original_filename="q.jpg").exists()  # query images are not kept


def test_files_are_only_served_to_their_owner(client, alice, bob):
    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY}

    client.force_login(bob)
    for name in [
        "search:photo_thumbnail",
        "search:photo_preview",
        "search:photo_original",
        "search:photo_similar",
    ]:
        assert client.get(reverse(name, args=[photo.pk])).status_code == 404

    client.force_login(alice)
    for name, longest_side in [("search:photo_thumbnail", 384), ("search:photo_preview", 1600)]:
        response = client.get(reverse(name, args=[photo.pk]))
        assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
        served = Image.open(io.BytesIO(b"".join(response.streaming_content)))
        assert max(served.size) == min(longest_side, 320)  # never upscaled past the original
    response = client.get(reverse("search:photo_original", args=[photo.pk]))
    assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == photo.file.open("rb").read()


def test_dashboard_is_for_staff_only_and_shows_failures(client, alice, staff):
    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    Photo.objects.filter(pk=photo.pk).update(status="failed", failure_reason="the file is empty")
    client.force_login(alice)
    assert client.get(reverse("search:dashboard")).status_code == 302
    client.force_login(staff)
    response = client.get(reverse("search:dashboard"))
    assert response.status_code == 200
    assert "the file is empty" in response.content.decode()


def test_admin_lists_photos_with_status_filter(client, alice, staff):
    photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image())))
    client.force_login(staff)
    staff.is_superuser = True
    staff.save()
    response = client.get("/admin/search/photo/", {"status__exact": "pending"})
    page = response.content.decode()
    assert response.status_code == 200
    assert "a.jpg" in page and "alice" in page


def test_uploading_the_same_file_again_says_it_is_already_there(alice_client, alice):
    data = encode(make_image(color="green"))
    alice_client.post(reverse("search:upload"), {"photos": [upload_file("a.jpg", data)]})

    response = alice_client.post(
        reverse("search:upload"), {"photos": [upload_file("copy.jpg", data)]}, follow=True
    )

    page = response.content.decode()
    assert "already in your library" in page
    assert Photo.objects.filter(owner=alice).count() == 1


def test_metadata_read_by_the_worker_is_kept_on_the_photo(alice):
    from datetime import UTC, datetime

    from tests.workers.embedding.test_metadata import exif_with

    data = encode(make_image(size=(300, 200)), exif=exif_with(offset="+02:00", gps=True))
    photo = photo_create(owner=alice, file=upload_file("paris.jpg", data)).photo

    assert embed_waiting() == {photo.pk: Photo.Status.READY}

    photo.refresh_from_db()
    assert (photo.width, photo.height) == (300, 200)
    assert photo.taken_at == datetime(2024, 7, 14, 16, 30, 5, tzinfo=UTC)
    assert photo.taken_at_offset_minutes == 120
    assert (photo.camera_make, photo.camera_model) == ("Fujifilm", "X100V")
    assert (photo.latitude, photo.longitude) == (48.8582222, -2.2945)


def test_every_page_says_when_only_the_demo_model_is_running(client, staff, monkeypatch, settings):
    # Offline with the real default configured: the engine falls back to the demo model.
    import workers.active_engine as active
    import workers.embedding.model as model_module
    from workers.embedding.model import ModelSpec, load_engine_with_fallback

    monkeypatch.setattr(model_module, "_hub_reachable", lambda timeout=3.0: False)
    configured = ModelSpec("ViT-B-32", "laion2b_s34b_b79k")
    settings.MEDIASEARCH_CLIP_MODEL = configured.name
    settings.MEDIASEARCH_CLIP_PRETRAINED = configured.pretrained
    monkeypatch.setitem(active._engines, configured, load_engine_with_fallback(configured))
    client.force_login(staff)

    for url in ["/", "/upload/", "/photos/", "/dashboard/", "/?q=a+red+circle"]:
        page = client.get(url).content.decode()
        assert "<strong>Demo model.</strong>" in page, url
        assert "could not load ViT-B-32 (laion2b_s34b_b79k): the model hub cannot be" in page
        assert "./dev manage download_model" in page
