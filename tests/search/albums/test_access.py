"""Who may see what, through every web URL that names a photo or an album."""

import pytest
from django.urls import reverse

from search.models import Album, Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db

PHOTO_PAGES = [
    "search:photo_detail",
    "search:photo_similar",
    "search:photo_thumbnail",
    "search:photo_preview",
    "search:photo_original",
]
ALBUM_ACTIONS = ["rename", "share", "unshare", "remove", "delete"]


@pytest.fixture
def alices_photo(alice):
    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY}
    return photo


@pytest.fixture
def alices_album(alice, alices_photo):
    album = Album.objects.create(owner=alice, name="Holiday")
    album.photos.add(alices_photo)
    return album


@pytest.mark.parametrize("name", PHOTO_PAGES)
def test_another_users_photo_is_not_found(client, bob, alices_photo, name):
    client.force_login(bob)
    assert client.get(reverse(name, args=[alices_photo.pk])).status_code == 404
    assert client.get(reverse(name, args=[alices_photo.pk + 1000])).status_code == 404


@pytest.mark.parametrize("name", PHOTO_PAGES)
def test_a_shared_album_opens_its_photos_to_the_people_it_is_shared_with(
    client, bob, alices_photo, alices_album, name
):
    alices_album.shared_with.add(bob)
    client.force_login(bob)
    assert client.get(reverse(name, args=[alices_photo.pk])).status_code in (200, 302)


@pytest.mark.parametrize("name", PHOTO_PAGES)
def test_staff_see_every_photo(client, staff, alices_photo, name):
    client.force_login(staff)
    assert client.get(reverse(name, args=[alices_photo.pk])).status_code in (200, 302)


def test_an_album_is_private_until_shared_and_read_only_when_shared(
    client, bob, alices_album, alices_photo
):
    client.force_login(bob)
    detail = reverse("search:album_detail", args=[alices_album.pk])
    assert client.get(detail).status_code == 404
    assert "Holiday" not in client.get(reverse("search:album_list")).content.decode()

    alices_album.shared_with.add(bob)
    page = client.get(detail)
    assert page.status_code == 200 and "shared with you by alice" in page.content.decode()
    assert "Holiday" in client.get(reverse("search:album_list")).content.decode()
    for action in ALBUM_ACTIONS:
        url = reverse("search:album_edit", args=[alices_album.pk, action])
        response = client.post(url, {"name": "Mine", "usernames": "bob", "photo": alices_photo.pk})
        assert response.status_code == 404, action
    alices_album.refresh_from_db()
    assert (alices_album.name, alices_album.photos.count()) == ("Holiday", 1)


def test_photos_of_others_cannot_be_added_to_ones_own_album(client, bob, alices_photo):
    bobs_album = Album.objects.create(owner=bob, name="Bob's")
    client.force_login(bob)
    client.post(reverse("search:album_add"), {"album": bobs_album.pk, "photo": alices_photo.pk})
    assert bobs_album.photos.count() == 0


def test_one_cannot_add_to_another_users_album(client, alice, bob, alices_album):
    bobs = photo_create(owner=bob, file=upload_file("b.jpg", encode(make_image()))).photo
    client.force_login(bob)
    response = client.post(
        reverse("search:album_add"), {"album": alices_album.pk, "photo": bobs.pk}
    )
    assert response.status_code == 404
    assert list(alices_album.photos.values_list("pk", flat=True)) != [bobs.pk]


def test_album_owner_creates_fills_shares_and_deletes(alice_client, alice, bob, alices_photo):
    alice_client.post(reverse("search:album_list"), {"name": "Beach 2024"})
    album = Album.objects.get(owner=alice, name="Beach 2024")
    response = alice_client.post(
        reverse("search:album_add"), {"album": album.pk, "photo": alices_photo.pk}
    )
    assert response.status_code == 302 and list(album.photos.all()) == [alices_photo]

    share = reverse("search:album_edit", args=[album.pk, "share"])
    response = alice_client.post(share, {"usernames": "bob, nobody"}, follow=True)
    assert "Cannot share with: nobody" in response.content.decode()
    assert album.shared_with.count() == 0  # nothing is shared when a name is wrong
    alice_client.post(share, {"usernames": "bob"})
    assert list(album.shared_with.all()) == [bob]

    duplicate = alice_client.post(reverse("search:album_list"), {"name": "Beach 2024"})
    assert "already have an album called" in duplicate.content.decode()

    alice_client.post(reverse("search:album_edit", args=[album.pk, "delete"]))
    assert not Album.objects.filter(pk=album.pk).exists()
    assert Photo.objects.filter(pk=alices_photo.pk).exists()  # photos outlive their albums


def test_photo_page_shows_metadata_map_link_and_similar_photos(alice_client, alice, alices_photo):
    Photo.objects.filter(pk=alices_photo.pk).update(
        camera_make="FUJIFILM", camera_model="X100V", latitude=48.85837, longitude=2.294481
    )
    other = photo_create(owner=alice, file=upload_file("b.png", encode(make_image(), "PNG")))
    assert embed_waiting() == {other.photo.pk: Photo.Status.READY}

    page = alice_client.get(reverse("search:photo_detail", args=[alices_photo.pk]))
    html = page.content.decode()

    assert "FUJIFILM X100V" in html
    assert "openstreetmap.org/?mlat=48.858370&amp;mlon=2.294481" in html
    assert reverse("search:photo_preview", args=[alices_photo.pk]) in html
    similar = [hit.photo for hit in page.context["similar"]]
    assert similar == [other.photo]


def test_search_results_are_paged_in_a_stable_order(alice_client, alice, monkeypatch):
    from search.retrieval import views

    monkeypatch.setattr(views, "RESULTS_PER_PAGE", 3)
    for i in range(7):
        color = ["red", "blue", "green", "yellow", "purple", "orange", "black"][i]
        photo_create(
            owner=alice, file=upload_file(f"{i}.png", encode(make_image(color=color), "PNG"))
        )
    assert list(embed_waiting().values()) == [Photo.Status.READY] * 7
    query = {"q": "a red circle", "strictness": "all"}

    pages = [
        [hit.photo.pk for hit in alice_client.get("/", {**query, "page": n}).context["page"]]
        for n in (1, 2, 3)
    ]
    everything = [hit.photo.pk for hit in alice_client.get("/", query).context["outcome"].hits]

    assert [len(page) for page in pages] == [3, 3, 1]
    assert pages[0] + pages[1] + pages[2] == everything
    assert "page=2" in alice_client.get("/", query).content.decode()
