"""Fully Convolutional Networks (Long, Shelhamer & Darrell, CVPR 2015): FCN-32s/16s/8s.

    model = FCN("fcn8s", backbone="vgg16", num_classes=2, fc_filters=512)
    probs = model.predict(images)   # raw RGB 0..255, normalization is inside the model

Layer names follow Long's Caffe prototxts: `fc6`, `fc7`, `score_fr`, `upscore2`,
`score_pool4`, `fuse_pool4`, `upscore_pool4`, `score_pool3`, `fuse_pool3`,
`upscore8` (FCN-16s: `upscore16`, FCN-32s: `upscore`). Skips are fused by SUM.
Learned upsampling is Conv2DTranspose initialised to bilinear interpolation
(`BilinearUpsampling`, kernel 2f - f % 2, padding "same"), so pooled features stay
aligned without Caffe's pad-100-and-crop; inputs are padded at the bottom/right to a
multiple of 32 inside the model and the scores cropped back to the input size.

With a ResNet encoder, `output_stride=8` (or 16) dilates its last stages instead of
striding them (DeepLab; torchvision's `fcn_resnet50` layout with `variant="fcn32s",
fc_filters=512, fc_kernel_size=3`): pool4 / pool5 then sit at pool3's stride and are
added without upsampling. The same weights; finer scores for ~7x the encoder's work.

Shape shorthand:
    images [B, H, W, 3] float RGB 0..255 (any H, W; multiples of 32 need no padding).
    pool3 / pool4 / pool5: stride 8 / 16 / 32 encoder features.
    output [B, H, W, K]; K = num_classes, or 1 for output_activation="sigmoid".
"""

import keras

from kseg.models.backbones import FCN_TAPS, build_encoder
from kseg.models.conv import Conv2D
from kseg.models.semantic_layers import (
    BilinearUpsampling,
    CoordChannels,
    CropToMatch,
    InputNormalization,
    PadToMultiple,
    output_activation_layer,
    output_channels,
)

VARIANTS = ("fcn32s", "fcn16s", "fcn8s")
# FCN_TAPS[backbone]: the encoder layers used as pool3, pool4, pool5 (strides 8, 16, 32),
# from the backbone registry (vgg16: block3_pool..; resnet50: res3d_out, res4f_out, res5c_out).
# fc6/fc7 width when fc_filters is None: VGG16 keeps Long's 4096; the ResNets have none.
DEFAULT_FC_FILTERS = {"vgg16": 4096}


def upsample(x, channels, factor, name):
    """Learned x`factor` upsampling [B, h, w, C] -> [B, h * factor, w * factor, C]."""
    return keras.layers.Conv2DTranspose(
        channels, 2 * factor - factor % 2, strides=factor, padding="same", use_bias=False,
        kernel_initializer=BilinearUpsampling(), name=name)(x)


def score(x, channels, name, zero_init=False):
    """1x1 class scores [B, h, w, C_in] -> [B, h, w, channels]."""
    init = "zeros" if zero_init else "glorot_uniform"
    return keras.layers.Conv2D(channels, 1, kernel_initializer=init, name=name)(x)


def fc_head(pool5, fc_filters, dropout, kernel_size=7):
    """fc6 (7x7, or `kernel_size`) and fc7 (1x1) as convolutions with ReLU and dropout;
    no-op if 0 filters."""
    if not fc_filters:
        return pool5
    # kseg's Conv2D (Keras' variables and class name): a 3x3 fc6 over a ResNet's 2048
    # channels runs as one matmul on TF's CPU (kseg.ops.conv), 388 -> 252 ms for
    # torchvision's 2048 -> 512 head on a 64x64 map
    x = Conv2D(fc_filters, kernel_size, padding="same", activation="relu", name="fc6")(pool5)
    x = keras.layers.Dropout(dropout, name="drop6")(x)
    x = keras.layers.Conv2D(fc_filters, 1, activation="relu", name="fc7")(x)
    return keras.layers.Dropout(dropout, name="drop7")(x)


def tap_strides(output_stride=32):
    """Strides of pool3, pool4, pool5: (8, 16, 32), or with a dilated encoder
    (output_stride 16: (8, 16, 16); 8: (8, 8, 8))."""
    return 8, min(16, output_stride), min(32, output_stride)


