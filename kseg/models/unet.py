"""U-Net (Ronneberger, Fischer & Brox, MICCAI 2015), plain or on an encoder backbone.

    model = UNet(num_classes=2, depth=4, base_filters=16, output_activation="sigmoid")

Contracting path: per level two 3x3 convs (+BatchNorm) + ReLU, then 2x2 max-pool;
bottleneck; expanding path: 2x2 up-convolution (Conv2DTranspose), **Concatenate**
with the skip of the same level, two 3x3 convs; 1x1 classifier.

padding="same" (default): output size = input size; the input is zero-padded at the
bottom/right to a multiple of 2^depth inside the model and the scores cropped back.
padding="valid" (the paper): every 3x3 conv loses 2 pixels and skips are
center-cropped (`Cropping2D`), so the output is SMALLER than the input and centered in
it: `unet_valid_output_size(572, 4) == 388`. Input sizes must keep every pooled map
even (`unet_valid_input_size` gives the next one that works).

With `backbone` ("vgg16", "resnet18", "resnet34", "resnet50", "resnet101") the
contracting path is that encoder (see `kseg.models.backbones.ENCODERS`; the ResNets are
kseg's one ResNet, Matterport's layer names) and the decoder upsamples stride 32 -> 1 with
`base_filters * stride / 4` filters at each stride (64 -> 256, 128, 64, 32, 16).

Shape shorthand:
    images [B, H, W, 3] float RGB 0..255. output [B, H', W', K] (H' = H for "same");
    K = num_classes, or 1 for output_activation="sigmoid".
"""

import math

import keras

from kseg.models.backbones import ENCODERS, build_encoder, encoder_features
from kseg.models.normalization import BatchNormalization
from kseg.models.semantic_layers import (
    CropToMatch,
    InputNormalization,
    PadToMultiple,
    output_activation_layer,
    output_channels,
)

# BatchNorm moving-average momentum: Keras' 0.99 needs thousands of steps to settle, so
# short CPU runs would validate with stale statistics.
BN_MOMENTUM = 0.9


def unet_valid_output_size(input_size, depth=4):
    """Output side length of a padding="valid" U-Net for an input side of `input_size`.

    Raises ValueError if a feature map before pooling has odd size or a size vanishes.
    """
    size = int(input_size)
    for level in range(depth):
        size -= 4
        if size <= 0 or size % 2:
            raise ValueError(f"input size {input_size} does not fit a valid U-Net of depth "
                             f"{depth}: level {level + 1} has size {size} before pooling "
                             f"(needs even > 0); try unet_valid_input_size({input_size}, {depth})")
        size //= 2
    size -= 4
    for _ in range(depth):
        size = 2 * size - 4
    if size <= 0:
        raise ValueError(f"input size {input_size} is too small for a valid U-Net of depth {depth}")
    return size


def unet_valid_input_size(min_size, depth=4):
    """The smallest input side >= `min_size` that a padding="valid" U-Net accepts."""
    size = max(int(min_size), 1)
    while True:
        try:
            unet_valid_output_size(size, depth)
            return size
        except ValueError:
            size += 1


def _valid_crops(depth):
    """Per-side skip crop of each level for padding="valid" (constant for any input)."""
    shrink = [0] * (depth + 1)
    shrink[depth] = 4
    for level in range(depth - 1, -1, -1):
        shrink[level] = 8 + 2 * shrink[level + 1]
    return [shrink[level + 1] for level in range(depth)]


def conv_block(x, filters, name, padding="same", batchnorm=True):
    """Two 3x3 conv (+BN) + ReLU: [B, h, w, C] -> [B, h', w', filters] (h' = h - 4 if valid)."""
    for index in (1, 2):
        x = keras.layers.Conv2D(filters, 3, padding=padding, use_bias=not batchnorm,
                                kernel_initializer="he_normal", name=f"{name}_conv{index}")(x)
        if batchnorm:
            x = BatchNormalization(momentum=BN_MOMENTUM, name=f"{name}_bn{index}")(x)
        x = keras.layers.Activation("relu", name=f"{name}_relu{index}")(x)
    return x


