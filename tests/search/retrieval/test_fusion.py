"""One ranking from CLIP and the text read in photos: the demo model, real PostgreSQL full-text
search (the embedded server has no pg_trgm: the prefix-only setup)."""

import pytest

from search.models import Photo, PhotoText
from search.retrieval.fusion import Signal, fuse
from search.retrieval.query import Strictness, parse_query
from search.retrieval.selectors import SearchError, photo_search
from search.text.selectors import text_terms, trigram_available
from search.text.services import photo_text_store
from tests.search.retrieval.test_search import embed, scene, upload
from workers.embedding.ocr import TextBox, TextReading

pytestmark = pytest.mark.django_db


def give_text(photo: Photo, *words: str) -> None:
    reading = TextReading(
        engine="test",
        words=tuple(
            TextBox(text=word, confidence=0.9, box=(0.1 * i, 0.1, 0.1 * i + 0.08, 0.2))
            for i, word in enumerate(words)
        ),
    )
    photo_text_store(photo_id=photo.pk, reading=reading)


@pytest.fixture
def library(alice):
    """Red circles, blue squares and green stars; one blue square shows a Tesco receipt, one
    green star a café sign, one red circle the words "booking code AB12CD"."""
    photos = {}
    for colour, shape in (("red", "circle"), ("blue", "square"), ("green", "star")):
        for k in range(3):
            photos[(colour, shape, k)] = upload(
                alice, scene(colour, shape, seed=k, background="black" if k else "white")
            )
    embed(*photos.values())
    PhotoText.objects.bulk_create([PhotoText(photo=photo) for photo in photos.values()])
    for photo in photos.values():
        give_text(photo)  # read, no text
    give_text(photos[("blue", "square", 2)], "TESCO", "Receipt", "TOTAL", "4.20")
    give_text(photos[("green", "star", 1)], "Café", "Lisboa")
    give_text(photos[("red", "circle", 2)], "booking", "code", "AB12CD")
    return photos


def ids(outcome):
    return [hit.photo.pk for hit in outcome.hits]


def test_a_word_seen_only_in_a_picture_finds_it_first(alice, library):
    receipt = library[("blue", "square", 2)]
    outcome = photo_search(user=alice, text="tesco")
    assert ids(outcome)[0] == receipt.pk
    assert outcome.hits[0].matched == ("tesco",)
    assert outcome.text_matches == 1
    # The cut-off is on the fused score: CLIP alone does not find it a good match.
    assert outcome.hits[0].clip_score < outcome.min_score <= outcome.hits[0].score


def test_text_and_clip_together_rank_the_photo_matching_both_first(alice, library):
    receipt = library[("blue", "square", 2)]
    outcome = photo_search(user=alice, text="tesco blue square", strictness=Strictness.ALL)
    assert ids(outcome)[0] == receipt.pk
    # The other blue squares follow, above everything else.
    blue = {library[("blue", "square", k)].pk for k in range(3)}
    assert set(ids(outcome)[:3]) == blue


def test_a_query_no_text_matches_ranks_as_clip_alone(alice, library):
    outcome = photo_search(user=alice, text="red circles", strictness=Strictness.ALL)
    assert outcome.text_matches == 0
    assert all(hit.clip_score is None and hit.matched == () for hit in outcome.hits)
    scores = [hit.score for hit in outcome.hits]
    assert scores == sorted(scores, reverse=True)
    red = {library[("red", "circle", k)].pk for k in range(3)}
    assert set(ids(outcome)[:3]) == red


def test_accents_and_case_are_folded(alice, library):
    cafe = library[("green", "star", 1)]
    for query in ("CAFE", "café", "Cafe lisboa"):
        assert ids(photo_search(user=alice, text=query))[0] == cafe.pk, query


def test_prefixes_match_but_substrings_need_pg_trgm(alice, library):
    receipt = library[("blue", "square", 2)]
    assert ids(photo_search(user=alice, text="text: tesc")) == [receipt.pk]
    assert not trigram_available()  # the embedded PostgreSQL: prefix matching only
    assert ids(photo_search(user=alice, text="text: esco")) == []


def test_quoted_phrases_match_exact_text(alice, library):
    booking = library[("red", "circle", 2)]
    assert ids(photo_search(user=alice, text='text: "booking code"')) == [booking.pk]
    assert ids(photo_search(user=alice, text='text: "code booking"')) == []
    # A phrase is exact: no prefix matching inside it.
    assert ids(photo_search(user=alice, text='text: "book code"')) == []


def test_text_prefix_searches_only_ocr_text(alice, library):
    receipt = library[("blue", "square", 2)]
    outcome = photo_search(user=alice, text="text: receipt total")
    assert outcome.text_only and ids(outcome) == [receipt.pk]
    assert outcome.hits[0].score == 1.0 and outcome.hits[0].matched == ("receipt", "total")
    # Half the words: shown at the normal cut-off, not at strict.
    assert ids(photo_search(user=alice, text="text: receipt lisboa")) != []
    strict = photo_search(user=alice, text="text: receipt lisboa", strictness=Strictness.STRICT)
    assert ids(strict) == [] and strict.hidden == 2
    with pytest.raises(SearchError, match="which words"):
        photo_search(user=alice, text="text: ")


def test_text_matches_respect_visibility(bob, library):
    assert ids(photo_search(user=bob, text="text: tesco")) == []
    assert ids(photo_search(user=bob, text="tesco", strictness=Strictness.ALL)) == []


def test_stop_words_do_not_match_on_their_own():
    assert text_terms(text="a receipt from tesco").words == ("receipt", "tesco")
    parsed = parse_query('text: "Booking Code" hotel -beach')
    assert parsed.text_only and parsed.phrases == ("Booking Code",)
    terms = text_terms(text=parsed.positive, phrases=parsed.phrases)
    assert terms.words == ("hotel",) and terms.phrases == (("booking", "code"),)


def test_fuse_adds_each_signal_in_units_of_the_cut_off():
    text = Signal(name="text", strengths={2: 1.0, 3: 0.5})
    place = Signal(name="place", strengths={3: 1.0}, weight=0.5)
    fused = fuse(clip={1: 0.31, 2: 0.10, 3: 0.12}, signals=[text, place], unit=0.2)
    assert [(row.photo_id, round(row.score, 3)) for row in fused] == [
        (3, 0.32), (1, 0.31), (2, 0.3)
    ]  # fmt: skip
    assert fused[0].contributions == {"text": 0.1, "place": 0.1}
