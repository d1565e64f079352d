"""Place names in a query's words, against the places of a library (no database)."""

import pytest

from search.places.query import KnownPlace, fold, place_in_query

LIBRARY = [
    KnownPlace("PT", "Portugal", count=10),
    KnownPlace("FR", "France", count=6),
    KnownPlace("US", "United States", count=1),
    KnownPlace("BR", "Brazil", count=1),
    KnownPlace("PT", "Portugal", "Lisbon", 6),
    KnownPlace("PT", "Portugal", "Porto", 4),
    KnownPlace("FR", "France", "Nice", 3),
    KnownPlace("FR", "France", "Paris", 3),
    KnownPlace("US", "United States", "New York", 1),
    KnownPlace("BR", "Brazil", "São Paulo", 1),
]


def named(text):
    match = place_in_query(text, LIBRARY)
    return None if match is None else (match.place.label, match.words, match.remainder)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("beach in Lisbon", ("Lisbon, Portugal", "in Lisbon", "beach")),
        ("Lisbon", ("Lisbon, Portugal", "Lisbon", "")),
        ("lisbon", ("Lisbon, Portugal", "lisbon", "")),
        ("LISBON", ("Lisbon, Portugal", "LISBON", "")),
        ("photos from Portugal", ("Portugal", "from Portugal", "")),
        ("red circle from portugal", ("Portugal", "from portugal", "red circle")),
        ("beach in lisbon at sunset", ("Lisbon, Portugal", "in lisbon", "beach at sunset")),
        ("tram Lisbon, old", ("Lisbon, Portugal", "Lisbon", "tram old")),
        ("dog in Nice", ("Nice, France", "in Nice", "dog")),
        ("my Nice trip", ("Nice, France", "Nice", "my trip")),
        ("Nice", ("Nice, France", "Nice", "")),
        ("new york at night", ("New York, United States", "new york", "at night")),
        ("sao paulo", ("São Paulo, Brazil", "sao paulo", "")),
        ("SÃO PAULO skyline", ("São Paulo, Brazil", "SÃO PAULO", "skyline")),
    ],
)
def test_a_place_of_the_library_becomes_the_place_and_the_rest_the_description(text, expected):
    assert named(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "nice dog",  # an adjective, lower case
        "Nice dog",  # the first word of a sentence is capitalised anyway
        "a nice beach",
        "walk in nice weather",  # a preposition, but "nice" qualifies the weather
        "lisbon beach",  # a bare lower-case name among other words: not sure enough
        "beach in Berlin",  # no photos from Berlin
        "-lisbon beach",  # excluded words are not places
        '"in Lisbon" sign',  # nor quoted ones
        "lisbonese pastry",  # whole words only
        "photos",
        "",
    ],
)
def test_ordinary_words_and_places_outside_the_library_stay_words(text):
    assert named(text) is None


def test_a_name_shared_by_two_countries_means_the_one_with_more_photos():
    library = [
        KnownPlace("US", "United States", "Paris", 1),
        KnownPlace("FR", "France", "Paris", 5),
    ]

    match = place_in_query("in Paris", library)

    assert match is not None and match.place.country_code == "FR"


def test_a_city_named_like_its_country_means_the_country():
    library = [KnownPlace("SG", "Singapore", "Singapore", 4), KnownPlace("SG", "Singapore", "", 4)]

    match = place_in_query("hawker centre in Singapore", library)

    assert match is not None and (match.place.city, match.remainder) == ("", "hawker centre")


def test_the_longest_name_wins():
    library = [KnownPlace("US", "United States", "York", 2), *LIBRARY]

    new_york = place_in_query("photos in New York", library)
    york = place_in_query("photos in York", library)

    assert new_york is not None and new_york.place.city == "New York"
    assert york is not None and york.place.city == "York"


def test_folding_drops_case_accents_and_punctuation():
    assert fold("  São-Paulo,  ÉVORA! ") == "sao-paulo evora"
