"""EfficientNet-Lite1/2 ports: parity with an independent torch forward pass, and what their
ImageNet heads see."""

import numpy as np
import pytest

from fruits_p8.features import efficientnet_lite
from fruits_p8.features.backbones import lite_package_file
from fruits_p8.features.preprocess import LITE_SCALING, decode_rgb
from fruits_p8.features.torch_pickle import load_state_dict
from fruits_p8.sample import STYLES, fruit_jpeg

pytestmark = pytest.mark.tensorflow

GRANNY_SMITH, BANANA = 948, 954  # ImageNet-1k class indices


@pytest.fixture(scope="module", params=["lite1", "lite2"])
def variant(request):
    shape = efficientnet_lite.VARIANTS[request.param]
    model = efficientnet_lite.build(include_top=True, variant=shape)
    state = load_state_dict(lite_package_file(request.param))
    efficientnet_lite.assign(model, efficientnet_lite.keras_weights_from_torch(state, shape))
    return shape, model


def drawn(label: str, count: int, size: int) -> np.ndarray:
    style = next(s for s in STYLES if s.label == label)
    pixels = np.stack([decode_rgb(fruit_jpeg(style, "Test", i), size) for i in range(count)])
    return LITE_SCALING.apply(pixels)


def test_keras_port_matches_a_torch_forward_pass_on_logits_and_features(variant):
    torch = pytest.importorskip("torch")
    from tests.support.torch_lite import load

    shape, keras_head = variant
    reference = load(str(lite_package_file(shape.name)))
    size = shape.resolution
    rng = np.random.default_rng(0)
    inputs = np.concatenate([
        drawn("Banana", 2, size), drawn("Apple Granny Smith", 2, size),
        rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32),
    ])
    features_model = efficientnet_lite.build(include_top=False, variant=shape)
    features_model.set_weights(keras_head.get_weights()[:-2])
    keras_logits = keras_head(inputs, training=False).numpy()
    keras_features = features_model(inputs, training=False).numpy()
    with torch.no_grad():
        nchw = torch.from_numpy(inputs.transpose(0, 3, 1, 2).copy())
        torch_features = reference.features(nchw).numpy()
        torch_logits = reference(nchw).numpy()
    assert keras_features.shape == torch_features.shape == (6, 1280)
    assert np.abs(keras_features - torch_features).max() < 1e-4 * np.abs(torch_features).max()
    assert np.abs(keras_logits - torch_logits).max() < 1e-4 * np.abs(torch_logits).max()
    assert np.array_equal(keras_logits.argmax(1), torch_logits.argmax(1))


def top5_rate(model, images: np.ndarray, cls: int) -> float:
    logits = model(images, training=False).numpy()
    return float((np.argsort(-logits, axis=1)[:, :5] == cls).any(axis=1).mean())


def test_imagenet_head_recognises_drawn_granny_smiths_and_bananas(variant):
    shape, keras_head = variant
    assert top5_rate(keras_head, drawn("Apple Granny Smith", 20, shape.resolution),
                     GRANNY_SMITH) >= 0.8
    assert top5_rate(keras_head, drawn("Banana", 20, shape.resolution), BANANA) >= 0.5
