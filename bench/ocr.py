"""OCR benchmark: RapidOCR against Tesseract on a generated labelled set, and what OCR costs
ingest.

    .venv/bin/python -m bench.ocr                 # 120 scenes with text, 30 without
    .venv/bin/python -m bench.ocr --quick         # 30 + 10

The set (``workers.embedding.text_scenes``): one to four words of English, French, German,
Portuguese or Spanish (accents included), sometimes a booking code, in six fonts (DejaVu and
Liberation where installed, else Pillow's own), 28 to 80 px, turned 0/90/180/270 degrees or
tilted 5/-8 degrees, dark-on-plate or low-contrast ink, on photo-like backgrounds (gradients,
blotches, noise) of 960 x 720; and as many photos without any text.

A word counts as found when the reading holds it after folding (no case, no accents): word
recall is found / drawn, precision is the share of words read that were drawn. Times are wall
time per photo, one thread each engine, on this machine as loaded as it is (run with nice).

Ingest: the demo pipeline's cost per photo is the embedding (ViT-B-32, random init, batch 16,
the speed reference) and, with OCR on, the reading too when the same cores do both, so photos
per second with OCR on is 1 / (embed + read). On separate workers (the ``ocr`` queue on other
cores) embedding does not slow down: OCR only has to keep up.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections import defaultdict

from workers.embedding.ocr import load_reader, read_text, words_of
from workers.embedding.text_scenes import photo_background, text_scene


def labelled_set(count: int, blank: int, seed: int):
    rng = random.Random(seed)
    scenes = [text_scene(rng) for _ in range(count)]
    blanks = [photo_background(rng, (960, 720)) for _ in range(blank)]
    return scenes, blanks


def evaluate(reader, scenes, blanks) -> dict:
    drawn = found = read = correct = 0
    by_slice: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    text_ms, blank_ms, blank_words = [], [], 0
    for scene in scenes:
        reading = read_text(scene.image, reader=reader)
        text_ms.append(reading.ms)
        truth = {word for original in scene.words for word in words_of(original)}
        got = set(words_of(reading.text))
        hit = len(truth & got)
        drawn += len(truth)
        found += hit
        read += len(got)
        correct += len(got & truth)
        rotation = scene.rotation if scene.rotation in (0, 90, 180, 270) else "tilted"
        for key in (
            f"rotation {rotation}",
            f"contrast {scene.contrast}",
            f"language {scene.language}",
            f"size {scene.size} px",
        ):
            by_slice[key][0] += hit
            by_slice[key][1] += len(truth)
    for image in blanks:
        reading = read_text(image, reader=reader)
        blank_ms.append(reading.ms)
        blank_words += len(reading.words)
    return {
        "recall": found / max(drawn, 1),
        "precision": correct / max(read, 1),
        "text_ms": statistics.median(text_ms),
        "blank_ms": statistics.median(blank_ms) if blank_ms else 0.0,
        "blank_words": blank_words,
        "slices": {key: hit / total for key, (hit, total) in sorted(by_slice.items())},
    }


def embed_ms_per_photo(images, *, batch: int = 16) -> float:
    from workers.embedding.model import ModelSpec, load_engine

    engine = load_engine(ModelSpec(name="ViT-B-32", pretrained=""))
    engine.encode_images(images[:batch])  # warm up
    started = time.perf_counter()
    for first in range(0, len(images), batch):
        engine.encode_images(images[first : first + batch])
    return (time.perf_counter() - started) * 1000 / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenes", type=int, default=120)
    parser.add_argument("--blank", type=int, default=30)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-ingest", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.scenes, args.blank = 30, 10
    scenes, blanks = labelled_set(args.scenes, args.blank, args.seed)
    print(f"{len(scenes)} scenes with {sum(len(s.words) for s in scenes)} words, "
          f"{len(blanks)} without text (seed {args.seed})")  # fmt: skip
    results = {}
    for name, options in (("rapidocr", {"threads": 1}), ("tesseract", {})):
        reader = load_reader(name, **options)
        read_text(scenes[0].image, reader=reader)  # load the models
        results[name] = evaluate(reader, scenes, blanks)

    print("\n| engine | word recall | precision | ms/photo with text (p50) | "
          "ms/photo without text (p50) | words read in photos without text |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    for name, r in results.items():
        print(f"| {name} | {r['recall']:.3f} | {r['precision']:.3f} | {r['text_ms']:.0f} | "
              f"{r['blank_ms']:.0f} | {r['blank_words']} |")  # fmt: skip
    print("\n| word recall by | " + " | ".join(results) + " |")
    print("|---|" + "---|" * len(results))
    for key in next(iter(results.values()))["slices"]:
        print(
            f"| {key} | " + " | ".join(f"{r['slices'][key]:.2f}" for r in results.values()) + " |"
        )

    if not args.skip_ingest:
        images = [scene.image for scene in scenes[:64]]
        embed = embed_ms_per_photo(images)
        print(
            "\n| ingest, ViT-B-32 (random init) embedding on the same cores | ms/photo | photos/s |"
        )
        print("|---|---|---|")
        print(f"| OCR off | {embed:.0f} | {1000 / embed:.2f} |")
        for name, r in results.items():
            mixed = (r["text_ms"] * len(scenes) + r["blank_ms"] * len(blanks)) / (
                len(scenes) + len(blanks)
            )
            total = embed + mixed
            print(f"| OCR on ({name}, this set's mix of text and no text) | {total:.0f} | "
                  f"{1000 / total:.2f} ({embed / total:.2f}x) |")  # fmt: skip


if __name__ == "__main__":
    main()
