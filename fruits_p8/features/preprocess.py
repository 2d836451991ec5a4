"""Image bytes -> fixed-size RGB pixels in the range a backbone was trained on."""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

# Larger images are refused before decoding: a 100x100 data set never needs them, and a
# decompression bomb must not take a worker's memory.
MAX_PIXELS = 40_000_000
WHITE = (255, 255, 255)


class ImageError(Exception):
    """A per-image failure; `kind` is a stable short code stored in the error rows."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True)
class Scaling:
    """Affine map from 0..255 pixel values to the backbone's input range: x * scale + offset."""

    scale: float
    offset: float

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        return pixels.astype(np.float32) * np.float32(self.scale) + np.float32(self.offset)


# Keras' MobileNetV2 preprocess_input ('tf' mode): [-1, 1].
TF_SCALING = Scaling(scale=1 / 127.5, offset=-1.0)
# EfficientNet-Lite (TF edge models): (x - 127) / 128.
LITE_SCALING = Scaling(scale=1 / 128.0, offset=-127.0 / 128.0)


def open_image(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    """Parse bytes into a PIL image, raising ImageError for anything that is not one."""
    if not data:
        raise ImageError("empty", "zero-byte file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > max_pixels:
                raise ImageError(
                    "too_large", f"{width}x{height} pixels is over the limit of {max_pixels}"
                )
            image.load()
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError,
            Image.DecompressionBombWarning) as exc:
        raise ImageError("not_an_image", _first_line(exc)) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError) as exc:
        raise ImageError("corrupt", _first_line(exc)) from None
    return image


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL mode becomes 8-bit RGB; transparency is flattened onto white (the data set's
    background), 16-bit and float images are rescaled rather than clipped."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        return _rescale_to_l(image).convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("LA", "La", "PA"):
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "RGBa"):
        background = Image.new("RGB", image.size, WHITE)
        background.paste(image, mask=image.getchannel("A"))
        return background
    return image.convert("RGB")


def _rescale_to_l(image: Image.Image) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    low, high = float(pixels.min()), float(pixels.max())
    if high > low:
        pixels = (pixels - low) * (255.0 / (high - low))
    else:
        pixels = np.zeros_like(pixels)
    return Image.fromarray(np.round(pixels).astype(np.uint8), mode="L")


def decode_rgb(data: bytes, size: int) -> np.ndarray:
    """Bytes -> uint8 array (size, size, 3), resized by PIL (bilinear)."""
    return _to_array(open_image(data), size)


def decode_for_cnn(data: bytes, size: int) -> np.ndarray:
    """Bytes -> uint8 RGB for a CNN of input `size`: an image no wider and no taller than
    `size` keeps its own shape (the compiled model upscales it in the graph, cheaper than
    PIL on the worker: docs/performance.md); a larger one is downscaled here, with PIL's
    antialiasing, so that no batch holds full-size photos."""
    image = open_image(data)
    width, height = image.size
    return _to_array(image, size if width > size or height > size else None)


def _to_array(image: Image.Image, size: int | None) -> np.ndarray:
    try:
        rgb = to_rgb(image)
        if size is not None and rgb.size != (size, size):
            rgb = rgb.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(rgb, dtype=np.uint8)
    except (OSError, ValueError) as exc:
        raise ImageError("corrupt", _first_line(exc)) from None


def preprocess_image(data: bytes, size: int, scaling: Scaling) -> np.ndarray:
    """Bytes -> float32 (size, size, 3) in the backbone's input range."""
    return scaling.apply(decode_rgb(data, size))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
