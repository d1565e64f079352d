from dataclasses import dataclass

import numpy as np
import pytest

from workers.embedding.demo.scenes import Scene, render
from workers.embedding.demo.training.evaluate import evaluate_tags
from workers.embedding.model import DEMO_MODEL_NAME, DEMO_PRETRAINED, ModelSpec, load_engine
from workers.embedding.tags import (
    DEFAULT_TEMPLATES,
    DEMO_VOCABULARY,
    GENERAL_VOCABULARY,
    Tag,
    VocabularyError,
    build_tagger,
    forget_taggers,
    load_vocabulary,
    logit_scale_of,
    parse_vocabulary,
    tagger_for,
)

VOCABULARY = """
# colours and shapes
template: a photo of {}.
template: a picture of {}.

[colour]
template: a {} shape
red
blue: blue | navy

[shape]
min score: 0.6
circle: a circle
star: a star
(blob): a blob
"""


@pytest.fixture(autouse=True)
def _no_cached_taggers():
    forget_taggers()
    yield
    forget_taggers()


# --- the file format ------------------------------------------------------------------------


def test_a_vocabulary_has_groups_tags_phrases_templates_and_distractors():
    vocabulary = parse_vocabulary(VOCABULARY)

    colour, shape = vocabulary.groups
    assert (colour.name, colour.templates, colour.min_score) == ("colour", ("a {} shape",), None)
    assert colour.tags == (Tag("red", ("red",)), Tag("blue", ("blue", "navy")))
    assert (shape.name, shape.templates, shape.min_score) == (
        "shape",
        ("a photo of {}.", "a picture of {}."),
        0.6,
    )
    assert shape.tags[2] == Tag("blob", ("a blob",), hidden=True)
    assert colour.texts(colour.tags[1]) == ["a blue shape", "a navy shape"]
    assert vocabulary.tag_names() == ["red", "blue", "circle", "star"]
    assert [vocabulary.group_of(name) for name in ("star", "green", "blob")] == [
        "shape",
        None,
        None,
    ]


def test_without_templates_the_defaults_apply():
    vocabulary = parse_vocabulary("[shape]\ncircle\nstar")
    assert vocabulary.groups[0].templates == DEFAULT_TEMPLATES


def test_the_digest_follows_meaning_not_layout():
    same = parse_vocabulary(VOCABULARY.replace("# colours and shapes", "# edited\n\n"))
    different = parse_vocabulary(VOCABULARY.replace("navy", "dark blue"))
    assert same.digest == parse_vocabulary(VOCABULARY).digest
    assert different.digest != same.digest


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("red\n[colour]\nblue", ", line 1: a tag must come after a [group] header: 'red'"),
        ("[colour\nred\nblue", ", line 1: a group header is a name in square brackets: '[colour'"),
        ("[ ]\nred", ", line 1: a group header is a name in square brackets: '[ ]'"),
        (
            "[a]\nx\ny\n[a]\nz\nw",
            ", line 4: the group [a] appears twice: '[a]'",
        ),
        (
            "template: a photo of\n[a]\nx\ny",
            ", line 1: a template needs exactly one {}, where the phrase goes: "
            "'template: a photo of'",
        ),
        (
            "[a]\ntemplate: {} and {}\nx\ny",
            ", line 2: a template needs exactly one {}, where the phrase goes: "
            "'template: {} and {}'",
        ),
        (
            "min score: 0.5\n[a]\nx\ny",
            ", line 1: 'min score' belongs inside a group: 'min score: 0.5'",
        ),
        (
            "[a]\nmin score: high\nx\ny",
            ", line 2: 'min score' needs a number between 0 and 1: 'min score: high'",
        ),
        (
            "[a]\nmin score: 1.5\nx\ny",
            ", line 2: 'min score' needs a number between 0 and 1: 'min score: 1.5'",
        ),
        (
            "[a]\nx: one || two\ny",
            ", line 2: a phrase is empty (two '|' in a row, or nothing after ':'): 'x: one || two'",
        ),
        (
            "[a]\nx:\ny",
            ", line 2: a phrase is empty (two '|' in a row, or nothing after ':'): 'x:'",
        ),
        (
            "[a]\nx|y\nz",
            ", line 2: a tag name is a word or words, without brackets, braces, '|' or '#': 'x|y'",
        ),
        ("[a]\nx\nx: again", ", line 3: the tag 'x' appears twice in [a]: 'x: again'"),
        (
            "[a]\nx\ny\n[b]\nz\nx",
            ", line 6: the tag 'x' is already in [a]; tag names are unique across groups: 'x'",
        ),
        ("[a]\nx: a {x}\ny", ", line 2: a phrase may not contain braces: 'x: a {x}'"),
        (
            "[a]\n" + "x" * 101 + "\ny",
            ", line 2: a tag name has at most 100 characters: '" + "x" * 101 + "'",
        ),
        ("# nothing\n", ": no [group] with tags in the tag vocabulary"),
        (
            "[a]\nx\n[b]\ny\nz",
            ", line 1: the group [a] needs at least two tags to compete, one of them not in "
            "parentheses",
        ),
        (
            "[a]\n(x)\n(y)",
            ", line 1: the group [a] needs at least two tags to compete, one of them not in "
            "parentheses",
        ),
    ],
)
def test_a_bad_vocabulary_says_where_and_why(text, message):
    with pytest.raises(VocabularyError) as error:
        parse_vocabulary(text, source="tags.txt")
    assert str(error.value) == "tags.txt" + message


