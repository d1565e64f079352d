"""Backends benchmark: each runtime's ms per image and per query, and its parity with torch fp32.

    .venv/bin/python -m bench.backends                   # demo model and ViT-B-32 (random init)
    .venv/bin/python -m bench.backends --models vit      # ViT-B-32 only
    .venv/bin/python -m bench.backends --agreement 1000  # + int8 top-10 agreement, 1,000 photos
    .venv/bin/python -m bench.backends --recall 200      # + demo text->image recall, fp32 vs int8

Every runtime runs the same exported graphs the engine uses (``workers/embedding/backends.py``,
cached in ``--export-dir``), in one process, alternating, so the ratios are of one run. Images:
a batch of ``--batch`` generated scenes, at the worker's threads (``--threads``, default: the
cores). Queries: one text at a time on one thread, as a web process encodes them; torch is
timed both on the whole 77-token context (what open_clip's ``encode_text`` does) and cut after
the end-of-text token (what the engine does now). Parity: the least cosine to torch fp32 over
the batch and 20 texts.

``--agreement N``: N generated scenes embedded by fp32 and by int8; for 100 text queries, the
share of fp32's top 10 that int8 also ranks in its top 10 (random-init ViT-B-32: the cost of
the arithmetic, not of a trained model's outliers). ``--recall N``: the demo model's
text->image recall@1/@5 through the full stack (upload, the worker's service, pgvector, the
search view) at fp32 and at int8, on N held-out scenes.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from pathlib import Path

import numpy as np

MODELS = {"demo": ("MediaSearch-Demo", "demo"), "vit": ("ViT-B-32", "")}


def scenes(count: int, seed: int) -> list:
    from workers.embedding.demo.scenes import random_scene, render

    rng = random.Random(seed)
    return [render(random_scene(rng), size=(320, 240)) for _ in range(count)]


def texts(count: int, seed: int) -> list[str]:
    from workers.embedding.demo.scenes import caption, random_scene

    rng = random.Random(seed)
    return [caption(random_scene(rng), rng) for _ in range(count)]


def median_ms(run, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def unit(rows) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def runners(engine, export_dir: Path, threads: int, query_threads: int):
    """(label, image runner, text runner) for every backend and precision, torch first."""
    from workers.embedding import backends

    cache = backends.ExportCache(export_dir)
    digest = backends.weights_digest(engine.model)
    base_id = engine.model_id
    found = [("torch fp32", backends.TorchRunner(engine.model), backends.TorchRunner(engine.model))]
    for precision in ("fp32", "int8"):
        image_path, text_path = cache.graphs(
            engine.model, model_id=base_id, digest=digest, precision=precision
        )
        for name in ("onnxruntime", "openvino"):
            try:
                image = backends._open_runner(name, image_path, text_path, threads, precision)
                text = backends._open_runner(name, image_path, text_path, query_threads, precision)
            except backends.BackendError as exc:
                print(f"{name} {precision}: {exc}")
                continue
            found.append((f"{name} {precision}", image, text))
    return found


def speed_table(engine, args) -> dict:
    import torch

    from workers.embedding.backends import cut_tokens

    pictures = scenes(args.batch, seed=5)
    pixels = torch.stack([engine.preprocess(p) for p in pictures]).numpy()
    queries = texts(20, seed=6)
    full = engine.tokenizer(queries)
    cut = cut_tokens(full, engine.model)
    with torch.inference_mode():
        ref_images = unit(engine.model.encode_image(torch.from_numpy(pixels)).numpy())
        ref_texts = unit(engine.model.encode_text(full).numpy())
    one = [cut_tokens(engine.tokenizer([q]), engine.model).numpy() for q in queries]

    rows = {}
    found = runners(engine, Path(args.export_dir), args.threads, 1)
    # torch on the whole context, the way open_clip's encode_text runs it (the old engine).
    torch.set_num_threads(1)
    full_one = [engine.tokenizer([q]) for q in queries]
    with torch.inference_mode():
        engine.model.encode_text(full_one[0])
        full_ms = statistics.median(
            median_ms(lambda t=t: engine.model.encode_text(t), 3) for t in full_one[:10]
        )
    for label, image_runner, text_runner in found:
        torch.set_num_threads(args.threads)
        image_runner.encode_pixels(pixels)  # first call: plugin compile, allocations
        image_ms = median_ms(lambda r=image_runner: r.encode_pixels(pixels), args.repeats)
        image_parity = float(
            np.min(np.sum(unit(image_runner.encode_pixels(pixels)) * ref_images, 1))
        )
        torch.set_num_threads(1)
        text_runner.encode_tokens(one[0])
        query_ms = [median_ms(lambda t=t, r=text_runner: r.encode_tokens(t), 3) for t in one]
        text_parity = float(
            np.min(np.sum(unit(text_runner.encode_tokens(cut.numpy())) * ref_texts, 1))
        )
        rows[label] = {
            "image": image_ms / len(pixels),
            "query": statistics.median(query_ms),
            "query_p95": float(np.percentile(query_ms, 95)),
            "parity": min(image_parity, text_parity),
        }
    torch_image = rows["torch fp32"]["image"]
    print(f"\n{engine.model_id}: images in a batch of {len(pixels)} on {args.threads} threads; "
          f"queries one at a time on 1 thread (median of {len(one)})")  # fmt: skip
    print("\n| backend | ms per image | vs torch | ms per query (p50 / p95) | vs torch 77 tokens "
          "| least cosine to torch fp32 |")  # fmt: skip
    print("|---|---|---|---|---|---|")
    print(
        f"| torch fp32, 77-token text (open_clip's encode_text) | | | {full_ms:.1f} | 1.00x | 1 |"
    )
    for label, row in rows.items():
        print(f"| {label} | {row['image']:.1f} | {torch_image / row['image']:.2f}x "
              f"| {row['query']:.1f} / {row['query_p95']:.1f} | {full_ms / row['query']:.2f}x "
              f"| {row['parity']:.6f} |")  # fmt: skip
    return rows


def agreement(engine, args) -> None:
    """Top-10 agreement of int8 with fp32 (ONNX Runtime both, the same graphs)."""
    import torch

    from workers.embedding import backends

    cache = backends.ExportCache(Path(args.export_dir))
    digest = backends.weights_digest(engine.model)
    ranked = {}
    for precision in ("fp32", "int8"):
        image_path, text_path = cache.graphs(
            engine.model, model_id=engine.model_id, digest=digest, precision=precision
        )
        runner = backends.OnnxRuntimeRunner(
            image_path, text_path, threads=args.threads, precision=precision
        )
        gallery = []
        rng = random.Random(11)
        from workers.embedding.demo.scenes import random_scene, render

        for start in range(0, args.agreement, 32):
            batch = [
                render(random_scene(rng), size=(320, 240))
                for _ in range(min(32, args.agreement - start))
            ]
            pixels = torch.stack([engine.preprocess(p) for p in batch]).numpy()
            gallery.append(unit(runner.encode_pixels(pixels)))
        gallery_vectors = np.concatenate(gallery)
        queries = texts(100, seed=12)
        query_vectors = unit(
            runner.encode_tokens(
                backends.cut_tokens(engine.tokenizer(queries), engine.model).numpy()
            )
        )
        ranked[precision] = np.argsort(-(query_vectors @ gallery_vectors.T), axis=1)[:, :10]
    overlap = [
        len(set(a) & set(b)) / 10 for a, b in zip(ranked["fp32"], ranked["int8"], strict=True)
    ]
    same_first = float(np.mean(ranked["fp32"][:, 0] == ranked["int8"][:, 0]))
    print(f"\nint8 vs fp32 on {engine.model_id}, {args.agreement} generated photos, 100 text "
          f"queries: top-10 agreement mean {np.mean(overlap):.3f}, least {min(overlap):.1f}; "
          f"same first result {same_first:.2f}")  # fmt: skip


def recall(args) -> None:
    """The demo model's text->image recall through the full stack, fp32 then int8."""
    from bench import stack

    stack.start(model="MediaSearch-Demo", pretrained="demo")
    from django.conf import settings
    from django.contrib.auth import get_user_model

    import search.ingest.services as services
    from search.evaluation.search import ingest_scenes, text_recall
    from search.models import Photo
    from workers.embedding.demo.scenes import random_scene

    rng = random.Random(1234)
    scene_list = [random_scene(rng, split="heldout") for _ in range(args.recall)]
    results = {}
    for precision in ("fp32", "int8"):
        settings.MEDIASEARCH_CLIP_PRECISION = precision
        settings.MEDIASEARCH_CLIP_BACKEND = "onnxruntime"
        user = get_user_model().objects.create_user(f"recall-{precision}")
        scene_set = ingest_scenes(owner=user, scenes=scene_list, seed=1234)
        for photo_id in Photo.objects.filter(owner=user, status=Photo.Status.PENDING).values_list(
            "pk", flat=True
        ):
            services.photos_embed(
                photo_id=photo_id, batch_size=settings.MEDIASEARCH_EMBED_BATCH_SIZE
            )
        assert not Photo.objects.filter(owner=user).exclude(status=Photo.Status.READY).exists()
        results[precision] = text_recall(user=user, scene_set=scene_set, seed=1234)
        from workers.active_engine import get_engine

        print(f"{precision}: {get_engine().model_id} on {get_engine().backend.summary}")
    print(f"\n| demo model, {args.recall} held-out scenes, full stack | text->image R@1 | R@5 |")
    print("|---|---|---|")
    for precision, result in results.items():
        print(f"| {precision} | {result.at_1:.3f} | {result.at_5:.3f} |")
    drop = results["fp32"].at_5 - results["int8"].at_5
    print(f"R@5 drop {drop:+.3f} (target <= 0.01)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="demo,vit")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    cores = len(os.sched_getaffinity(0))
    parser.add_argument("--threads", type=int, default=cores)
    parser.add_argument("--export-dir", default="/tmp/mediasearch-bench/clip-export")
    parser.add_argument("--agreement", type=int, default=0, help="photos (ViT-B-32, int8)")
    parser.add_argument("--recall", type=int, default=0, help="held-out scenes (demo model)")
    args = parser.parse_args()

    from workers.embedding.model import ModelSpec, load_engine

    for key in args.models.split(","):
        if not key:
            continue
        engine = load_engine(ModelSpec(*MODELS[key]))
        speed_table(engine, args)
        if args.agreement and key == "vit":
            agreement(engine, args)
    if args.recall:
        recall(args)


if __name__ == "__main__":
    main()
