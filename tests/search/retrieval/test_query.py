from datetime import date

import numpy as np
import pytest

from search.retrieval.query import ParsedQuery, SearchFilters, combine_vectors, parse_query


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("beach at dusk", ParsedQuery("beach at dusk")),
        ("beach -people", ParsedQuery("beach", ("people",))),
        ('stars -"red star" -blue', ParsedQuery("stars", ("red star", "blue"))),
        (
            '"two red circles" on blue',
            ParsedQuery("two red circles on blue", phrases=("two red circles",)),
        ),
        ("text: Tesco -beach", ParsedQuery("Tesco", ("beach",), text_only=True)),
        ("TEXT:tesco", ParsedQuery("tesco", text_only=True)),
        ("find text: here", ParsedQuery("find text: here")),  # only at the start
        ("  well-lit  room - ", ParsedQuery("well-lit room")),  # a lone minus is no term
        ("-people", ParsedQuery("", ("people",))),
        ("", ParsedQuery("")),
    ],
)
def test_parse_query_splits_description_and_excluded_terms(text, expected):
    assert parse_query(text) == expected


def unit(*values):
    vector = np.array(values, dtype=np.float32)
    return vector / np.linalg.norm(vector)


def test_text_alone_is_its_own_query():
    text = unit(1, 2, 3)
    np.testing.assert_allclose(combine_vectors(text=text), text, atol=1e-6)


def test_image_and_text_pull_the_query_between_them_with_the_text_weighted():
    image, text = unit(1, 0, 0), unit(0, 1, 0)
    even = combine_vectors(image=image, text=text)
    weighted = combine_vectors(image=image, text=text, text_weight=2.0)
    np.testing.assert_allclose(even, unit(1, 1, 0), atol=1e-6)
    assert float(weighted @ text) > float(even @ text) > 0
    assert float(np.linalg.norm(weighted)) == pytest.approx(1.0)


def test_a_negative_term_pushes_the_query_away_from_it():
    people, beach = unit(1, 0, 0), unit(1, 1, 0)
    query = combine_vectors(text=beach, negatives=[people])
    assert float(query @ people) < float(beach @ people)
    assert float(np.linalg.norm(query)) == pytest.approx(1.0)


def test_a_query_with_nothing_left_is_refused():
    with pytest.raises(ValueError, match="needs a description or an image"):
        combine_vectors()
    same = unit(1, 0)
    with pytest.raises(ValueError, match="cancels itself out"):
        combine_vectors(text=same, negatives=[same, same])


def test_filters_log_only_what_is_set():
    filters = SearchFilters(taken_after=date(2024, 5, 1), camera="X100", has_location=False)
    assert filters.as_log() == {
        "taken_after": "2024-05-01",
        "camera": "X100",
        "has_location": False,
    }
    assert SearchFilters().is_empty and not filters.is_empty
