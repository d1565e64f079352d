import pytest

from search.albums.services import album_add_photos, album_create, album_share
from search.models import Photo, SearchLog
from search.photos.services import photo_create
from search.retrieval.query import SearchFilters, Strictness
from search.retrieval.selectors import photo_search
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers.embedding.images import decode_image

pytestmark = pytest.mark.django_db

SCENES = {
    "red.jpg": dict(color="red", shape="circle"),
    "blue.jpg": dict(color="blue", shape="square", background="yellow"),
    "green.jpg": dict(color="green", shape="triangle", background="black"),
}


@pytest.fixture
def library(alice) -> dict[str, Photo]:
    uploaded = {
        name: photo_create(owner=alice, file=upload_file(name, encode(make_image(**scene)))).photo
        for name, scene in SCENES.items()
    }
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in uploaded.values()}
    return {name: Photo.objects.get(pk=photo.pk) for name, photo in uploaded.items()}


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [hit["photo"]["id"] for hit in response.json()["hits"]]


def test_text_search_answers_what_the_shared_selector_finds(api, alice, alice_token, library):
    response = api.get(
        "/api/search", token=alice_token, query={"q": "a red circle", "strictness": "all"}
    )

    expected = photo_search(user=alice, text="a red circle", strictness=Strictness.ALL)
    body = response.json()
    assert ids(response) == [hit.photo.pk for hit in expected.hits]
    assert ids(response)[0] == library["red.jpg"].pk
    assert [hit["score"] for hit in body["hits"]] == pytest.approx(
        [hit.score for hit in expected.hits]
    )
    assert (body["kind"], body["query"], body["count"], body["min_score"]) == (
        "text",
        "a red circle",
        3,
        None,
    )
    assert body["hits"][0]["photo"]["owner"] == "alice"
    assert body["hits"][0]["photo"]["files"]["thumbnail"].endswith("/thumbnail")


def test_searches_are_logged_as_api_searches(api, alice, alice_token, library):
    api.get(
        "/api/search",
        token=alice_token,
        query={"q": "  a red circle ", "camera": "X100V", "taken_after": "2024-01-01"},
    )

    log = SearchLog.objects.get()
    assert (log.user, log.kind, log.query, log.via_api) == (alice, "text", "a red circle", True)
    assert log.filters == {"taken_after": "2024-01-01", "camera": "X100V"}


def test_the_weak_match_cut_off_applies_and_is_reported(api, alice, alice_token, library):
    response = api.get("/api/search", token=alice_token, query={"q": "a red circle"})

    expected = photo_search(user=alice, text="a red circle")
    body = response.json()
    assert ids(response) == [hit.photo.pk for hit in expected.hits]
    assert body["min_score"] == pytest.approx(expected.min_score)
    assert body["hidden"] == expected.hidden == 3 - len(expected.hits)


def test_search_pages_through_the_ranking(api, alice_token, library):
    query = {"q": "a red circle", "strictness": "all", "page_size": 2}
    first = api.get("/api/search", token=alice_token, query=query)
    second = api.get("/api/search", token=alice_token, query={**query, "page": 2})

    assert (first.json()["count"], len(ids(first)), len(ids(second))) == (3, 2, 1)
    assert set(ids(first)) | set(ids(second)) == {photo.pk for photo in library.values()}


def test_filters_reach_the_selector(api, alice, alice_token, library):
    red, blue = library["red.jpg"], library["blue.jpg"]
    Photo.objects.filter(pk=red.pk).update(camera_model="X100V", latitude=1.0, longitude=2.0)
    album = album_create(owner=alice, name="Blue")
    album_add_photos(album=album, photo_ids=[blue.pk])
    everything = {"q": "a shape", "strictness": "all"}

    def found(**filters):
        response = api.get("/api/search", token=alice_token, query={**everything, **filters})
        return set(ids(response))

    assert found(camera="X100V") == {red.pk}
    assert found(has_location="true") == {red.pk}
    assert found(has_location="false") == {blue.pk, library["green.jpg"].pk}
    assert found(album=album.pk) == {blue.pk}
    assert found(taken_after="2000-01-01") == set()  # the scenes carry no date


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        ({"q": ""}, "Describe a photo or give an image to search with."),
        ({"q": "-people"}, "Say what the photos should show, not only what to leave out."),
    ],
)
def test_a_query_with_nothing_to_look_for_is_400(api, alice_token, library, query, detail):
    response = api.get("/api/search", token=alice_token, query=query)
    assert (response.status_code, response.json()) == (400, {"detail": detail})
    assert not SearchLog.objects.exists()


