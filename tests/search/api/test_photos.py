import io

import pytest
from django.db.models import Count
from PIL import Image

from search.models import Photo, PhotoTag
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db

NOT_AN_IMAGE = (
    "not a supported image or video (images: JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF, "
    "AVIF, JPEG 2000, Netpbm PNM/PBM/PGM/PPM, DNG, Canon CR2, Canon CR3, "
    "Nikon NEF, Sony ARW, Fujifilm RAF, Olympus ORF, Panasonic RW2; "
    "videos: MP4/MOV, MKV, WebM, AVI)"
)


def stored_photo(owner, name="a.jpg", **image) -> Photo:
    return photo_create(owner=owner, file=upload_file(name, encode(make_image(**image)))).photo


def ready_photos(*photos: Photo) -> None:
    """Embed stored photos together, as a worker does; each must be ready."""
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos}
    for photo in photos:
        photo.refresh_from_db()


def ready_photo(owner, name="a.jpg", **image) -> Photo:
    photo = stored_photo(owner, name, **image)
    ready_photos(photo)
    return photo


def test_upload_reports_every_file_in_order(api, alice, alice_token):
    existing = stored_photo(alice, "first.jpg", color="green")
    files = [
        upload_file("red.jpg", encode(make_image(color="red"))),
        upload_file("todo.jpg", b"buy milk"),
        upload_file("again.jpg", existing.file.open("rb").read()),
        upload_file("blue.png", encode(make_image(color="blue"), "PNG"), "image/png"),
    ]

    response = api.post("/api/photos", token=alice_token, multipart={"files": files})

    assert response.status_code == 200
    body = response.json()
    assert (body["created"], body["duplicates"], body["rejected"]) == (2, 1, 1)
    outcomes = [(r["filename"], r["outcome"], r["reason"]) for r in body["results"]]
    assert outcomes == [
        ("red.jpg", "created", ""),
        ("todo.jpg", "rejected", NOT_AN_IMAGE),
        ("again.jpg", "duplicate", ""),
        ("blue.png", "created", ""),
    ]
    assert body["results"][1]["photo"] is None
    assert body["results"][2]["photo"]["id"] == existing.pk
    red = body["results"][0]["photo"]
    photo = Photo.objects.get(pk=red["id"])
    assert (photo.owner, photo.original_filename, red["status"]) == (alice, "red.jpg", "pending")
    assert red["files"] == {
        "thumbnail": None,
        "preview": None,
        "original": f"http://testserver/api/photos/{photo.pk}/original",
        "motion": None,
    }
    assert red["web"]["original"] == f"http://testserver/photos/{photo.pk}/original/"
    assert Photo.objects.filter(owner=alice).count() == 3


def test_upload_without_files_says_what_is_missing(api, alice_token):
    response = api.post("/api/photos", token=alice_token, multipart={})

    assert response.status_code == 422
    assert response.json() == {
        "detail": "files: Field required",
        "errors": [{"loc": ["files"], "msg": "Field required"}],
    }
    assert not Photo.objects.exists()


def test_an_empty_file_is_rejected_as_empty(api, alice_token):
    # Not "files: Field required" (see _empty_files_dropped in test_api_fuzz.py).
    files = [upload_file("empty.jpg", b"")]

    response = api.post("/api/photos", token=alice_token, multipart={"files": files})

    assert response.status_code == 200
    assert [(r["filename"], r["outcome"], r["reason"]) for r in response.json()["results"]] == [
        ("empty.jpg", "rejected", "the file is empty")
    ]
    assert not Photo.objects.exists()


