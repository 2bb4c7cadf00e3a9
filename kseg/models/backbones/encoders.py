"""FCN / U-Net encoders: build one from the registry, read its skip taps, load its weights.

Weights: `encoder_weights=None` (random), `"imagenet"` (Keras' cached
`~/.keras/models/<file>`; kseg never downloads) or a path to a legacy `.h5` file loaded
by layer name (Keras-applications ResNet names, as in Keras' ImageNet file, are mapped to
kseg's by `kseg.saving.resnet_names`), or a Keras 3 `.weights.h5` of the encoder itself.
"""

import os
from pathlib import Path

import keras

from kseg.models.backbones.registry import IMAGENET_FILES, get_encoder

IMAGENET_URL = "https://storage.googleapis.com/tensorflow/keras-applications/"

__all__ = ["IMAGENET_URL", "build_encoder", "encoder_features", "imagenet_weights_path",
           "load_encoder_weights"]


def build_encoder(name, inputs, x, width=1.0, weights=None, freeze=False, output_stride=32):
    """Apply encoder `name` to `x` and return it as a `keras.Model(inputs, deepest)`.

    Args:
        name: a key of `ENCODERS`.
        inputs: the `keras.Input` [B, H, W, 3] that `x` was computed from.
        x: the normalized image tensor [B, H, W, 3].
        width: filter multiplier (ImageNet weights need 1.0).
        weights: None, "imagenet" or a path (see the module docstring).
        freeze: make the encoder layers non-trainable.
        output_stride: 32, or 16 / 8 for a ResNet with dilated last stages.
    Returns:
        The encoder model; its layers are the model's, so `encoder_features` reads taps.
    """
    entry = get_encoder(name)
    kwargs = {} if output_stride == 32 else {"output_stride": output_stride}
    encoder = keras.Model(inputs, entry.encoder(x, width=width, **kwargs), name=f"{name}_encoder")
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
    entry = get_encoder(name)
    return {stride: encoder.get_layer(layer).output
            for layer, stride in zip(entry.skips, entry.skip_strides)}


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
    """Load "imagenet" or a file path into `encoder`; returns the path.

    A legacy `.h5` loads by layer name, Keras-applications ResNet names mapped to kseg's
    (every shape checked before anything is assigned); a `.weights.h5` loads whole.
    """
    from kseg.saving.legacy_h5 import load_weights_by_name, read_weight_groups
    from kseg.saving.resnet_names import renamer_for

    path = imagenet_weights_path(name) if weights == "imagenet" else Path(weights)
    if not path.is_file():
        raise FileNotFoundError(f"encoder_weights file not found: {path}")
    if str(path).endswith(".weights.h5"):
        encoder.load_weights(path)
        return path
    stored = list(read_weight_groups(path))
    wanted = {layer.name for layer in encoder.layers if layer.weights}
    rename = renamer_for(stored, wanted)
    if not {rename(n) for n in stored} & wanted:
        raise ValueError(f"{path} holds no layer of {encoder.name} (expected names like "
                         f"{sorted(wanted)[:3]}); is it the right weights file?")
    load_weights_by_name(encoder, path, rename=rename, verbose=0)
    return path
