"""Fold inference-mode BatchNormalization into the convolution before it.

conv -> BN computes gamma * (conv(x) - mean) / sqrt(var + eps) + beta, which is one
convolution with scaled kernels and a bias. Removing the BN ops cuts the CPU inference time
of MobileNet-style networks (docs/performance.md) and changes outputs only by float
rounding. Works on any Keras functional model by rewriting its config, so every backbone of
the registry gets it.
"""

from __future__ import annotations

import numpy as np

_CONVS = ("Conv2D", "DepthwiseConv2D")


def _history(arg) -> list | None:
    if isinstance(arg, dict) and arg.get("class_name") == "__keras_tensor__":
        return arg["config"]["keras_history"]
    return None


def _walk(value, visit):
    if isinstance(value, dict):
        found = visit(value)
        if found is None:
            for v in value.values():
                _walk(v, visit)
    elif isinstance(value, list | tuple):
        for v in value:
            _walk(v, visit)


def _inputs_of(layer_config: dict) -> list[str]:
    names: list[str] = []

    def visit(node):
        history = _history(node)
        if history is not None:
            names.append(history[0])
            return True
        return None

    _walk(layer_config.get("inbound_nodes", []), visit)
    return names


def _refs(value) -> list[list]:
    """input_layers/output_layers: one [name, node, index] ref, or a list of them."""
    if value and isinstance(value[0], str):
        return [value]
    return list(value or [])


def foldable_pairs(config: dict) -> dict[str, str]:
    """{batch-norm layer: conv layer} where the BN's only input is a conv used by it alone."""
    layers = {layer["name"]: layer for layer in config["layers"]}
    consumers: dict[str, int] = {}
    for layer in config["layers"]:
        for name in _inputs_of(layer):
            consumers[name] = consumers.get(name, 0) + 1
    for output in _refs(config.get("output_layers")):
        consumers[output[0]] = consumers.get(output[0], 0) + 1
    pairs = {}
    for layer in config["layers"]:
        if layer["class_name"] != "BatchNormalization":
            continue
        axis = layer["config"].get("axis", -1)
        if axis not in (-1, 3, [3], [-1]):
            continue
        inputs = _inputs_of(layer)
        if len(inputs) != 1:
            continue
        source = layers.get(inputs[0])
        if source and source["class_name"] in _CONVS and consumers.get(inputs[0]) == 1:
            pairs[layer["name"]] = inputs[0]
    return pairs


def fold_batch_norms(model):
    """A copy of `model` without the BN layers that follow convolutions, same outputs."""
    import keras

    config = model.get_config()
    pairs = foldable_pairs(config)
    if not pairs:
        return model
    convs = set(pairs.values())
    new_layers = []
    for layer in config["layers"]:
        if layer["name"] in pairs:
            continue
        if layer["name"] in convs:
            layer["config"]["use_bias"] = True
        new_layers.append(layer)

    def rewire(node):
        history = _history(node)
        if history is None:
            return None
        if history[0] in pairs:
            node["config"]["keras_history"] = [pairs[history[0]], 0, history[2]]
        return True

    _walk(new_layers, rewire)
    for key in ("output_layers", "input_layers"):
        refs = _refs(config.get(key))
        fixed = [[pairs.get(ref[0], ref[0]), *ref[1:]] for ref in refs]
        single = bool(config.get(key)) and isinstance(config[key][0], str)
        config[key] = fixed[0] if single else fixed
    config["layers"] = new_layers
    folded = keras.Model.from_config(config)

    bn_of = {conv: bn for bn, conv in pairs.items()}
    for layer in folded.layers:
        if not layer.weights:
            continue
        original = model.get_layer(layer.name)
        if layer.name in bn_of:
            layer.set_weights(_folded_weights(original, model.get_layer(bn_of[layer.name])))
        else:
            layer.set_weights(original.get_weights())
    return folded


def _folded_weights(conv, bn) -> list[np.ndarray]:
    weights = conv.get_weights()
    kernel = weights[0].astype(np.float64)
    bias = weights[1].astype(np.float64) if len(weights) > 1 else None
    params = dict(zip([w.path.rsplit("/", 1)[-1] for w in bn.weights], bn.get_weights(),
                      strict=True))
    mean = params["moving_mean"].astype(np.float64)
    variance = params["moving_variance"].astype(np.float64)
    gamma = params.get("gamma", np.ones_like(mean)).astype(np.float64)
    beta = params.get("beta", np.zeros_like(mean)).astype(np.float64)
    scale = gamma / np.sqrt(variance + bn.epsilon)
    if type(conv).__name__ == "DepthwiseConv2D":
        kernel = kernel * scale.reshape(kernel.shape[2], kernel.shape[3])
    else:
        kernel = kernel * scale
    base = bias if bias is not None else np.zeros_like(mean)
    return [kernel.astype(np.float32), ((base - mean) * scale + beta).astype(np.float32)]