@pytest.mark.parametrize(
    ("query", "detail"),
    [
        (
            {"taken_after": "2024-05-02", "taken_before": "2024-05-01"},
            "taken_before: is before taken_after",
        ),
        ({"owner": 1}, "owner: only staff can filter by uploader"),
        ({"strictness": "very"}, "strictness: Input should be 'all', 'loose', 'normal' or "),
        ({"taken_after": "yesterday"}, "taken_after: Input should be a valid date or datetime, "),
        ({"q": "x" * 501}, "q: String should have at most 500 characters"),
        ({"page": 10**30}, "page: Input should be less than or equal to 1000000"),
    ],
)
def test_bad_search_parameters_are_422_naming_the_parameter(api, alice_token, query, detail):
    response = api.get("/api/search", token=alice_token, query={"q": "red", **query})
    assert response.status_code == 422
    assert response.json()["detail"].startswith(detail)
    assert not SearchLog.objects.exists()


def test_staff_can_filter_by_uploader(api, alice, bob, staff_token, library):
    bobs = photo_create(owner=bob, file=upload_file("b.jpg", encode(make_image()))).photo
    assert embed_waiting() == {bobs.pk: Photo.Status.READY}
    query = {"q": "a red circle", "strictness": "all"}

    everyone = api.get("/api/search", token=staff_token, query=query)
    only_bob = api.get("/api/search", token=staff_token, query={**query, "owner": bob.pk})

    assert set(ids(everyone)) == {bobs.pk, *(photo.pk for photo in library.values())}
    assert ids(only_bob) == [bobs.pk]
    assert only_bob.json()["hits"][0]["photo"]["owner"] == "bob"


def test_image_search_ranks_the_same_picture_first_and_keeps_nothing(
    api, alice, alice_token, library
):
    data = encode(make_image(**SCENES["green.jpg"]))
    before = Photo.objects.count()

    response = api.post(
        "/api/search/image",
        token=alice_token,
        multipart={"image": upload_file("query.jpg", data), "strictness": "all"},
    )

    expected = photo_search(user=alice, image=decode_image(data), strictness=Strictness.ALL)
    assert ids(response) == [hit.photo.pk for hit in expected.hits]
    assert ids(response)[0] == library["green.jpg"].pk
    assert response.json()["kind"] == "image"
    assert Photo.objects.count() == before
    assert SearchLog.objects.get().kind == "image"


def test_image_search_takes_text_and_filters_as_form_fields(api, alice, alice_token, library):
    data = encode(make_image(**SCENES["green.jpg"]))
    fields = {"q": "red", "strictness": "all", "camera": "X100V"}
    Photo.objects.filter(pk=library["red.jpg"].pk).update(camera_model="X100V")

    response = api.post(
        "/api/search/image",
        token=alice_token,
        multipart={"image": upload_file("q.jpg", data), **fields},
    )

    expected = photo_search(
        user=alice,
        text="red",
        image=decode_image(data),
        filters=SearchFilters(camera="X100V"),
        strictness=Strictness.ALL,
    )
    assert ids(response) == [hit.photo.pk for hit in expected.hits] == [library["red.jpg"].pk]
    assert response.json()["query"] == "red"


def test_image_search_refuses_a_non_image_by_name(api, alice_token):
    response = api.post(
        "/api/search/image", token=alice_token, multipart={"image": upload_file("x.jpg", b"no")}
    )
    assert response.status_code == 400
    assert response.json()["detail"].startswith("x.jpg: not a supported image")


def test_image_search_refuses_an_empty_file_as_empty(api, alice_token):
    # Not "image: Field required": the field was sent (see _empty_files_dropped in
    # test_api_fuzz.py for the one client that gets that answer, and why).
    response = api.post(
        "/api/search/image", token=alice_token, multipart={"image": upload_file("x.jpg", b"")}
    )
    assert (response.status_code, response.json()) == (400, {"detail": "x.jpg: the file is empty"})


def test_image_search_without_an_image_is_422(api, alice_token):
    response = api.post("/api/search/image", token=alice_token, multipart={"q": "red"})
    assert (response.status_code, response.json()["detail"]) == (422, "image: Field required")


def test_similar_leaves_the_photo_itself_out(api, alice, alice_token, library):
    red = library["red.jpg"]

    response = api.get(
        f"/api/photos/{red.pk}/similar", token=alice_token, query={"strictness": "all"}
    )

    expected = photo_search(user=alice, similar_to=red, strictness=Strictness.ALL)
    assert ids(response) == [hit.photo.pk for hit in expected.hits]
    assert red.pk not in ids(response) and len(ids(response)) == 2
    assert response.json()["kind"] == "similar"


