"""Ingest benchmark: photos/second end to end vs the naive open_clip loop, same photos and model.

    .venv/bin/python -m bench.ingest            # 8 phone (12 MP) + 8 web photos, 3 rounds
    .venv/bin/python -m bench.ingest --quick    # 3 + 3 photos, 2 rounds

Naive loop (the reference): for each file, PIL open → open_clip preprocess → encode_image with
a batch of 1 (open_clip's README). End to end: one multipart HTTP upload through Django's
request stack (test client: no socket) → the worker's own service (``photos_embed``, as the
Celery task calls it, batch ``MEDIASEARCH_EMBED_BATCH_SIZE``) → ready rows with vectors,
thumbnail and preview in storage. The two alternate in each round; the figure is the median of
the per-round ratios. Every stored vector is compared with the naive fp32 one for its photo.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

from bench import stack
from bench.photos import photo_set


def naive_loop(engine, paths: list[Path]) -> dict:
    import torch
    from PIL import Image

    times = {"decode": 0.0, "preprocess": 0.0, "model": 0.0}
    vectors = {}
    started = time.perf_counter()
    for path in paths:
        t0 = time.perf_counter()
        image = Image.open(path).convert("RGB")
        t1 = time.perf_counter()
        batch = engine.preprocess(image).unsqueeze(0)
        t2 = time.perf_counter()
        with torch.no_grad():
            features = engine.model.encode_image(batch)
        t3 = time.perf_counter()
        features = features / features.norm(dim=-1, keepdim=True)
        vectors[path.name] = features[0].numpy()
        times["decode"] += t1 - t0
        times["preprocess"] += t2 - t1
        times["model"] += t3 - t2
    return {"seconds": time.perf_counter() - started, "stages": times, "vectors": vectors}


def end_to_end(engine, paths: list[Path], round_no: int) -> dict:
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.uploadedfile import SimpleUploadedFile
    from django.test import Client

    import search.ingest.services as services
    from search.models import Embedding, Photo

    stages = {"upload request": 0.0, "decode+resize": 0.0, "model": 0.0}
    original_prepare, original_encode = services._photos_prepare, engine.encode_images

    def timed(name, function):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                stages[name] += time.perf_counter() - t0

        return wrapper

    user = get_user_model().objects.create_user(f"bench-{round_no}-{time.time_ns()}")
    client = Client()
    client.force_login(user)
    files = [SimpleUploadedFile(p.name, p.read_bytes(), "image/jpeg") for p in paths]
    services._photos_prepare = timed("decode+resize", original_prepare)
    engine.encode_images = timed("model", original_encode)
    timer = stack.QueryTimer()
    try:
        with timer.measuring():
            started = time.perf_counter()
            response = client.post("/upload/", {"photos": files})
            stages["upload request"] = time.perf_counter() - started
            assert response.status_code == 302, response.status_code
            pending = Photo.objects.filter(owner=user, status=Photo.Status.PENDING)
            # What the Celery worker does for each queued id; ids already taken by an
            # earlier batch come back untouched, exactly as in the worker.
            for photo_id in pending.order_by("pk").values_list("pk", flat=True):
                services.photos_embed(
                    photo_id=photo_id, batch_size=settings.MEDIASEARCH_EMBED_BATCH_SIZE
                )
            seconds = time.perf_counter() - started
    finally:
        services._photos_prepare = original_prepare
        engine.encode_images = original_encode
    ready = Photo.objects.filter(owner=user, status=Photo.Status.READY)
    assert ready.count() == len(paths), "not every photo became ready"
    vectors = {
        e.photo.original_filename: np.asarray(e.vector, dtype=np.float32)
        for e in Embedding.objects.filter(photo__owner=user).select_related("photo")
    }
    stages["database"] = timer.seconds
    return {"seconds": seconds, "stages": stages, "vectors": vectors, "queries": timer.queries}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--phone", type=int, default=8, help="12 MP photos")
    parser.add_argument("--web", type=int, default=8, help="1.2 MP photos")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default="", help='"" is a seeded random init')
    parser.add_argument("--photos-dir", default="/tmp/mediasearch-bench/photos")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--backend", default="auto", help="torch, onnxruntime, openvino, auto")
    parser.add_argument("--precision", default="fp32", help="fp32 or int8")
    args = parser.parse_args()
    if args.quick:
        args.phone, args.web, args.rounds = 3, 3, 2

    import os

    os.environ["MEDIASEARCH_CLIP_BACKEND"] = args.backend
    os.environ["MEDIASEARCH_CLIP_PRECISION"] = args.precision
    stack.start(model=args.model, pretrained=args.pretrained)
    import torch
    from django.conf import settings

    from workers.active_engine import get_engine, use_torch_threads

    paths = photo_set(Path(args.photos_dir), phone=args.phone, web=args.web)
    # Both paths run as a worker process would: on the worker's torch threads (default: cores).
    use_torch_threads(settings.MEDIASEARCH_WORKER_TORCH_THREADS)
    started = time.perf_counter()
    engine = get_engine()
    print(f"engine loaded in {time.perf_counter() - started:.1f} s (export on a first run), "
          f"backend: {engine.backend.summary}"
          + (f"; {engine.backend.reason}" if engine.backend.reason else ""))  # fmt: skip
    print(f"model {engine.model_id}, torch threads {torch.get_num_threads()}, "
          f"{args.phone} phone + {args.web} web photos, {args.rounds} rounds")  # fmt: skip
    # One-time costs out of the way for both: first calls, and the end-to-end path's tag text
    # vectors, computed once per model on the first batch (see docs/PERFORMANCE.md).
    naive_loop(engine, paths[:1])
    started = time.perf_counter()
    from workers.active_engine import get_tagger

    get_tagger(engine)
    print(
        f"tag vocabulary's text vectors (what a worker computes in the background at start, "
        f"or reads from MEDIASEARCH_TAG_CACHE_DIR): {time.perf_counter() - started:.1f} s"
    )
    warm_up = end_to_end(engine, paths[:1], round_no=-1)
    print(f"end-to-end warm-up (one photo, untimed): {warm_up['seconds']:.1f} s")
    ratios, naive_runs, e2e_runs = [], [], []
    for round_no in range(args.rounds):
        naive = naive_loop(engine, paths)
        e2e = end_to_end(engine, paths, round_no)
        naive_runs.append(naive)
        e2e_runs.append(e2e)
        ratios.append(naive["seconds"] / e2e["seconds"])
        print(f"round {round_no + 1}: naive {len(paths) / naive['seconds']:.2f} photos/s, "
              f"end to end {len(paths) / e2e['seconds']:.2f} photos/s, "
              f"ratio {ratios[-1]:.2f}")  # fmt: skip

    fidelity = min(
        float(run["vectors"][name] @ naive_runs[0]["vectors"][name])
        for run in e2e_runs
        for name in run["vectors"]
    )
    n = len(paths)
    print("\n| path | photos/s (median) | stage | ms per photo (median) |")
    print("|---|---|---|---|")
    for label, runs in (("naive loop", naive_runs), ("end to end", e2e_runs)):
        rate = statistics.median(n / run["seconds"] for run in runs)
        for index, stage in enumerate(runs[0]["stages"]):
            ms = statistics.median(run["stages"][stage] for run in runs) / n * 1000
            print(f"| {label if index == 0 else ''} | {f'{rate:.2f}' if index == 0 else ''} "
                  f"| {stage} | {ms:.1f} |")  # fmt: skip
    print(f"\nend to end / naive: median {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}); target >= 2.0x")  # fmt: skip
    print(f"fidelity: lowest cosine, stored vs naive fp32 vector of the same photo: {fidelity:.6f}")


if __name__ == "__main__":
    main()
