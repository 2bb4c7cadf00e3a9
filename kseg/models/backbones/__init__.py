"""Encoders of the semantic models, by name: the table `ENCODERS`.

`ENCODERS[name] = (builder, skip_layer_names, strides)`: `builder(x, width)` applies
the encoder to a normalized image tensor; `skip_layer_names[i]` is the layer whose
output has stride `strides[i]` (the last one is the deepest feature map, stride 32).

Weights: `encoder_weights=None` (random), `"imagenet"` (Keras' cached
`~/.keras/models/<file>`; kseg never downloads) or a path to a legacy `.h5` file
loaded by layer name (or a Keras 3 `.weights.h5` of the encoder itself).

May import: Keras, h5py; nothing of kseg above `kseg.models`.
"""

import os
from pathlib import Path

import keras

from kseg.models.backbones.resnet import resnet34, resnet50
from kseg.models.backbones.vgg16 import vgg16

_RESNET_SKIPS = ("conv1_relu", "conv2_block3_out", "conv3_block4_out", "conv4_block6_out",
                 "conv5_block3_out")
ENCODERS = {
    "vgg16": (vgg16, ("block1_conv2", "block2_conv2", "block3_conv3", "block4_conv3",
                      "block5_conv3", "block5_pool"), (1, 2, 4, 8, 16, 32)),
    "resnet34": (resnet34, _RESNET_SKIPS, (2, 4, 8, 16, 32)),
    "resnet50": (resnet50, _RESNET_SKIPS, (2, 4, 8, 16, 32)),
}
# Keras-applications ImageNet files (no top) and where Keras publishes them.
IMAGENET_FILES = {
    "vgg16": "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
    "resnet50": "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5",
}
IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

__all__ = ["ENCODERS", "IMAGENET_FILES", "build_encoder", "encoder_features",
           "imagenet_weights_path", "load_encoder_weights", "resnet34", "resnet50", "vgg16"]


def build_encoder(name, inputs, x, width=1.0, weights=None, freeze=False):
    """Apply encoder `name` to `x` and return it as a `keras.Model(inputs, deepest)`.

    Args:
        name: a key of `ENCODERS`.
        inputs: the `keras.Input` [B, H, W, 3] that `x` was computed from.
        x: the normalized image tensor [B, H, W, 3].
        width: filter multiplier (ImageNet weights need 1.0).
        weights: None, "imagenet" or a path (see the module docstring).
        freeze: make the encoder layers non-trainable.
    Returns:
        The encoder model; its layers are the model's, so `encoder_features` reads taps.
    """
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; expected one of {', '.join(ENCODERS)}")
    builder = ENCODERS[name][0]
    encoder = keras.Model(inputs, builder(x, width=width), name=f"{name}_encoder")
    if weights is not None:
        if width != 1.0:
            raise ValueError(f"encoder_weights={weights!r} needs the full-width {name} "
                             f"(width 1.0), got width {width}")
        load_encoder_weights(encoder, name, weights)
    if freeze:
        for layer in encoder.layers:
            layer.trainable = False
    return encoder


def encoder_features(encoder, name):
    """{stride: tensor} of the skip taps of encoder `name` (see `ENCODERS`)."""
    _, layer_names, strides = ENCODERS[name]
    return {stride: encoder.get_layer(layer).output for layer, stride in zip(layer_names, strides)}


def imagenet_weights_path(name):
    """Path of Keras' cached ImageNet file for encoder `name`; clear error if missing."""
    if name not in IMAGENET_FILES:
        raise ValueError(f"Keras publishes no ImageNet weights for encoder {name!r} "
                         f"(available: {', '.join(IMAGENET_FILES)}); pass a local .h5 path "
                         f"as encoder_weights instead.")
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    path = Path(home) / "models" / IMAGENET_FILES[name]
    if not path.is_file():
        raise FileNotFoundError(
            f"ImageNet weights for {name} not found at {path}. kseg never downloads: copy "
            f"{IMAGENET_FILES[name]} (from {IMAGENET_URL}) to {path}, or pass "
            f"encoder_weights=<path to the .h5 file>.")
    return path


def load_encoder_weights(encoder, name, weights):
    """Load "imagenet" or a file path into `encoder` (legacy .h5 by layer name)."""
    path = imagenet_weights_path(name) if weights == "imagenet" else Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"encoder_weights file not found: {path}")
    if str(path).endswith(".weights.h5"):
        encoder.load_weights(path)
        return path
    _check_layer_names(encoder, path)
    encoder.load_weights(path, by_name=True)
    return path


def _check_layer_names(encoder, path):
    import h5py

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "layer_names" not in f.attrs and "model_weights" in f \
            else f
        stored = {n.decode() if isinstance(n, bytes) else n
                  for n in group.attrs.get("layer_names", [])}
    wanted = {layer.name for layer in encoder.layers if layer.weights}
    if not stored & wanted:
        raise ValueError(f"{path} holds no layer of {encoder.name} (expected names like "
                         f"{sorted(wanted)[:3]}); is it the right weights file?")
