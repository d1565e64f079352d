"""Keyframe sampling by scene change against fixed intervals, on generated videos.

Each video is demo scenes of random lengths (1-20 s) one after another, so every scene boundary
is known. A boundary counts as found when a keyframe lies within [boundary, boundary + 1 s]: the
moment a search would jump to. Prints a markdown table (docs/VIDEO.md has the last run).

    .venv/bin/python -m bench.video_sampling [--videos 3] [--minutes 3]
"""

from __future__ import annotations

import argparse
import io
import random
import time
from dataclasses import dataclass

import av

from workers.embedding.demo.scenes import random_scene
from workers.embedding.demo.videos import render_video
from workers.embedding.video import sample_keyframes

MIN_GAP_S = 1.0
MAX_GAP_S = 10.0
SIDE = 224


@dataclass
class Tally:
    found: int = 0
    boundaries: int = 0
    vectors: int = 0
    seconds_of_video: float = 0.0
    decode_s: float = 0.0


def make_video(seed: int, minutes: float, size: tuple[int, int], fps: int):
    rng = random.Random(seed)
    scenes, total = [], 0.0
    while total < minutes * 60:
        seconds = round(rng.uniform(1, 20), 1)
        scenes.append((seconds, random_scene(rng)))
        total += seconds
    buffer = io.BytesIO()
    boundaries = render_video(buffer, scenes, size=size, fps=fps)
    return buffer, boundaries, total


def fixed_interval(source: io.BytesIO, every_s: float) -> list[float]:
    """The naive way: decode every frame, keep one each ``every_s`` seconds (as an image)."""
    source.seek(0)
    times: list[float] = []
    with av.open(source) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        next_at = 0.0
        for frame in container.decode(stream):
            if frame.time is not None and frame.time >= next_at - 1e-6:
                frame.reformat(width=SIDE, height=SIDE * frame.height // frame.width).to_image()
                times.append(frame.time)
                next_at += every_s
    return times


def found(boundaries: list[float], times: list[float]) -> int:
    # Keyframe times are whole milliseconds; boundaries are exact frame times (n / fps).
    return sum(any(b - 0.001 <= t <= b + 1.0 for t in times) for b in boundaries)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=24)
    args = parser.parse_args()
    methods = {
        "scene change (min 1 s, max 10 s)": None,
        "every 1 s": 1.0,
        "every 2 s": 2.0,
        f"every {MAX_GAP_S:g} s (max gap)": MAX_GAP_S,
    }
    tallies = {name: Tally() for name in methods}
    for seed in range(args.videos):
        video, boundaries, total = make_video(
            seed, args.minutes, (args.width, args.height), args.fps
        )
        for name, every in methods.items():
            started = time.perf_counter()
            if every is None:
                video.seek(0)
                keyframes = sample_keyframes(
                    video, side=SIDE, min_gap_s=MIN_GAP_S, max_gap_s=MAX_GAP_S, max_frames=10_000
                )
                times = [k.time_ms / 1000 for k in keyframes]
            else:
                times = fixed_interval(video, every)
            tally = tallies[name]
            tally.decode_s += time.perf_counter() - started
            tally.found += found(boundaries, times)
            tally.boundaries += len(boundaries)
            tally.vectors += len(times)
            tally.seconds_of_video += total
    print(
        f"{args.videos} videos, {args.minutes:g} min each, {args.width}x{args.height} H.264 at "
        f"{args.fps} fps, scenes 1-20 s\n"
    )
    print("| sampling | moments found | vectors per minute | decode s per minute |")
    print("|---|---|---|---|")
    for name, tally in tallies.items():
        minutes = tally.seconds_of_video / 60
        share = tally.found / tally.boundaries
        print(
            f"| {name} | {tally.found}/{tally.boundaries} ({share:.0%}) | "
            f"{tally.vectors / minutes:.1f} | {tally.decode_s / minutes:.2f} |"
        )


if __name__ == "__main__":
    main()