def test_similar_starts_from_the_loose_cut_off_like_the_web(api, alice, alice_token, library):
    red = library["red.jpg"]

    default = api.get(f"/api/photos/{red.pk}/similar", token=alice_token).json()
    strict = api.get(
        f"/api/photos/{red.pk}/similar", token=alice_token, query={"strictness": "strict"}
    ).json()

    loose = photo_search(user=alice, similar_to=red, strictness=Strictness.LOOSE)
    assert default["min_score"] == pytest.approx(loose.min_score)
    assert strict["min_score"] > default["min_score"]


def test_similar_to_a_photo_not_ready_yet_is_400(api, alice, alice_token):
    photo = photo_create(owner=alice, file=upload_file("p.jpg", encode(make_image()))).photo

    response = api.get(f"/api/photos/{photo.pk}/similar", token=alice_token)

    assert (response.status_code, response.json()) == (
        400,
        {"detail": "This photo has no vector yet; try again once it is ready."},
    )


def test_a_shared_album_opens_its_photos_to_search_and_detail(api, alice, bob, bob_token, library):
    red = library["red.jpg"]
    album = album_create(owner=alice, name="For Bob")
    album_add_photos(album=album, photo_ids=[red.pk])
    everything = {"q": "a red circle", "strictness": "all"}
    assert ids(api.get("/api/search", token=bob_token, query=everything)) == []

    album_share(album=album, usernames=["bob"])

    assert ids(api.get("/api/search", token=bob_token, query=everything)) == [red.pk]
    assert ids(
        api.get("/api/search", token=bob_token, query={**everything, "album": album.pk})
    ) == [red.pk]
    detail = api.get(f"/api/photos/{red.pk}", token=bob_token).json()
    assert (detail["id"], detail["owner"]) == (red.pk, "alice")
    assert api.get(f"/api/photos/{red.pk}/preview", token=bob_token).status_code == 200
    similar = api.get(f"/api/photos/{red.pk}/similar", token=bob_token, query=everything)
    assert ids(similar) == []  # the only photo he can see is the query itself
    # His own list is his own photos only.
    assert api.get("/api/photos", token=bob_token).json()["count"] == 0
    # Others' photos stay hidden.
    blue = library["blue.jpg"]
    assert api.get(f"/api/photos/{blue.pk}", token=bob_token).status_code == 404


# Found by Schemathesis (test_api_fuzz.py): a NUL reached PostgreSQL as a 500.
@pytest.mark.parametrize("field", ["q", "camera", "tag"])
def test_nul_in_a_search_parameter_is_422_not_500(api, alice_token, field):
    fields = {"q": "red", field: "red\x00"}
    image = upload_file("query.jpg", encode(make_image()))

    by_text = api.get("/api/search", token=alice_token, query=fields)
    by_image = api.post(
        "/api/search/image", token=alice_token, multipart={"image": image, **fields}
    )

    for response in (by_text, by_image):
        assert (response.status_code, response.json()["detail"]) == (
            422,
            f"{field}: Value error, Null characters are not allowed.",
        )
    assert not SearchLog.objects.exists()


def test_a_video_comes_back_once_with_its_best_moment_and_the_show_filter(
    api, alice, alice_token, library
):
    import io

    from tests.search.ingest.test_videos import STORY, embed_video
    from workers.embedding.demo.videos import render_video

    out = io.BytesIO()
    render_video(out, STORY)
    video = photo_create(owner=alice, file=upload_file("clip.mp4", out.getvalue())).photo
    assert embed_video(video) == Photo.Status.READY

    query = {"q": "a red star", "strictness": "all"}
    hits = api.get("/api/search", token=alice_token, query=query).json()["hits"]
    videos = [hit for hit in hits if hit["photo"]["kind"] == "video"]
    assert [hit["photo"]["id"] for hit in videos] == [video.pk]  # once
    assert 3000 <= videos[0]["moment_ms"] < 6000
    assert videos[0]["photo"]["duration_ms"] == pytest.approx(9000, abs=200)
    assert all(hit["moment_ms"] is None for hit in hits if hit["photo"]["kind"] == "photo")

    only_videos = ids(api.get("/api/search", token=alice_token, query={**query, "show": "videos"}))
    only_photos = ids(api.get("/api/search", token=alice_token, query={**query, "show": "photos"}))
    assert only_videos == [video.pk]
    assert set(only_photos) == {photo.pk for photo in library.values()}
    bad = api.get("/api/search", token=alice_token, query={**query, "show": "films"})
    assert bad.status_code == 422
    assert bad.json()["detail"].startswith("show: Input should be")