def test_distractors_may_share_a_name_across_groups():
    vocabulary = parse_vocabulary("[a]\nx\n(other)\n[b]\ny\n(other)")
    assert vocabulary.tag_names() == ["x", "y"]


def test_an_unreadable_vocabulary_file_is_named(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(VocabularyError, match=r"^cannot read the tag vocabulary .*nope\.txt: "):
        load_vocabulary(missing)
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("[couleur]\nrouge\nbleu ciel é".encode("latin-1"))
    with pytest.raises(VocabularyError, match=r"latin1\.txt: 'utf-8' codec can't decode"):
        load_vocabulary(latin1)


@pytest.mark.parametrize("path", [GENERAL_VOCABULARY, DEMO_VOCABULARY])
def test_the_shipped_vocabularies_load(path):
    vocabulary = load_vocabulary(path)
    assert len(vocabulary.tag_names()) == len(set(vocabulary.tag_names()))
    assert len(vocabulary.tag_names()) >= (100 if path == GENERAL_VOCABULARY else 20)


def test_the_general_vocabulary_has_what_people_look_for():
    names = set(load_vocabulary(GENERAL_VOCABULARY).tag_names())
    expected = {"beach", "mountain", "snow", "city", "food", "dog", "cat", "car", "sunset",
                "night", "portrait", "document", "screenshot"}  # fmt: skip
    assert expected <= names


# --- scoring, with a deterministic stand-in for the text tower ----------------------------

AXES = ["red", "blue", "navy", "circle", "star", "blob"]


def stand_in_encoder(calls: list[list[str]]):
    """Each text points along the axes of the words it contains (unit length)."""

    def encode(texts):
        calls.append(list(texts))
        rows = []
        for text in texts:
            row = np.array([float(word in text.replace(".", " ").split()) for word in AXES]) + 0.01
            rows.append(row / np.linalg.norm(row))
        return np.array(rows, dtype=np.float32)

    return encode


def image(**weights: float) -> np.ndarray:
    row = np.array([weights.get(word, 0.0) for word in AXES], dtype=np.float32)
    return row / np.linalg.norm(row)


def softmax(logits) -> np.ndarray:
    weights = np.exp(np.asarray(logits) - np.max(logits))
    return weights / weights.sum()


def test_tag_vectors_average_every_template_and_phrase():
    calls: list[list[str]] = []
    tagger = build_tagger(parse_vocabulary(VOCABULARY), stand_in_encoder(calls), logit_scale=10)

    assert calls == [
        ["a red shape", "a blue shape", "a navy shape", "a photo of a circle.",
         "a picture of a circle.", "a photo of a star.", "a picture of a star.",
         "a photo of a blob.", "a picture of a blob."],
    ]  # fmt: skip
    blue = stand_in_encoder([])(["a blue shape", "a navy shape"]).mean(axis=0)
    np.testing.assert_allclose(tagger.text_vectors[0][1], blue / np.linalg.norm(blue), rtol=1e-6)
    assert [vectors.shape for vectors in tagger.text_vectors] == [(2, 6), (3, 6)]


def test_each_group_gives_its_probable_tags():
    tagger = build_tagger(parse_vocabulary(VOCABULARY), stand_in_encoder([]), logit_scale=10)
    red_star = image(red=1, star=1)

    [tags] = tagger.tags(red_star[None], min_score=0.4)

    colour, shape = tagger.probabilities(red_star[None])
    expected_red = softmax(10 * (tagger.text_vectors[0] @ red_star))[0]
    expected_star = softmax(10 * (tagger.text_vectors[1] @ red_star))[1]
    assert {name for name, _ in tags} == {"red", "star"}
    assert dict(tags) == pytest.approx({"red": expected_red, "star": expected_star})
    assert colour[0].sum() == pytest.approx(1) and shape[0].sum() == pytest.approx(1)
    assert tags == sorted(tags, key=lambda item: -item[1])


def test_an_undecided_group_gives_several_tags_or_none():
    tagger = build_tagger(parse_vocabulary(VOCABULARY), stand_in_encoder([]), logit_scale=10)
    purple = image(red=2**0.5, blue=1, navy=1)  # as close to red as to blue (and navy)

    [low] = tagger.tags(purple[None], min_score=0.2)
    [high] = tagger.tags(purple[None], min_score=0.9)

    assert dict(low) == pytest.approx({"red": 0.5, "blue": 0.5}, abs=0.01)
    assert not {"red", "blue"} & {name for name, _ in high}


def test_a_group_minimum_overrides_the_callers():
    tagger = build_tagger(parse_vocabulary(VOCABULARY), stand_in_encoder([]), logit_scale=3)
    star_ish = image(star=1, circle=0.8)
    p_star = tagger.probabilities(star_ish[None])[1][0][1]
    assert 0.4 < p_star < 0.6  # the shape group asks for 0.6

    [tags] = tagger.tags(star_ish[None], min_score=0.4)

    assert "star" not in dict(tags)


def test_a_distractor_wins_but_is_never_given():
    tagger = build_tagger(parse_vocabulary(VOCABULARY), stand_in_encoder([]), logit_scale=10)
    [tags] = tagger.tags(image(blob=1, red=1)[None], min_score=0.3)
    assert [name for name, _ in tags] == ["red"]


def test_many_photos_at_once_match_one_at_a_time():
    tagger = build_tagger(parse_vocabulary(VOCABULARY), stand_in_encoder([]), logit_scale=10)
    photos = np.stack([image(red=1, star=1), image(blue=1, circle=1), image(navy=1, blob=1)])
    together = tagger.tags(photos, min_score=0.4)
    assert together == [tagger.tags(photo, min_score=0.4)[0] for photo in photos]
    assert tagger.tags(np.zeros((0, 6), dtype=np.float32), min_score=0.4) == []


# --- the cache ------------------------------------------------------------------------------


@dataclass
class StandInEngine:
    model_id: str
    calls: list

    def __post_init__(self):
        self.encode_texts = stand_in_encoder(self.calls)
        self.model = None


def test_tag_vectors_are_encoded_once_per_model_and_vocabulary():
    engine = StandInEngine("model-a", [])
    vocabulary = parse_vocabulary(VOCABULARY)

    first = tagger_for(engine, vocabulary)
    assert tagger_for(engine, parse_vocabulary(VOCABULARY + "\n# a comment")) is first
    assert len(engine.calls) == 1

    tagger_for(engine, parse_vocabulary(VOCABULARY.replace("navy", "teal")))
    tagger_for(StandInEngine("model-b", engine.calls), vocabulary)
    assert len(engine.calls) == 3
    assert first.logit_scale == 100.0  # a model without logit_scale gets CLIP's


def test_a_tagger_built_before_a_cache_was_named_is_written_there(tmp_path):
    engine = StandInEngine("model-a", [])
    vocabulary = parse_vocabulary(VOCABULARY)
    tagger_for(engine, vocabulary)

    tagger_for(engine, vocabulary, cache_dir=tmp_path)

    assert len(engine.calls) == 1
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]


