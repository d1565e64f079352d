"""Train the shipped demo CLIP model on generated scenes (see ``scenes.py`` and MODEL_CARD.md).

    .venv/bin/python -m workers.embedding.demo.training.train  # ~25 minutes on 2 CPU cores
    .venv/bin/python -m workers.embedding.demo.training.train --device cuda

The architecture is the open_clip config in ``model_configs/``, built by open_clip's own
``create_model`` and saved as a plain open_clip state dict, so the app loads it exactly the way it
loads a published checkpoint. Seeded: the same arguments give the same weights on the same
hardware and library versions.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import multiprocessing
import random
import time
from pathlib import Path

import numpy as np
from PIL import Image

from workers.embedding.demo.scenes import Scene, caption, partial_caption, random_scene, render
from workers.embedding.model import DEMO_MODEL_NAME, DEMO_WEIGHTS, register_demo_config

logger = logging.getLogger("train")


def render_for_training(scene: Scene, rng: random.Random, image_size: int) -> np.ndarray:
    """The scene as the model sees an upload: drawn large, often JPEG'd, resized like open_clip."""
    side = rng.randint(image_size * 2, image_size * 5)
    image = render(scene, (side, side))
    if rng.random() < 0.6:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=rng.randint(60, 95))
        image = Image.open(io.BytesIO(buffer.getvalue())).convert("RGB")
    image = image.resize((image_size, image_size), Image.Resampling.BICUBIC)
    return np.asarray(image, dtype=np.uint8)


def _render_chunk(args: tuple[int, int, int]) -> tuple[list[Scene], np.ndarray]:
    seed, count, image_size = args
    rng = random.Random(seed)
    scenes = [random_scene(rng, split="train") for _ in range(count)]
    pixels = np.stack([render_for_training(scene, rng, image_size) for scene in scenes])
    return scenes, pixels


def make_dataset(n: int, image_size: int, seed: int, processes: int):
    """``n`` training scenes and their pixels, ``(n, size, size, 3)`` uint8."""
    chunk = 2000
    jobs = [(seed * 1_000_003 + i, min(chunk, n - start), image_size)
            for i, start in enumerate(range(0, n, chunk))]  # fmt: skip
    with multiprocessing.get_context("spawn").Pool(processes) as pool:
        parts = pool.map(_render_chunk, jobs)
    scenes = [scene for part_scenes, _ in parts for scene in part_scenes]
    return scenes, np.concatenate([pixels for _, pixels in parts])


def group_by_all_but_shape(scenes: list[Scene]) -> dict[tuple, list[int]]:
    groups: dict[tuple, list[int]] = {}
    for i, scene in enumerate(scenes):
        groups.setdefault(_all_but_shape(scene), []).append(i)
    return groups


def _all_but_shape(scene: Scene) -> tuple:
    return (scene.colour, scene.count, scene.size, scene.background, scene.pattern)