def up_block(x, skip, filters, name, padding="same", batchnorm=True, crop=0):
    """Up-conv 2x2 of x, concatenate [skip (center-cropped by `crop`), up], conv block."""
    x = keras.layers.Conv2DTranspose(filters, 2, strides=2, name=f"{name}_upconv")(x)
    if skip is not None:
        if crop:
            skip = keras.layers.Cropping2D(crop, name=f"{name}_crop")(skip)
        x = keras.layers.Concatenate(name=f"{name}_concat")([skip, x])
    return conv_block(x, filters, name, padding=padding, batchnorm=batchnorm)


def plain_unet_features(x, depth, base_filters, padding, batchnorm, dropout):
    """The paper's encoder-decoder: normalized x -> [B, h, w, base_filters] features."""
    skips = []
    for level in range(depth):
        x = conv_block(x, base_filters * 2 ** level, f"enc{level + 1}", padding, batchnorm)
        skips.append(x)
        x = keras.layers.MaxPooling2D(2, name=f"pool{level + 1}")(x)
    x = conv_block(x, base_filters * 2 ** depth, "bottleneck", padding, batchnorm)
    if dropout:
        x = keras.layers.Dropout(dropout, name="bottleneck_dropout")(x)
    crops = _valid_crops(depth) if padding == "valid" else [0] * depth
    for level in range(depth - 1, -1, -1):
        x = up_block(x, skips[level], base_filters * 2 ** level, f"dec{level + 1}",
                     padding, batchnorm, crops[level])
    return x


def backbone_unet_features(inputs, x, backbone, base_filters, batchnorm, dropout,
                           encoder_weights, encoder_freeze, encoder_width):
    """Encoder `backbone` + decoder stride 32 -> 1: returns [B, H_pad, W_pad, F] features."""
    encoder = build_encoder(backbone, inputs, x, width=encoder_width, weights=encoder_weights,
                            freeze=encoder_freeze)
    features = encoder_features(encoder, backbone)
    x = features[32]
    if dropout:
        x = keras.layers.Dropout(dropout, name="bottleneck_dropout")(x)
    for stride in (16, 8, 4, 2, 1):
        filters = max(1, base_filters * stride // 4)
        x = up_block(x, features.get(stride), filters, f"dec_s{stride}", batchnorm=batchnorm)
    return x


def UNet(num_classes, depth=4, base_filters=64, padding="same", backbone=None,
         output_activation="softmax", input_shape=(None, None, 3), batchnorm=True,
         dropout=0.0, encoder_weights=None, encoder_freeze=False, encoder_width=1.0,
         normalization=None, foreground_prior=None, name="unet"):
    """Build a U-Net `keras.Model`: images [B, H, W, 3] RGB 0..255 -> [B, H', W', K].

    Args:
        num_classes: classes including background.
        depth: number of poolings of the plain U-Net (ignored with a backbone: 5).
        base_filters: filters of the first level (doubled per level); decoder width
            with a backbone (see module docstring).
        padding: "same" or "valid" (plain U-Net only; output smaller, see
            `unet_valid_output_size`).
        backbone: None (plain) or a key of `ENCODERS`.
        output_activation: "softmax", "sigmoid" (num_classes 2 -> 1 channel) or "logits".
        batchnorm: BatchNormalization after each 3x3 conv.
        dropout: dropout rate at the bottleneck (the paper's "drop-out layers at the end of
            the contracting path").
        encoder_weights, encoder_freeze, encoder_width: see `build_encoder`.
        normalization: "caffe", "standard" or "scale"; None: "caffe" with encoder weights,
            else "standard".
        foreground_prior: binary models (1 sigmoid channel or 2 classes): start the
            classifier bias so the first predictions are foreground with probability p
            (RetinaNet's prior init; avoids large, destabilising early losses when the
            foreground is rare). None: zeros.
    """
    if padding not in ("same", "valid"):
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}")
    if backbone is not None and (backbone not in ENCODERS or padding != "same"):
        raise ValueError(f"backbone must be None or one of {', '.join(ENCODERS)} with "
                         f"padding='same', got {backbone!r} with {padding!r}")
    channels = output_channels(num_classes, output_activation)
    mode = normalization or ("caffe" if encoder_weights is not None else "standard")
    inputs = keras.Input(shape=input_shape, name="image")
    x = InputNormalization.for_mode(mode, name="normalize")(inputs)
    if padding == "same":
        multiple = 32 if backbone else 2 ** depth
        x = PadToMultiple(multiple, name=f"pad{multiple}")(x)
    if backbone is None:
        x = plain_unet_features(x, depth, base_filters, padding, batchnorm, dropout)
    else:
        x = backbone_unet_features(inputs, x, backbone, base_filters, batchnorm, dropout,
                                   encoder_weights, encoder_freeze, encoder_width)
    bias = _prior_bias(foreground_prior, channels)
    logits = keras.layers.Conv2D(channels, 1, bias_initializer=bias, name="classifier")(x)
    if padding == "same":
        logits = CropToMatch(name="crop")([logits, inputs])
    return keras.Model(inputs, output_activation_layer(output_activation)(logits), name=name)


