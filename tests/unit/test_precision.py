"""The CNN's arithmetic: bfloat16 really runs, stays close to float32; the checks that say so."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from fruits_p8.features.backbones import WeightsContext, get_backbone, load_weights
from fruits_p8.features.featurizer import Featurizer
from fruits_p8.features.forward import compile_forward
from fruits_p8.features.precision import (
    NATIVE_BFLOAT16_FLAGS,
    agreement,
    cpu_runs_bfloat16_natively,
    native_bfloat16,
    nearest_neighbour_accuracy,
    with_precision,
)
from fruits_p8.features.preprocess import decode_for_cnn
from fruits_p8.sample import STYLES, fruit_jpeg

pytestmark = [pytest.mark.tensorflow, pytest.mark.parity]  # bfloat16: ml_dtypes differs

OTHER_FLAGS = ["fpu", "sse4_2", "avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_tile",
               "amx_int8", "avx512_fp16"]


def cpuinfo(flags: list[str], processors: int = 2) -> str:
    block = "processor\t: {n}\nmodel name\t: Some CPU\nflags\t\t: {flags}\n\n"
    return "".join(block.format(n=n, flags=" ".join(flags)) for n in range(processors))


@given(st.lists(st.sampled_from(OTHER_FLAGS + sorted(NATIVE_BFLOAT16_FLAGS)), unique=True))
def test_native_bfloat16_is_read_from_the_flags(flags):
    assert native_bfloat16(cpuinfo(flags)) == bool(NATIVE_BFLOAT16_FLAGS & set(flags))


def test_a_flag_inside_another_word_or_no_flags_line_is_not_native():
    assert not native_bfloat16(cpuinfo(["avx512_bf16x"]))
    assert not native_bfloat16("processor\t: 0\nmodel name\t: avx512_bf16 inside\n")


def test_cpuinfo_file_read_and_missing(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo(["avx2", "amx_bf16"]))
    assert cpu_runs_bfloat16_natively(str(path)) is True
    path.write_text(cpuinfo(["avx2"]))
    assert cpu_runs_bfloat16_natively(str(path)) is False
    assert cpu_runs_bfloat16_natively(str(tmp_path / "missing")) is None


def test_agreement_of_known_pairs():
    x = np.random.default_rng(0).normal(size=(5, 7))
    same = agreement(x, x.copy())
    assert same.rows == 5 and same.median_relative == 0 and same.min_cosine == pytest.approx(1)
    doubled = agreement(x, 2 * x)
    assert doubled.median_relative == pytest.approx(1) and doubled.max_relative == pytest.approx(1)
    assert doubled.min_cosine == pytest.approx(1)
    flipped = x.copy()
    flipped[3] *= -1
    turned = agreement(x, flipped)
    assert turned.max_relative == pytest.approx(2) and turned.min_cosine == pytest.approx(-1)
    assert turned.median_relative == 0
    with pytest.raises(ValueError, match="one shape"):
        agreement(x, x[:4])


def test_agreement_of_tiny_and_zero_rows():
    tiny = np.full((2, 4), 1e-9)  # features of a net whose activations vanished
    close = agreement(tiny, tiny * 1.01)
    assert close.min_cosine == pytest.approx(1) and close.max_relative == pytest.approx(0.01)
    zero = np.zeros((2, 4))
    assert agreement(zero, zero).min_cosine == 1 and agreement(zero, zero).max_relative == 0
    assert agreement(tiny, tiny).min_cosine == pytest.approx(1)
    apart = agreement(zero, tiny)
    assert apart.max_relative == np.inf and apart.min_cosine == 0


def test_nearest_neighbour_accuracy_by_hand():
    points = np.array([[0.0], [1.0], [10.0], [11.0]])
    # 0 and 1 are each other's neighbours with other labels; 10 and 11 agree
    assert nearest_neighbour_accuracy(points, ["a", "b", "a", "a"]) == 0.5
    assert nearest_neighbour_accuracy(points, ["a", "a", "b", "b"]) == 1.0
    with pytest.raises(ValueError):
        nearest_neighbour_accuracy(points[:1], ["a"])


@given(st.integers(0, 10_000), st.integers(2, 40), st.integers(1, 50))
def test_nearest_neighbour_accuracy_does_not_depend_on_the_chunk(seed, rows, chunk):
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(rows, 3))
    labels = rng.choice(["a", "b", "c"], size=rows)
    brute = np.linalg.norm(points[:, None] - points[None], axis=2)
    np.fill_diagonal(brute, np.inf)
    expected = float((labels[brute.argmin(axis=1)] == labels).mean())
    assert nearest_neighbour_accuracy(points, labels, chunk=chunk) == pytest.approx(expected)


def test_unknown_precision_is_refused(tmp_path):
    backbone = get_backbone("efficientnet_lite0")
    weights = load_weights(backbone, "random", WeightsContext(tmp_path))
    with pytest.raises(ValueError, match="precision"):
        Featurizer(backbone, weights, precision="float16")
    with pytest.raises(ValueError, match="precision"):
        with_precision(object(), "int8")
    model = object()
    assert with_precision(model, "float32") is model


@pytest.fixture(scope="module")
def lite0(tmp_path_factory):
    backbone = get_backbone("efficientnet_lite0")
    return backbone, load_weights(backbone, "package",
                                  WeightsContext(tmp_path_factory.mktemp("cache")))


def test_bfloat16_features_are_close_to_float32_but_not_equal(lite0):
    backbone, weights = lite0
    pixels = np.stack([decode_for_cnn(fruit_jpeg(style, "Test", i), 224)
                       for style in STYLES for i in range(2)])
    reference = compile_forward(backbone, weights.arrays)(pixels)
    bf16 = compile_forward(backbone, weights.arrays, precision="bfloat16")(pixels)
    assert bf16.dtype == np.float32 and bf16.shape == reference.shape
    found = agreement(reference, bf16)
    assert found.median_relative > 1e-3  # bfloat16 did run: float32 rounding is ~1e-6
    assert found.max_relative < 0.1 and found.min_cosine > 0.99
