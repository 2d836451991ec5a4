"""BatchNorm folding: same features, fewer layers, for every registered backbone."""

import numpy as np
import pytest

from fruits_p8.features.backbones import BACKBONES
from fruits_p8.features.fold import fold_batch_norms, foldable_pairs

pytestmark = pytest.mark.tensorflow


def randomise_batch_norms(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ == "BatchNormalization":
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.2, beta.shape),
                               rng.normal(0, 0.2, mean.shape), rng.uniform(0.5, 2.0, var.shape)])


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_folded_model_gives_the_same_features(name):
    import keras

    keras.utils.set_random_seed(0)
    backbone = BACKBONES[name]
    model = backbone.build_features()
    randomise_batch_norms(model, seed=1)
    folded = fold_batch_norms(model)
    kinds = [type(layer).__name__ for layer in folded.layers]
    assert "BatchNormalization" not in kinds
    assert len(folded.layers) < len(model.layers)
    side = backbone.input_size
    pixels = np.random.default_rng(2).uniform(-1, 1, (2, side, side, 3)).astype(np.float32)
    expected = model(pixels, training=False).numpy()
    got = folded(pixels, training=False).numpy()
    assert np.abs(expected).max() > 1e-3  # a meaningful comparison, not zeros against zeros
    assert np.allclose(got, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


def test_bn_with_a_shared_conv_output_is_not_folded():
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 3))
    conv = layers.Conv2D(4, 3, padding="same", name="conv")(inputs)
    bn = layers.BatchNormalization(name="bn")(conv)
    model = keras.Model(inputs, layers.Add()([conv, bn]))
    assert foldable_pairs(model.get_config()) == {}
    assert fold_batch_norms(model) is model