def batch_indices(
    scenes: list[Scene], shape_twins: dict[tuple, list[int]], size: int, rng: random.Random
) -> list[int]:
    """Half the batch at random; each of those gets a partner that differs only in its shape.

    With random batches alone, colour, count and background already tell most captions apart,
    and the model learns little about shapes; these pairs make shape the only clue.
    """
    anchors = [rng.randrange(len(scenes)) for _ in range(size // 2)]
    partners = []
    for anchor in anchors:
        twins = shape_twins[_all_but_shape(scenes[anchor])]
        choice = rng.choice(twins)
        for _ in range(8):
            if scenes[choice].shape != scenes[anchor].shape:
                break
            choice = rng.choice(twins)
        partners.append(choice)
    return anchors + partners + [rng.randrange(len(scenes)) for _ in range(size % 2)]


def train(args: argparse.Namespace) -> dict:
    import open_clip
    import torch
    import torch.nn.functional as F
    from safetensors.torch import save_file

    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)
    register_demo_config()
    if args.config:  # trying another architecture
        open_clip.add_model_config(args.config)
    name = args.config.stem if args.config else DEMO_MODEL_NAME
    model = open_clip.create_model(name, device=args.device)
    tokenizer = open_clip.get_tokenizer(name)
    image_size = model.visual.preprocess_cfg["size"]
    image_size = image_size if isinstance(image_size, int) else image_size[0]
    mean = torch.tensor(model.visual.image_mean, device=args.device).view(1, 3, 1, 1)
    std = torch.tensor(model.visual.image_std, device=args.device).view(1, 3, 1, 1)

    started = time.monotonic()
    scenes, pixels = make_dataset(args.images, image_size, args.seed, args.processes)
    pixels = torch.from_numpy(pixels)
    logger.info("rendered %d training scenes in %.0fs", len(scenes), time.monotonic() - started)

    shape_twins = group_by_all_but_shape(scenes)
    token_cache: dict[str, torch.Tensor] = {}

    def tokens_for(texts: list[str]) -> torch.Tensor:
        missing = [text for text in set(texts) if text not in token_cache]
        if missing:
            token_cache.update(zip(missing, tokenizer(missing), strict=True))
        return torch.stack([token_cache[text] for text in texts])

    decay: list[torch.nn.Parameter] = []
    no_decay: list[torch.nn.Parameter] = []
    for name, param in model.named_parameters():
        plain = param.ndim < 2 or "embedding" in name or "logit_scale" in name
        (no_decay if plain else decay).append(param)
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.lr,
        betas=(0.9, 0.98),
        eps=1e-6,
    )
    warmup = max(1, args.steps // 20)

    def lr_at(step: int) -> float:
        if step < warmup:
            return args.lr * (step + 1) / warmup
        progress = (step - warmup) / max(1, args.steps - warmup)
        return args.lr * 0.5 * (1 + math.cos(math.pi * progress))

    model.train()
    for step in range(args.steps):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step)
        index = torch.tensor(batch_indices(scenes, shape_twins, args.batch_size, rng))
        batch_scenes = [scenes[i] for i in index.tolist()]
        texts = [
            partial_caption(s, rng) if rng.random() < args.partial else caption(s, rng)
            for s in batch_scenes
        ]
        images = pixels[index].to(args.device).permute(0, 3, 1, 2).float().div_(255)
        images = (images - mean) / std
        image_features, text_features, logit_scale = model(
            images, tokens_for(texts).to(args.device)
        )
        logits = logit_scale * image_features @ text_features.T
        # Captions that are word for word the same are positives for each other too.
        same = torch.tensor([[a == b for b in texts] for a in texts], device=args.device).float()
        targets = same / same.sum(dim=1, keepdim=True)
        loss = (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        if step % 100 == 0 or step == args.steps - 1:
            logger.info(
                "step %d/%d  loss %.3f  scale %.1f  %.0fs",
                step, args.steps, loss.item(), logit_scale.item(), time.monotonic() - started,
            )  # fmt: skip

    model.eval()
    minutes = (time.monotonic() - started) / 60
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    recipe = {key: value for key, value in vars(args).items() if key != "out"}
    metadata = {
        "model": DEMO_MODEL_NAME,
        "recipe": json.dumps(recipe, default=str),
        "minutes": f"{minutes:.1f}",
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata=metadata)
    logger.info("saved %s (%.1f MB) after %.1f minutes", args.out, args.out.stat().st_size / 1e6,
                minutes)  # fmt: skip
    return {"model": model, "minutes": minutes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_WEIGHTS)
    parser.add_argument("--steps", type=int, default=1200)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--images", type=int, default=100_000)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--partial", type=float, default=0.35, help="share of partial captions")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--processes", type=int, default=2, help="processes rendering scenes")
    parser.add_argument("--config", type=Path, help="an open_clip model config to try instead")
    parser.add_argument("--evaluate", type=int, default=500, help="held-out scenes to test on")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")

    result = train(args)
    if args.evaluate:
        import open_clip

        from workers.embedding.demo.training.evaluate import evaluate_model

        name = args.config.stem if args.config else DEMO_MODEL_NAME
        model = result["model"].to("cpu")
        _, _, preprocess = open_clip.create_model_and_transforms(name)
        tokenizer = open_clip.get_tokenizer(name)
        report = evaluate_model(model, preprocess, tokenizer, n=args.evaluate, seed=1234)
        logger.info("held-out evaluation: %s", report)


if __name__ == "__main__":
    main()