def fcn_decoder(variant, pools, fc_features, channels, strides=(8, 16, 32)):
    """Scores of the variant at stride 1: pools = (pool3, pool4, pool5) tensors at
    `strides` (`tap_strides`); a skip at its neighbour's stride is added without upsampling.

    Returns [B, H_pad, W_pad, channels] logits.
    """
    s3, s4, s5 = strides
    score_fr = score(fc_features, channels, "score_fr")
    if variant == "fcn32s":
        return upsample(score_fr, channels, s5, "upscore")
    upscore2 = upsample(score_fr, channels, s5 // s4, "upscore2") if s5 > s4 else score_fr
    score_pool4 = score(pools[1], channels, "score_pool4", zero_init=True)
    fuse_pool4 = keras.layers.Add(name="fuse_pool4")([upscore2, score_pool4])
    if variant == "fcn16s":
        return upsample(fuse_pool4, channels, s4, "upscore16")
    upscore_pool4 = (upsample(fuse_pool4, channels, s4 // s3, "upscore_pool4")
                     if s4 > s3 else fuse_pool4)
    score_pool3 = score(pools[0], channels, "score_pool3", zero_init=True)
    fuse_pool3 = keras.layers.Add(name="fuse_pool3")([upscore_pool4, score_pool3])
    return upsample(fuse_pool3, channels, s3, "upscore8")


def FCN(variant="fcn8s", backbone="vgg16", num_classes=21, input_shape=(None, None, 3),
        output_activation="softmax", encoder_weights=None, encoder_freeze=False,
        encoder_width=1.0, fc_filters=None, dropout=0.5, normalization=None,
        coord_channels=False, output_stride=32, fc_kernel_size=7, name=None):
    """Build an FCN as a functional `keras.Model`: images [B, H, W, 3] -> [B, H, W, K].

    Args:
        variant: "fcn32s", "fcn16s" or "fcn8s".
        backbone: a key of `FCN_TAPS`: "vgg16", "resnet18", "resnet34", "resnet50",
            "resnet101".
        num_classes: classes including background.
        input_shape: (H, W, 3); None for any size.
        output_activation: "softmax", "sigmoid" (num_classes 2 -> 1 channel) or "logits".
        encoder_weights: None, "imagenet" (Keras' cached file) or a path.
        encoder_freeze: freeze the encoder layers.
        encoder_width: encoder filter multiplier (tests / CPU; ImageNet needs 1.0).
        fc_filters: fc6/fc7 width (None: 4096 for VGG16, none for the ResNets; 0: none).
        dropout: dropout rate after fc6 and fc7.
        normalization: "caffe", "standard" or "scale"; None: "caffe" with encoder
            weights (what Keras' ImageNet weights expect), else "standard".
        output_stride: 32, or 16 / 8 for a ResNet encoder whose last stages are dilated
            instead of strided (DeepLab; torchvision's `fcn_resnet50` is output stride 8):
            the same weights, finer scores, about 4x (16) or 7x (8) the encoder's work.
        fc_kernel_size: fc6's kernel (Long's 7; torchvision's FCN head is a 3x3 conv).
    """
    if variant not in VARIANTS:
        raise ValueError(f"FCN variant must be one of {', '.join(VARIANTS)}, got {variant!r}")
    if backbone not in FCN_TAPS:
        raise ValueError(f"FCN backbone must be one of {', '.join(FCN_TAPS)}, got {backbone!r}")
    if output_stride != 32 and not backbone.startswith("resnet"):
        raise ValueError(f"output_stride={output_stride!r} needs a ResNet backbone (dilated "
                         f"stages); {backbone} has output stride 32 only")
    channels = output_channels(num_classes, output_activation)
    mode = normalization or ("caffe" if encoder_weights is not None else "standard")
    inputs = keras.Input(shape=input_shape, name="image")
    x = InputNormalization.for_mode(mode, name="normalize")(inputs)
    x = PadToMultiple(32, name="pad32")(x)
    encoder = build_encoder(backbone, inputs, x, width=encoder_width, weights=encoder_weights,
                            freeze=encoder_freeze, output_stride=output_stride)
    pools = [encoder.get_layer(layer).output for layer in FCN_TAPS[backbone]]
    fc_filters = DEFAULT_FC_FILTERS.get(backbone, 0) if fc_filters is None else fc_filters
    top = CoordChannels(name="coords")(pools[2]) if coord_channels else pools[2]
    logits = fcn_decoder(variant, pools, fc_head(top, fc_filters, dropout, fc_kernel_size),
                         channels, tap_strides(output_stride))
    logits = CropToMatch(name="crop")([logits, inputs])
    outputs = output_activation_layer(output_activation)(logits)
    return keras.Model(inputs, outputs, name=name or f"{variant}_{backbone}")


def build_fcn(config, input_shape=None):
    """An FCN from an `FCNConfig` (FCN_VARIANT, BACKBONE, NUM_CLASSES, OUTPUT_ACTIVATION,
    ENCODER_WEIGHTS, ENCODER_FREEZE, ENCODER_WIDTH, FCN_FC_FILTERS, FCN_DROPOUT,
    FCN_COORD_CHANNELS, FCN_OUTPUT_STRIDE, FCN_FC_KERNEL_SIZE), built under the config's DISTRIBUTION strategy and MIXED_PRECISION
    policy."""
    from kseg import distribute

    with distribute.scope(config):
        model = FCN(
            variant=config.FCN_VARIANT, backbone=config.BACKBONE, num_classes=config.NUM_CLASSES,
            input_shape=input_shape or (None, None, config.IMAGE_CHANNEL_COUNT),
            output_activation=config.OUTPUT_ACTIVATION, encoder_weights=config.ENCODER_WEIGHTS,
            encoder_freeze=config.ENCODER_FREEZE, encoder_width=config.ENCODER_WIDTH,
            fc_filters=config.FCN_FC_FILTERS, dropout=config.FCN_DROPOUT,
            coord_channels=bool(getattr(config, "FCN_COORD_CHANNELS", False)),
            output_stride=int(getattr(config, "FCN_OUTPUT_STRIDE", 32)),
            fc_kernel_size=int(getattr(config, "FCN_FC_KERNEL_SIZE", 7)), name=config.NAME)
    return distribute.prepare_model(model, config)
