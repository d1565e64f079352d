"""Recall@10 of CLIP alone, OCR text alone and the fused ranking, on a labelled generated
library, through the real pipeline (demo model embedding, RapidOCR reading, PostgreSQL).

    .venv/bin/python -m bench.fused_recall

The library: demo-model scenes (coloured shapes), some with a line of text on a plate (a shop
or hotel name). Four words are each on 16 photos: 4 of one target kind of scene (say, red
circles) and 12 of other kinds. Each target kind also has 12 photos without text, and 40
photos of other kinds have none.

- queries needing OCR: the word alone ("tesco"); relevant: the 16 photos showing it.
- queries needing CLIP: the target kind ("red circles"); relevant: its 16 photos.
- queries needing both: "tesco red circles"; relevant: the 4 red circles showing "tesco".

Recall@10 = relevant photos in the top 10 / min(10, relevant photos). CLIP alone is the
fused search with ``MEDIASEARCH_TEXT_MATCH_WEIGHT=0``; OCR alone is the ``text:`` query.
Strictness "all" (ranking only).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from bench import stack

WORDS = ("tesco", "miramar", "pharmacy", "bakery")
TARGETS = (("red", "circle"), ("blue", "square"), ("green", "star"), ("yellow", "cross"))


def build(user, seed: int) -> dict[str, list[int]]:
    import io

    from django.core.files.uploadedfile import SimpleUploadedFile

    from search.photos.services import photo_create
    from workers.embedding.demo.scenes import COLOURS, SHAPES, Scene, render
    from workers.embedding.text_scenes import text_scene

    rng = random.Random(seed)

    def scene(colour: str, shape: str) -> Scene:
        count = rng.choice((1, 2, 3))
        return Scene(
            shape=shape, colour=colour, count=count, size=rng.choice(("small", "large")),
            position="middle" if count == 1 else None,
            background=rng.choice([c for c in COLOURS if c != colour]),
            pattern="plain", layout_seed=rng.getrandbits(32),
        )  # fmt: skip

    others = [(c, s) for c in COLOURS for s in SHAPES if (c, s) not in TARGETS]
    items: list[tuple[tuple[str, str], str | None]] = []
    for word, target in zip(WORDS, TARGETS, strict=True):
        items += [(target, word)] * 4 + [(rng.choice(others), word) for _ in range(12)]
        items += [(target, None)] * 12
    items += [(rng.choice(others), None) for _ in range(40)]
    rng.shuffle(items)
    labels: dict[str, list[int]] = {}
    for index, ((colour, shape), word) in enumerate(items):
        picture = render(scene(colour, shape), size=(512, 512))
        if word is not None:
            picture = text_scene(
                rng, words=(word.upper(),), size=44, rotation=0, contrast="high",
                background=picture, canvas=(512, 512),
            ).image  # fmt: skip
        data = io.BytesIO()
        picture.save(data, format="JPEG", quality=90)
        upload = SimpleUploadedFile(f"{index}.jpg", data.getvalue(), content_type="image/jpeg")
        photo = photo_create(owner=user, file=upload).photo
        labels.setdefault(f"{colour} {shape}", []).append(photo.pk)
        if word is not None:
            labels.setdefault(word, []).append(photo.pk)
            labels.setdefault(f"{word} {colour} {shape}", []).append(photo.pk)
    return labels


def recall_at_10(ranked: list[int], relevant: list[int]) -> float:
    return len(set(ranked[:10]) & set(relevant)) / min(10, len(relevant))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=16)
    args = parser.parse_args()
    stack.start(model="MediaSearch-Demo", pretrained="demo")
    from django.conf import settings
    from django.contrib.auth import get_user_model

    from search.ingest.services import photos_embed
    from search.models import Photo, PhotoText
    from search.retrieval.query import Strictness
    from search.retrieval.selectors import photo_search
    from search.text.services import photo_text_read

    settings.MEDIASEARCH_OCR_ENABLED = True
    user = get_user_model().objects.create_user("bench-recall")
    labels = build(user, args.seed)
    started = time.perf_counter()
    while first := (
        Photo.objects.filter(status=Photo.Status.PENDING)
        .order_by("pk")
        .values_list("pk", flat=True)
        .first()
    ):
        photos_embed(photo_id=first, batch_size=32)
    embedded = time.perf_counter() - started
    started = time.perf_counter()
    for photo_id in PhotoText.objects.values_list("photo_id", flat=True):
        photo_text_read(photo_id=photo_id)
    read = time.perf_counter() - started
    done = PhotoText.objects.filter(status=PhotoText.Status.DONE).count()
    print(f"{done} photos embedded in {embedded:.0f} s and read in {read:.0f} s")

    def ids(text: str) -> list[int]:
        outcome = photo_search(user=user, text=text, strictness=Strictness.ALL)
        return [row.photo_id for row in outcome.hits.ranked]

    def plural(shape: str) -> str:
        return "crosses" if shape == "cross" else f"{shape}s"

    sets = {
        "needs OCR": [(word, word) for word in WORDS],
        "needs CLIP": [(f"{c} {plural(s)}", f"{c} {s}") for c, s in TARGETS],
        "needs both": [
            (f"{w} {c} {plural(s)}", f"{w} {c} {s}")
            for w, (c, s) in zip(WORDS, TARGETS, strict=True)
        ],
    }
    table = {}
    for name, queries in sets.items():
        scores: dict[str, list[float]] = {"CLIP alone": [], "OCR alone": [], "fused": []}
        for query, label in queries:
            relevant = labels[label]
            settings.MEDIASEARCH_TEXT_MATCH_WEIGHT = 0.0
            scores["CLIP alone"].append(recall_at_10(ids(query), relevant))
            settings.MEDIASEARCH_TEXT_MATCH_WEIGHT = 1.0
            scores["OCR alone"].append(recall_at_10(ids(f"text: {query}"), relevant))
            scores["fused"].append(recall_at_10(ids(query), relevant))
        table[name] = {key: statistics.mean(values) for key, values in scores.items()}
    print("\n| queries | CLIP alone | OCR alone | fused |")
    print("|---|---|---|---|")
    for name, row in table.items():
        print(f"| {name} ({len(sets[name])}) | {row['CLIP alone']:.2f} | "
              f"{row['OCR alone']:.2f} | {row['fused']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