def _prior_bias(prior, channels):
    """Classifier bias so that the untrained model predicts foreground with probability
    `prior`: log(p / (1 - p)) for a sigmoid channel, [log(1 - p), log(p)] for a two-class
    softmax / logits output (softmax of it is [1 - p, p])."""
    if prior is None:
        return "zeros"
    if channels not in (1, 2) or not 0 < prior < 1:
        raise ValueError(f"foreground_prior needs a binary output (1 sigmoid channel or 2 "
                         f"classes) and a value in (0, 1), got {prior!r} with {channels} "
                         f"channels")
    if channels == 1:
        return keras.initializers.Constant(math.log(prior / (1 - prior)))
    return _VectorBias([math.log(1 - prior), math.log(prior)])


@keras.saving.register_keras_serializable(package="kseg")
class _VectorBias(keras.initializers.Initializer):
    """A fixed per-channel bias vector."""

    def __init__(self, values):
        self.values = [float(v) for v in values]

    def __call__(self, shape, dtype=None):
        return keras.ops.convert_to_tensor(self.values, dtype=dtype or "float32")

    def get_config(self):
        return {"values": self.values}


def build_unet(config, input_shape=None):
    """A U-Net from a `UNetConfig` (NUM_CLASSES, UNET_DEPTH, UNET_BASE_FILTERS, UNET_PADDING,
    UNET_BATCHNORM, UNET_DROPOUT, UNET_FOREGROUND_PRIOR, BACKBONE, OUTPUT_ACTIVATION,
    ENCODER_*), built under the config's DISTRIBUTION strategy and MIXED_PRECISION policy."""
    from kseg import distribute

    with distribute.scope(config):
        model = UNet(
            num_classes=config.NUM_CLASSES, depth=config.UNET_DEPTH,
            base_filters=config.UNET_BASE_FILTERS, padding=config.UNET_PADDING,
            backbone=config.BACKBONE, output_activation=config.OUTPUT_ACTIVATION,
            input_shape=input_shape or (None, None, config.IMAGE_CHANNEL_COUNT),
            batchnorm=config.UNET_BATCHNORM, dropout=config.UNET_DROPOUT,
            encoder_weights=config.ENCODER_WEIGHTS, encoder_freeze=config.ENCODER_FREEZE,
            encoder_width=config.ENCODER_WIDTH, foreground_prior=config.UNET_FOREGROUND_PRIOR,
            name=config.NAME)
    return distribute.prepare_model(model, config)