def test_a_disk_cache_spares_the_next_process_the_encoding(tmp_path):
    vocabulary = parse_vocabulary(VOCABULARY)
    built = tagger_for(StandInEngine("model-a", []), vocabulary, cache_dir=tmp_path)
    forget_taggers()  # as a new process

    again = StandInEngine("model-a", [])
    read = tagger_for(again, vocabulary, cache_dir=tmp_path)

    assert again.calls == []
    assert read.logit_scale == built.logit_scale
    for a, b in zip(read.text_vectors, built.text_vectors, strict=True):
        np.testing.assert_array_equal(a, b)
    assert [p.suffix for p in tmp_path.iterdir()] == [".npz"]  # no partial files left


def test_a_damaged_or_unwritable_disk_cache_is_only_skipped(tmp_path, caplog):
    vocabulary = parse_vocabulary(VOCABULARY)
    tagger_for(StandInEngine("model-a", []), vocabulary, cache_dir=tmp_path)
    [cached] = tmp_path.iterdir()
    cached.write_bytes(b"not a numpy file")
    forget_taggers()

    engine = StandInEngine("model-a", [])
    tagger = tagger_for(engine, vocabulary, cache_dir=tmp_path)
    assert len(engine.calls) == 1 and len(tagger.text_vectors) == 2
    forget_taggers()
    tagger_for(engine, vocabulary, cache_dir=tmp_path)
    assert len(engine.calls) == 1  # the damaged file was replaced

    blocked = tmp_path / "a-file"
    blocked.write_text("")
    forget_taggers()
    tagger = tagger_for(StandInEngine("model-a", []), vocabulary, cache_dir=blocked / "sub")
    assert len(tagger.text_vectors) == 2
    assert "could not cache the tag vectors" in caplog.text


