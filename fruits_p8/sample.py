"""A deterministic, fruit-like stand-in for Fruits 360, laid out exactly like it.

`<root>/<Split>/<Label with spaces>/<n>_100.jpg` (and `r_<n>_100.jpg` rotated variants):
100x100 RGB JPEGs of a shaded fruit on a white background, so every code path of the
pipeline (labels with spaces, nested splits, many small files) runs without the real set.
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


@dataclass(frozen=True)
class FruitStyle:
    """How one label looks: body colour, shape (width/height ratio), bend, stem, speckles."""

    label: str
    color: tuple[int, int, int]
    aspect: float
    bend: float = 0.0
    stem: bool = True
    speckle: float = 0.0


STYLES: tuple[FruitStyle, ...] = (
    FruitStyle("Apple Braeburn", (178, 34, 34), 1.0, speckle=0.15),
    FruitStyle("Apple Granny Smith", (120, 190, 60), 1.0, speckle=0.05),
    FruitStyle("Banana", (235, 205, 50), 2.6, bend=0.35, stem=False),
    FruitStyle("Lemon", (245, 225, 40), 1.35, stem=False, speckle=0.1),
    FruitStyle("Orange", (250, 140, 20), 1.0, stem=False, speckle=0.3),
    FruitStyle("Pepper Green", (30, 120, 40), 0.85),
)
SPLITS: dict[str, int] = {"Training": 40, "Test": 20}
SIZE = 100


def image_name(index: int) -> str:
    """Fruits 360 file names: 3_100.jpg, r_3_100.jpg, r2_3_100.jpg."""
    prefix = ("", "r_", "r2_")[index % 3]
    return f"{prefix}{index}_100.jpg"


def render_fruit(style: FruitStyle, rng: np.random.Generator, size: int = SIZE) -> Image.Image:
    """One fruit: a shaded body with random pose, size and lighting, on white."""
    scale = 4  # draw large, then downsample for smooth edges
    canvas = size * scale
    body = Image.new("RGBA", (canvas, canvas), (0, 0, 0, 0))
    draw = ImageDraw.Draw(body)
    radius = canvas * rng.uniform(0.26, 0.34)
    half_w = radius * math.sqrt(style.aspect)
    half_h = radius / math.sqrt(style.aspect)
    cx = canvas / 2 + rng.uniform(-0.06, 0.06) * canvas
    cy = canvas / 2 + rng.uniform(-0.06, 0.06) * canvas
    base = np.array(style.color, dtype=float) * rng.uniform(0.85, 1.1)
    light = np.array((rng.uniform(-0.35, -0.15), rng.uniform(-0.35, -0.15)))
    steps = 24
    for step in range(steps):
        t = step / steps
        shade = np.clip(base * (0.55 + 0.75 * t), 0, 255).astype(int)
        w, h = half_w * (1 - 0.8 * t), half_h * (1 - 0.8 * t)
        ox = cx + light[0] * half_w * t + _bend(style.bend, t) * half_w
        oy = cy + light[1] * half_h * t
        draw.ellipse((ox - w, oy - h, ox + w, oy + h), fill=(*shade, 255))
    if style.speckle:
        for _ in range(int(400 * style.speckle)):
            px = cx + rng.uniform(-1, 1) * half_w * 0.9
            py = cy + rng.uniform(-1, 1) * half_h * 0.9
            if ((px - cx) / half_w) ** 2 + ((py - cy) / half_h) ** 2 < 0.8:
                tone = np.clip(base * rng.uniform(0.6, 1.3), 0, 255).astype(int)
                draw.ellipse((px - 3, py - 3, px + 3, py + 3), fill=(*tone, 255))
    if style.stem:
        top = cy - half_h
        draw.line((cx, top + 8, cx + rng.uniform(-10, 10), top - canvas * 0.07),
                  fill=(90, 60, 20, 255), width=scale * 2)
    body = body.rotate(float(rng.uniform(0, 360)), resample=Image.Resampling.BICUBIC,
                       center=(cx, cy))
    image = Image.new("RGB", (canvas, canvas), (255, 255, 255))
    image.paste(body, mask=body.getchannel("A"))
    image = image.filter(ImageFilter.GaussianBlur(radius=scale * 0.4))
    return image.resize((size, size), Image.Resampling.LANCZOS)


def _bend(bend: float, t: float) -> float:
    return bend * math.sin(t * math.pi) * 0.5


def fruit_jpeg(style: FruitStyle, split: str, index: int, seed: int = 0) -> bytes:
    """The JPEG bytes of one sample image; the same arguments always give the same bytes."""
    key = f"{seed}/{split}/{style.label}/{index}".encode()
    rng = np.random.default_rng(zlib.crc32(key))
    buffer = io.BytesIO()
    render_fruit(style, rng).save(buffer, format="JPEG", quality=92)
    return buffer.getvalue()


def make_sample(
    root: Path,
    styles: Sequence[FruitStyle] = STYLES,
    splits: dict[str, int] | None = None,
    seed: int = 0,
) -> int:
    """Write the sample tree under root (existing identical files are kept); returns the count."""
    count = 0
    for split, per_label in (splits or SPLITS).items():
        for style in styles:
            folder = root / split / style.label
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(per_label):
                path = folder / image_name(index)
                data = fruit_jpeg(style, split, index, seed)
                if not path.exists() or path.read_bytes() != data:
                    path.write_bytes(data)
                count += 1
    return count


def sample_size(splits: dict[str, int] | None = None, styles: Sequence[FruitStyle] = STYLES) -> int:
    """How many images make_sample writes for these arguments."""
    return sum((splits or SPLITS).values()) * len(styles)
