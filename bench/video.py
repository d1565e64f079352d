"""Worker time per minute of 1080p H.264 video, against a naive reference, on the real default
architecture (ViT-B-32, random init: the speed is the architecture's, not the weights').

- **naive**: decode every frame at full size, convert each to RGB, embed one frame per second.
- **ours** (what the video worker runs): ``sample_keyframes`` (one decode pass with frame threads
  and non-reference frames skipped, scene scoring on tiny thumbnails, keyframes at scene changes
  with a 1 s minimum and 10 s maximum gap), embedding the keyframes in batches, and the
  renditions (poster thumbnail and preview). Its decode share is measured by a pass that decodes
  the same way without scoring; scene detection is the rest of the sampling pass.

Both find moments the same way (a boundary is found when a keyframe lies within
[boundary, boundary + 1 s]). Ratios are within one run: these machines are noisy.

    .venv/bin/python -m bench.video [--seconds 60] [--quick]
"""

from __future__ import annotations

import argparse
import io
import random
import statistics
import time

import av

from workers.embedding.demo.scenes import random_scene
from workers.embedding.demo.videos import render_video
from workers.embedding.model import ModelSpec, load_engine
from workers.embedding.video import sample_keyframes, video_renditions

MIN_GAP_S, MAX_GAP_S, BATCH = 1.0, 10.0, 16


def make_video(seconds: float, seed: int = 3) -> tuple[bytes, list[float]]:
    rng = random.Random(seed)
    scenes, total = [], 0.0
    while total < seconds:
        length = min(rng.uniform(2.0, 12.0), seconds - total)
        scenes.append((length, random_scene(rng)))
        total += length
    out = io.BytesIO()
    boundaries = render_video(out, scenes, size=(1920, 1080), fps=30)
    return out.getvalue(), boundaries


def found(times_s: list[float], boundaries: list[float]) -> int:
    return sum(any(b <= t <= b + 1.0 for t in times_s) for b in boundaries)


def naive(engine, data: bytes) -> tuple[dict[str, float], list[float]]:
    decode = embed = 0.0
    picked, times = [], []
    started = time.perf_counter()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        next_second = 0.0
        for frame in container.decode(stream):
            image = frame.to_image()  # every frame, full size, as a naive loop would
            at = float(frame.pts * stream.time_base)
            if at >= next_second:
                picked.append(image)
                times.append(at)
                next_second += 1.0
    decode = time.perf_counter() - started
    started = time.perf_counter()
    for start in range(0, len(picked), BATCH):
        engine.encode_images(picked[start : start + BATCH])
    embed = time.perf_counter() - started
    return {"decode": decode, "embed": embed}, times


def decode_only(data: bytes) -> float:
    """The sampling pass's decode alone: the same threads and frame skipping, no scoring."""
    started = time.perf_counter()
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        stream.codec_context.skip_frame = "NONREF"
        for _ in container.decode(stream):
            pass
    return time.perf_counter() - started


def ours(engine, data: bytes) -> tuple[dict[str, float], list[float]]:
    started = time.perf_counter()
    keyframes = sample_keyframes(
        io.BytesIO(data),
        side=2 * engine.input_side,
        min_gap_s=MIN_GAP_S,
        max_gap_s=MAX_GAP_S,
        max_frames=600,
    )
    sampling = time.perf_counter() - started
    decode = decode_only(data)
    started = time.perf_counter()
    for start in range(0, len(keyframes), BATCH):
        engine.encode_images([k.image for k in keyframes[start : start + BATCH]])
    embed = time.perf_counter() - started
    started = time.perf_counter()
    video_renditions(io.BytesIO(data), keyframes, sides=(384, 1600))
    renditions = time.perf_counter() - started
    stages = {
        "decode": min(decode, sampling),
        "scene detection": max(0.0, sampling - decode),
        "embed": embed,
        "renditions": renditions,
    }
    return stages, [k.time_ms / 1000 for k in keyframes]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20 s of video, 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.rounds = 20.0, 2
    import torch

    engine = load_engine(ModelSpec("ViT-B-32", ""))
    data, boundaries = make_video(args.seconds)
    per_minute = 60.0 / args.seconds
    print(f"model {engine.model_id}, torch threads {torch.get_num_threads()}; "
          f"{args.seconds:.0f} s of 1920x1080 H.264 at 30 fps ({len(data) / 1e6:.1f} MB), "
          f"{len(boundaries)} scene boundaries")  # fmt: skip
    naive(engine, data)  # first calls out of the way
    ratios, naive_runs, our_runs = [], [], []
    for round_no in range(args.rounds):
        naive_stages, naive_times = naive(engine, data)
        our_stages, our_times = ours(engine, data)
        naive_runs.append(naive_stages)
        our_runs.append(our_stages)
        ratio = sum(naive_stages.values()) / sum(our_stages.values())
        ratios.append(ratio)
        print(f"round {round_no + 1}: naive {sum(naive_stages.values()):.1f} s, "
              f"ours {sum(our_stages.values()):.1f} s, ratio {ratio:.2f}")  # fmt: skip

    def median(runs, stage):
        return statistics.median(run[stage] for run in runs) * per_minute

    print("\n| path | stage | worker s per minute of video (median) |\n|---|---|---|")
    for stage in ("decode", "embed"):
        print(f"| naive (every frame, 1 vector/s) | {stage} | {median(naive_runs, stage):.1f} |")
    for stage in ("decode", "scene detection", "embed", "renditions"):
        print(f"| ours (scene-change keyframes) | {stage} | {median(our_runs, stage):.1f} |")
    print(f"\nmoments found: naive {found(naive_times, boundaries)}/{len(boundaries)} with "
          f"{len(naive_times)} vectors; ours {found(our_times, boundaries)}/{len(boundaries)} "
          f"with {len(our_times)} vectors")  # fmt: skip
    print(f"ours / naive speed: median {statistics.median(ratios):.2f}x "
          f"(rounds: {', '.join(f'{r:.2f}' for r in ratios)}); target >= 3x")  # fmt: skip


if __name__ == "__main__":
    main()