# --- the shipped demo model and its vocabulary ---------------------------------------------


@pytest.fixture(scope="module")
def demo_engine():
    return load_engine(ModelSpec(DEMO_MODEL_NAME, DEMO_PRETRAINED))


def test_logit_scale_is_the_models_learned_temperature(demo_engine):
    scale = logit_scale_of(demo_engine.model)
    assert scale == pytest.approx(demo_engine.model.logit_scale.exp().item())
    assert 1 < scale <= 100


def test_a_red_star_is_tagged_red_and_star(demo_engine):
    # A clear star: the demo model often takes a star for a cross (see the figures below).
    scene = Scene(shape="star", colour="red", count=1, size="large", position="middle",
                  background="white", pattern="plain", layout_seed=0)  # fmt: skip
    tagger = tagger_for(demo_engine, load_vocabulary(DEMO_VOCABULARY))

    [tags] = tagger.tags(demo_engine.encode_images([render(scene, (320, 320))]), min_score=0.4)

    assert {name for name, _ in tags} == {"red", "star", "plain", "white background"}


def test_demo_tags_on_held_out_scenes_are_mostly_right(demo_engine):
    tagger = tagger_for(demo_engine, load_vocabulary(DEMO_VOCABULARY))

    quality = {
        q.group: q for q in evaluate_tags(demo_engine, tagger, n=200, seed=99, min_score=0.4)
    }

    # The figures of MODEL_CARD.md ("Tags"), with some slack for other CPUs' arithmetic.
    assert set(quality) == {"colour", "shape", "pattern", "background"}
    assert quality["colour"].right >= 0.92 and quality["colour"].wrong <= 0.1
    assert quality["shape"].right >= 0.6 and quality["shape"].wrong <= 0.3
    for group in ("pattern", "background"):
        assert quality[group].right >= 0.97 and quality[group].wrong <= 0.03
