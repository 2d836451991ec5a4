"""EfficientNet-Lite0 port: numerical parity with PyTorch, and what its ImageNet head sees."""

import numpy as np
import pytest

from fruits_p8.features import efficientnet_lite
from fruits_p8.features.backbones import lite0_package_file
from fruits_p8.features.preprocess import LITE_SCALING, decode_rgb
from fruits_p8.features.torch_pickle import load_state_dict
from fruits_p8.sample import STYLES, fruit_jpeg

pytestmark = pytest.mark.tensorflow

GRANNY_SMITH, BANANA = 948, 954  # ImageNet-1k class indices


@pytest.fixture(scope="module")
def keras_head():
    model = efficientnet_lite.build(include_top=True)
    efficientnet_lite.assign(
        model, efficientnet_lite.keras_weights_from_torch(load_state_dict(lite0_package_file()))
    )
    return model


def drawn(label: str, count: int) -> np.ndarray:
    style = next(s for s in STYLES if s.label == label)
    pixels = np.stack([decode_rgb(fruit_jpeg(style, "Test", i), 224) for i in range(count)])
    return LITE_SCALING.apply(pixels)


def test_keras_port_matches_pytorch_on_logits_and_pooled_features(keras_head):
    torch = pytest.importorskip("torch")
    from tests.support.torch_lite0 import load

    reference = load(str(lite0_package_file()))
    rng = np.random.default_rng(0)
    inputs = np.concatenate([
        drawn("Banana", 2), drawn("Apple Granny Smith", 2),
        rng.uniform(-1, 1, (2, 224, 224, 3)).astype(np.float32),
    ])
    features_model = efficientnet_lite.build(include_top=False)
    features_model.set_weights(keras_head.get_weights()[:-2])
    keras_logits = keras_head(inputs, training=False).numpy()
    keras_features = features_model(inputs, training=False).numpy()
    with torch.no_grad():
        nchw = torch.from_numpy(inputs.transpose(0, 3, 1, 2).copy())
        torch_features = reference.features(nchw).numpy()
        torch_logits = reference(nchw).numpy()
    assert np.abs(keras_logits - torch_logits).max() < 1e-3
    assert np.abs(keras_features - torch_features).max() < 1e-3
    assert np.array_equal(keras_logits.argmax(1), torch_logits.argmax(1))


def top5_rate(model, images: np.ndarray, cls: int) -> float:
    logits = model(images, training=False).numpy()
    return float((np.argsort(-logits, axis=1)[:, :5] == cls).any(axis=1).mean())


def test_imagenet_head_recognises_drawn_granny_smiths_and_bananas(keras_head):
    # Drawn fruit, not photos: many read as balls (the red apple as a croquet ball). The two
    # shapes ImageNet knows unambiguously come out right most of the time.
    assert top5_rate(keras_head, drawn("Apple Granny Smith", 20), GRANNY_SMITH) >= 0.8
    assert top5_rate(keras_head, drawn("Banana", 20), BANANA) >= 0.5


def test_the_same_check_fails_with_random_weights(keras_head):
    import keras

    keras.utils.set_random_seed(0)
    untrained = efficientnet_lite.build(include_top=True)
    assert top5_rate(untrained, drawn("Apple Granny Smith", 20), GRANNY_SMITH) < 0.8
