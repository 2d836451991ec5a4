import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from fruits_p8.features.preprocess import (
    LITE_SCALING,
    TF_SCALING,
    ImageError,
    decode_for_cnn,
    decode_rgb,
    open_image,
    preprocess_image,
    to_rgb,
)


def encode(image: Image.Image, fmt: str, **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def random_image(draw, mode: str, size: tuple[int, int]) -> Image.Image:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    w, h = size
    if mode == "I;16":
        return Image.fromarray(rng.integers(0, 65535, (h, w), dtype=np.uint16))
    base = "RGBA" if mode in ("LA", "RGBA") else "RGB"
    array = rng.integers(0, 256, (h, w, len(base)), dtype=np.uint8)
    return Image.fromarray(array).convert(mode)


@st.composite
def encoded_images(draw):
    mode = draw(st.sampled_from(["L", "LA", "RGB", "RGBA", "CMYK", "P", "I;16"]))
    size = (draw(st.integers(1, 120)), draw(st.integers(1, 120)))
    image = random_image(draw, mode, size)
    fmt = {"CMYK": "JPEG", "RGB": draw(st.sampled_from(["JPEG", "PNG", "WEBP", "GIF"]))}.get(
        mode, "PNG" if mode != "L" else draw(st.sampled_from(["JPEG", "PNG"]))
    )
    return encode(image, fmt), mode, fmt


@settings(max_examples=60, deadline=None)
@given(encoded_images(), st.sampled_from([32, 224]))
def test_any_mode_becomes_rgb_of_the_requested_size(case, size):
    data, _mode, _fmt = case
    pixels = decode_rgb(data, size)
    assert pixels.shape == (size, size, 3)
    assert pixels.dtype == np.uint8


@settings(max_examples=30, deadline=None)
@given(encoded_images())
def test_scaled_pixels_stay_in_the_backbone_range(case):
    data, _, _ = case
    for scaling, low, high in ((TF_SCALING, -1.0, 1.0), (LITE_SCALING, -127 / 128, 1.0)):
        x = preprocess_image(data, 224, scaling)
        assert x.dtype == np.float32 and x.shape == (224, 224, 3)
        assert x.min() >= low - 1e-6 and x.max() <= high + 1e-6


def test_scaling_maps_black_and_white_exactly():
    black = encode(Image.new("RGB", (100, 100), (0, 0, 0)), "PNG")
    white = encode(Image.new("RGB", (100, 100), (255, 255, 255)), "PNG")
    assert np.allclose(preprocess_image(black, 224, TF_SCALING), -1.0)
    assert np.allclose(preprocess_image(white, 224, TF_SCALING), 1.0)
    assert np.allclose(preprocess_image(black, 224, LITE_SCALING), -127 / 128)
    assert np.allclose(preprocess_image(white, 224, LITE_SCALING), 1.0)


def test_transparency_is_flattened_on_white():
    clear = Image.new("RGBA", (10, 10), (200, 0, 0, 0))
    assert (decode_rgb(encode(clear, "PNG"), 10) == 255).all()
    grey = Image.new("LA", (10, 10), (0, 0))
    assert (decode_rgb(encode(grey, "PNG"), 10) == 255).all()


def test_sixteen_bit_is_rescaled_not_clipped():
    ramp = np.tile(np.linspace(0, 65535, 64, dtype=np.uint16), (8, 1))
    pixels = decode_rgb(encode(Image.fromarray(ramp), "PNG"), 64)
    row = pixels[0, :, 0].astype(int)
    assert row[0] == 0 and row[-1] == 255
    assert len(set(row.tolist())) > 32  # a ramp, not a clipped step


def test_cmyk_jpeg_is_converted():
    cmyk = Image.new("CMYK", (20, 20), (0, 255, 255, 0))  # red in CMYK
    pixels = decode_rgb(encode(cmyk, "JPEG"), 20)
    r, g, b = pixels.reshape(-1, 3).mean(axis=0)
    assert r > 200 and g < 60 and b < 60


@pytest.mark.parametrize(
    "data,kind",
    [
        (b"", "empty"),
        (b"this is text, not a picture", "not_an_image"),
        (encode(Image.new("RGB", (100, 100), "red"), "JPEG")[:200], "corrupt"),
    ],
)
def test_bad_bytes_raise_a_typed_error(data, kind):
    with pytest.raises(ImageError) as info:
        decode_rgb(data, 224)
    assert info.value.kind == kind
    assert "\n" not in info.value.message


def test_decompression_bomb_is_refused_before_decoding():
    big = encode(Image.new("L", (5000, 5000)), "PNG")
    with pytest.raises(ImageError) as info:
        open_image(big, max_pixels=1_000_000)
    assert info.value.kind == "too_large"


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_never_crash(data):
    try:
        pixels = decode_rgb(data, 16)
    except ImageError as exc:
        assert exc.kind in {"empty", "not_an_image", "corrupt", "too_large"}
    else:
        assert pixels.shape == (16, 16, 3)
    try:
        small = decode_for_cnn(data, 16)
    except ImageError as exc:
        assert exc.kind in {"empty", "not_an_image", "corrupt", "too_large"}
    else:
        assert small.ndim == 3 and small.shape[2] == 3 and small.dtype == np.uint8


@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from(["L", "RGBA", "P", "RGB"]))
def test_images_no_larger_than_the_input_keep_their_shape_for_the_cnn(w, h, mode):
    data = encode(Image.new(mode, (w, h)), "PNG")
    pixels = decode_for_cnn(data, 16)
    if w <= 16 and h <= 16:
        assert pixels.shape == (h, w, 3)
        assert np.array_equal(pixels, np.asarray(to_rgb(Image.open(io.BytesIO(data)))))
    else:  # downscaled here, so that a batch never holds big photos
        assert pixels.shape == (16, 16, 3)


def test_to_rgb_keeps_rgb_untouched():
    image = Image.new("RGB", (3, 3), (1, 2, 3))
    assert to_rgb(image) is image
