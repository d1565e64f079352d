"""Searching by place: the country and city filters with their counts, place names in the
query, on the page and the API; the real geocoder, database and demo model."""

import pytest
from django.urls import reverse

from search.albums.services import album_add_photos, album_create, album_share
from search.models import Photo
from search.retrieval.choices import search_choices_for
from search.retrieval.query import SearchFilters, Strictness
from search.retrieval.selectors import photo_search
from tests.pipeline import embed_waiting
from tests.places_photos import upload_placed
from workers.active_engine import get_engine

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(alice) -> dict[str, Photo]:
    photos = upload_placed(alice)
    assert set(embed_waiting().values()) == {Photo.Status.READY}
    return {key: Photo.objects.get(pk=photo.pk) for key, photo in photos.items()}


def keys(hits, library):
    by_pk = {photo.pk: key for key, photo in library.items()}
    return sorted(by_pk[hit.photo.pk] for hit in hits)


PORTUGUESE = ["blue-star", "green-square", "red-circle", "yellow-circle"]


def test_country_and_city_filters_keep_only_photos_from_there(alice, bob, library):
    def found(**filters):
        outcome = photo_search(
            user=alice,
            text="a picture",
            filters=SearchFilters(**filters),
            strictness=Strictness.ALL,
        )
        return keys(outcome.hits, library)

    assert found(country="PT") == PORTUGUESE
    assert found(city="Lisbon") == ["blue-star", "green-square", "red-circle"]
    assert found(country="FR", city="Nice") == ["blue-circle"]
    assert found(country="FR", city="Lisbon") == []
    # Bob sees none of Alice's places.
    assert search_choices_for(user=bob, model_id=get_engine().model_id).places == []


def test_the_choices_count_the_photos_of_each_place_the_viewer_sees(alice, bob, library):
    album = album_create(owner=alice, name="Porto")
    album_add_photos(album=album, photo_ids=[library["yellow-circle"].pk])
    album_share(album=album, usernames=["bob"])
    model_id = get_engine().model_id

    mine = search_choices_for(user=alice, model_id=model_id)
    bobs = search_choices_for(user=bob, model_id=model_id)

    assert [(p.country_code, p.count) for p in mine.countries] == [
        ("PT", 4),
        ("FR", 2),
        ("US", 1),
    ]
    assert sorted((p.city, p.count) for p in mine.cities) == [
        ("Lisbon", 3),
        ("Manhattan", 1),
        ("Nice", 1),
        ("Paris", 1),
        ("Porto", 1),
    ]
    assert [(p.label, p.count) for p in bobs.places] == [("Portugal", 1), ("Porto, Portugal", 1)]


def test_a_place_named_in_the_query_filters_and_the_rest_is_the_description(alice, library):
    outcome = photo_search(user=alice, text="a red circle in Lisbon", strictness=Strictness.ALL)

    assert outcome.place is not None
    assert (outcome.place.place.label, outcome.place.remainder) == (
        "Lisbon, Portugal",
        "a red circle",
    )
    assert keys(outcome.hits, library) == ["blue-star", "green-square", "red-circle"]
    assert outcome.hits[0].photo == library["red-circle"] and outcome.scored

    literal = photo_search(
        user=alice, text="a red circle in Lisbon", strictness=Strictness.ALL, place_words=False
    )

    assert literal.place is None and len(literal.hits) == len(library)
    # An ordinary word is not taken for Nice, though the library has photos from there.
    nice = photo_search(user=alice, text="a nice blue circle", strictness=Strictness.ALL)
    assert nice.place is None and len(nice.hits) == len(library)


def test_a_query_that_is_only_a_place_lists_its_photos_newest_first(alice, library):
    outcome = photo_search(user=alice, text="photos from Portugal")

    assert outcome.place is not None and outcome.place.place.label == "Portugal"
    assert not outcome.scored and outcome.min_score is None
    assert keys(outcome.hits, library) == PORTUGUESE


def test_the_page_has_the_filters_with_counts_and_a_removable_place(alice_client, library):
    page = alice_client.get(reverse("search:home"), {"q": "a red circle in Lisbon"})
    html = page.content.decode()

    assert page.status_code == 200
    assert '<option value="PT">Portugal (4)</option>' in html
    assert '<option value="Lisbon">Lisbon, Portugal (3)</option>' in html
    assert "in Lisbon, Portugal" in html and "data-place-chip" in html
    assert "as_typed=1" in html

    literal = alice_client.get(
        reverse("search:home"), {"q": "a red circle in Lisbon", "as_typed": "1"}
    ).content.decode()
    assert "data-place-chip" not in literal

    filtered = alice_client.get(
        reverse("search:home"), {"q": "a picture", "country": "FR", "strictness": "all"}
    ).content.decode()
    assert filtered.count('class="tile"') == 2


def test_the_photo_page_names_the_place(alice_client, library):
    html = alice_client.get(
        reverse("search:photo_detail", args=[library["blue-circle"].pk])
    ).content.decode()

    assert "Nice, Provence-Alpes-Côte d&#x27;Azur, France" in html
    assert "?q=in+Nice" in html


def test_the_api_filters_by_place_and_says_which_place_the_words_named(api, alice_token, library):
    by_country = api.get(
        "/api/search",
        token=alice_token,
        query={"q": "a picture", "country": "pt", "strictness": "all"},
    ).json()
    named = api.get("/api/search", token=alice_token, query={"q": "Nice"}).json()
    photo = api.get(f"/api/photos/{library['red-circle'].pk}", token=alice_token).json()
    bad = api.get("/api/search", token=alice_token, query={"q": "x", "country": "1!"})

    assert sorted(hit["photo"]["place"]["country_code"] for hit in by_country["hits"]) == ["PT"] * 4
    assert named["place"] == {
        "country_code": "FR",
        "country": "France",
        "city": "Nice",
        "label": "Nice, France",
        "words": "Nice",
        "remainder": "",
    }
    assert named["scored"] is False and [h["score"] for h in named["hits"]] == [None]
    assert photo["place"] == {
        "country_code": "PT",
        "country": "Portugal",
        "region": "Lisbon",
        "city": "Lisbon",
    }
    assert bad.status_code == 422