def test_upload_of_too_many_files_is_refused_as_json(api, alice_token, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [upload_file(f"{i}.jpg", encode(make_image(size=(40 + i, 40)))) for i in range(3)]

    response = api.post("/api/photos", token=alice_token, multipart={"files": files})

    assert response.status_code == 400
    assert response.json() == {"detail": "Too many files: send at most 2 per request."}
    assert not Photo.objects.exists()


def test_upload_without_a_token_stores_nothing(api, alice):
    files = [upload_file("red.jpg", encode(make_image()))]
    assert api.post("/api/photos", multipart={"files": files}).status_code == 401
    assert not Photo.objects.exists()


def test_list_shows_own_photos_newest_first_paginated_and_by_status(api, alice, alice_token):
    photos = [stored_photo(alice, f"{i}.jpg", size=(50 + i, 50)) for i in range(5)]
    Photo.objects.filter(pk=photos[1].pk).update(
        status="failed", failure_reason="the file is truncated"
    )

    first = api.get("/api/photos", token=alice_token, query={"page_size": 2}).json()
    last = api.get("/api/photos", token=alice_token, query={"page_size": 2, "page": 3}).json()
    failed = api.get("/api/photos", token=alice_token, query={"status": "failed"}).json()

    newest_first = [photo.pk for photo in reversed(photos)]
    assert (first["count"], first["page"], first["page_size"]) == (5, 1, 2)
    assert [item["id"] for item in first["items"]] == newest_first[:2]
    assert [item["id"] for item in last["items"]] == newest_first[4:]
    assert [(i["id"], i["failure_reason"]) for i in failed["items"]] == [
        (photos[1].pk, "the file is truncated")
    ]


@pytest.mark.parametrize(
    "query",
    [
        {"status": "lost"},
        {"page": 0},
        {"page_size": 201},
        {"page": "two"},
        # Found by Schemathesis: the offset overflowed PostgreSQL's bigint, a 500.
        {"page": 10**30},
    ],
)
def test_list_refuses_bad_parameters_with_422(api, alice_token, query):
    response = api.get("/api/photos", token=alice_token, query=query)
    assert response.status_code == 422
    assert response.json()["detail"].startswith(next(iter(query)) + ": ")


def test_list_page_queries_do_not_grow_with_the_page(
    api, alice, alice_token, django_assert_max_num_queries
):
    for i in range(6):
        stored_photo(alice, f"{i}.jpg", size=(50 + i, 50))
    with django_assert_max_num_queries(4):  # token, last use, count, page (owners joined)
        api.get("/api/photos", token=alice_token)


def test_detail_shows_status_metadata_and_links(api, alice, alice_token):
    from tests.workers.embedding.test_metadata import exif_with

    data = encode(make_image(size=(300, 200)), exif=exif_with(offset="+02:00", gps=True))
    photo = photo_create(owner=alice, file=upload_file("paris.jpg", data)).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY}

    response = api.get(f"/api/photos/{photo.pk}", token=alice_token)

    body = response.json()
    assert response.status_code == 200
    assert {key: body[key] for key in ("id", "filename", "owner", "status", "format")} == {
        "id": photo.pk,
        "filename": "paris.jpg",
        "owner": "alice",
        "status": "ready",
        "format": "JPEG",
    }
    assert (body["width"], body["height"]) == (300, 200)
    assert body["taken_at"] == "2024-07-14T16:30:05Z"
    assert (body["camera_make"], body["camera_model"]) == ("Fujifilm", "X100V")
    assert (body["latitude"], body["longitude"]) == (48.8582222, -2.2945)
    assert body["files"] == {
        **{
            kind: f"http://testserver/api/photos/{photo.pk}/{kind}"
            for kind in ("thumbnail", "preview", "original")
        },
        "motion": None,  # not a Live Photo
    }
    stored = PhotoTag.objects.filter(photo=photo).order_by("-score", "name")
    assert body["tags"] == [{"name": tag.name, "score": tag.score} for tag in stored]
    assert body["tags"]  # the worker tags every photo it embeds


def test_detail_of_a_failed_photo_gives_the_reason(api, alice, alice_token):
    from tests.search.photos.test_bad_input import truncated_jpeg

    photo = photo_create(owner=alice, file=upload_file("half.jpg", truncated_jpeg())).photo
    assert embed_waiting() == {photo.pk: Photo.Status.FAILED}

    body = api.get(f"/api/photos/{photo.pk}", token=alice_token).json()

    assert body["status"] == "failed"
    assert body["failure_reason"].startswith("the image data is damaged or incomplete")
    assert body["files"]["thumbnail"] is None


def test_detail_of_an_unknown_photo_is_404(api, alice_token):
    response = api.get("/api/photos/999999", token=alice_token)
    assert (response.status_code, response.json()) == (404, {"detail": "No photo 999999."})


