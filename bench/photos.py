"""Realistic test photos, generated: phone-sized (about 12 MP) and web-sized JPEGs at quality 90.

scikit-image's sample photos are not installed here, so scenes are built procedurally with
numpy and Pillow: a sky gradient, 1/f ("pink") noise terrain with a horizon, blurred shapes,
fine texture and sensor noise. That gives JPEGs whose size and decode cost are those of real
photos (a few MB at 12 MP, q90), which a flat synthetic picture would not.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

PHONE_SIZE = (4032, 3024)  # 12.2 MP, a typical phone camera
WEB_SIZE = (1280, 960)
QUALITY = 90


def pink_noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A 2-D field with a 1/f spectrum, scaled to 0..1: the statistics of natural images."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    radius[0, 0] = 1.0
    spectrum = (rng.normal(size=radius.shape) + 1j * rng.normal(size=radius.shape)) / radius
    field = np.fft.irfft2(spectrum, s=(height, width))
    field -= field.min()
    return field / max(field.max(), 1e-9)


def scene(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """One photo-like scene at ``size``, built at a quarter of the size and upscaled."""
    width, height = size
    w, h = max(width // 4, 64), max(height // 4, 48)
    sky_top, sky_bottom = rng.uniform(0.3, 1.0, 3), rng.uniform(0.5, 1.0, 3)
    t = np.linspace(0, 1, h)[:, None, None]
    pixels = (sky_top * (1 - t) + sky_bottom * t) * np.ones((h, w, 3))
    horizon = h * rng.uniform(0.35, 0.7) + h * 0.15 * (pink_noise(rng, 1, w)[0] - 0.5)
    ground = np.arange(h)[:, None] > horizon[None, :]
    terrain = pink_noise(rng, h, w)
    ground_colour = rng.uniform(0.1, 0.7, 3)
    shade = 0.4 + 0.9 * terrain[..., None]
    pixels = np.where(ground[..., None], ground_colour * shade, pixels)
    clouds = pink_noise(rng, h, w)[..., None]
    pixels = np.where(ground[..., None], pixels, pixels * 0.7 + 0.3 * clouds)
    image = Image.fromarray((np.clip(pixels, 0, 1) * 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(3, 9))):
        x, y = rng.uniform(0, w), rng.uniform(h * 0.3, h)
        r = rng.uniform(w * 0.02, w * 0.15)
        fill = tuple(int(v) for v in rng.integers(0, 256, 3))
        box = (x - r, y - r, x + r, y + r * rng.uniform(0.5, 2))
        (draw.ellipse if rng.random() < 0.5 else draw.rectangle)(box, fill=fill)
    image = image.filter(ImageFilter.GaussianBlur(rng.uniform(0.3, 1.2)))
    image = image.resize(size, Image.Resampling.BICUBIC)
    # Detail the upscale cannot have: fine texture and sensor noise at full resolution.
    detail = 6 * rng.standard_normal((height, width, 1), dtype=np.float32)
    detail = detail + 3 * rng.standard_normal((height, width, 3), dtype=np.float32)
    pixels = np.asarray(image, dtype=np.float32) + detail
    return Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, quality: int = QUALITY) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()


def photo_set(folder: Path, *, phone: int, web: int, seed: int = 7) -> list[Path]:
    """Write ``phone`` 12 MP and ``web`` 1.2 MP JPEGs into ``folder`` (reused if present)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for kind, count, size in (("phone", phone, PHONE_SIZE), ("web", web, WEB_SIZE)):
        for index in range(count):
            path = folder / f"{kind}-{seed}-{index:04d}.jpg"
            if not path.exists():
                rng = np.random.default_rng((seed, size[0], index))  # each photo its own
                path.write_bytes(jpeg(scene(rng, size)))
            paths.append(path)
    return paths