def test_files_are_streamed_with_type_and_name(api, alice, alice_token):
    photo = ready_photo(alice, "beach day.png", size=(320, 240))
    Photo.objects.filter(pk=photo.pk).update(image_format="PNG")

    for kind, longest_side in [("thumbnail", 320), ("preview", 320)]:
        response = api.get(f"/api/photos/{photo.pk}/{kind}", token=alice_token)
        assert (response.status_code, response["Content-Type"]) == (200, "image/jpeg")
        assert response["Content-Disposition"] == f'inline; filename="beach day-{kind}.jpg"'
        served = Image.open(io.BytesIO(b"".join(response.streaming_content)))
        assert max(served.size) == longest_side

    response = api.get(f"/api/photos/{photo.pk}/original", token=alice_token)
    assert (response["Content-Type"], response["Content-Disposition"]) == (
        "image/png",
        'inline; filename="beach day.png"',
    )
    assert b"".join(response.streaming_content) == photo.file.open("rb").read()
    download = api.get(
        f"/api/photos/{photo.pk}/original", token=alice_token, query={"download": "true"}
    )
    assert download["Content-Disposition"] == 'attachment; filename="beach day.png"'


def test_a_thumbnail_not_made_yet_is_404_with_the_reason(api, alice, alice_token):
    photo = stored_photo(alice)
    response = api.get(f"/api/photos/{photo.pk}/thumbnail", token=alice_token)
    assert (response.status_code, response.json()) == (
        404,
        {"detail": "The thumbnail is not made yet."},
    )


def test_files_need_a_token(api, alice):
    photo = ready_photo(alice)
    for kind in ("thumbnail", "preview", "original"):
        assert api.get(f"/api/photos/{photo.pk}/{kind}").status_code == 401


def test_me_names_the_caller_with_counts(api, alice, alice_token, bob):
    stored_photo(alice, "1.jpg", color="red")
    failed = stored_photo(alice, "2.jpg", color="blue")
    Photo.objects.filter(pk=failed.pk).update(status="failed", failure_reason="x")
    stored_photo(bob, "3.jpg", color="red")

    response = api.get("/api/me", token=alice_token)

    assert response.json() == {
        "username": "alice",
        "is_staff": False,
        "photos": 2,
        "photos_by_status": {"pending": 1, "processing": 0, "ready": 0, "failed": 1},
        "albums": 0,
        "shared_albums": 0,
    }
    assert Photo.objects.aggregate(n=Count("id"))["n"] == 3


def test_delete_removes_the_photo_its_files_and_its_album_places(
    api, alice, alice_token, django_capture_on_commit_callbacks
):
    from search.albums.services import album_add_photos, album_create
    from search.models import Album, Embedding, PhotoTag

    photo = stored_photo(alice, "a.jpg", color="red")
    other = stored_photo(alice, "b.jpg", color="blue")
    ready_photos(photo, other)
    album = album_create(owner=alice, name="Trip")
    album_add_photos(album=album, photo_ids=[photo.pk, other.pk])
    storage = photo.file.storage
    names = [photo.file.name, photo.thumbnail.name, photo.preview.name]

    with django_capture_on_commit_callbacks(execute=True):
        response = api.delete(f"/api/photos/{photo.pk}", token=alice_token)

    assert (response.status_code, response.content) == (204, b"")
    assert not Photo.objects.filter(pk=photo.pk).exists()
    assert not Embedding.objects.filter(photo_id=photo.pk).exists()
    assert not PhotoTag.objects.filter(photo_id=photo.pk).exists()
    assert [storage.exists(name) for name in names] == [False, False, False]
    assert list(Album.objects.get(pk=album.pk).photos.all()) == [other]
    assert storage.exists(other.file.name)
    again = api.delete(f"/api/photos/{photo.pk}", token=alice_token)
    assert (again.status_code, again.json()) == (404, {"detail": f"No photo {photo.pk}."})


def test_delete_is_only_for_the_owner_not_for_those_who_see_it(
    api, alice, bob, bob_token, staff_token
):
    from search.albums.services import album_add_photos, album_create, album_share

    photo = ready_photo(alice)
    album = album_create(owner=alice, name="Shared")
    album_add_photos(album=album, photo_ids=[photo.pk])
    album_share(album=album, usernames=["bob"])
    assert api.get(f"/api/photos/{photo.pk}", token=bob_token).status_code == 200

    for token in (bob_token, staff_token):
        response = api.delete(f"/api/photos/{photo.pk}", token=token)
        assert (response.status_code, response.json()) == (404, {"detail": f"No photo {photo.pk}."})

    photo.refresh_from_db()
    assert (photo.owner, photo.status) == (alice, "ready")
    assert photo.file.storage.exists(photo.file.name)


def test_delete_of_an_id_no_photo_has_is_404(api, alice_token):
    for pk in (999999, 2**63 + 5):
        response = api.delete(f"/api/photos/{pk}", token=alice_token)
        assert (response.status_code, response.json()) == (404, {"detail": f"No photo {pk}."})
