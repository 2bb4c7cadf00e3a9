"""ResNet encoders (He et al.) for the semantic models, Keras-applications layer names.

`resnet50` uses bottleneck blocks (1x1, 3x3, 1x1; stride on the first 1x1 as in
`keras.applications.ResNet50`), so `resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5`
loads by name when `width=1`. `resnet34` uses basic blocks (3x3, 3x3) with the same
naming scheme (`conv3_block1_1_conv`, ...); Keras ships no ImageNet file for it.

Shape shorthand: x [B, H, W, 3] normalized, H and W multiples of 32.
    conv1_relu [B, H/2, W/2, 64w]; convN_blockK_out [B, H/2^N, W/2^N, F_N] for N = 2..5
    (F = 256w, 512w, 1024w, 2048w for resnet50; 64w, 128w, 256w, 512w for resnet34).
"""

import keras

from kseg.models.normalization import BatchNormalization

BN_EPSILON = 1.001e-5
RESNET50_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))
RESNET34_STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))


def _bn(x, name):
    return BatchNormalization(axis=-1, epsilon=BN_EPSILON, name=name)(x)


def _stem(x, filters):
    """7x7/2 conv + BN + ReLU (`conv1_relu`, stride 2) then 3x3/2 max-pool (stride 4)."""
    x = keras.layers.ZeroPadding2D(((3, 3), (3, 3)), name="conv1_pad")(x)
    x = keras.layers.Conv2D(filters, 7, strides=2, name="conv1_conv")(x)
    x = _bn(x, "conv1_bn")
    x = keras.layers.Activation("relu", name="conv1_relu")(x)
    x = keras.layers.ZeroPadding2D(((1, 1), (1, 1)), name="pool1_pad")(x)
    return keras.layers.MaxPooling2D(3, strides=2, name="pool1_pool")(x)


def bottleneck_block(x, filters, stride=1, conv_shortcut=True, name=""):
    """ResNet v1 bottleneck: [B, H, W, C] -> [B, H/stride, W/stride, 4 * filters]."""
    if conv_shortcut:
        shortcut = keras.layers.Conv2D(4 * filters, 1, strides=stride, name=name + "_0_conv")(x)
        shortcut = _bn(shortcut, name + "_0_bn")
    else:
        shortcut = x
    x = keras.layers.Conv2D(filters, 1, strides=stride, name=name + "_1_conv")(x)
    x = keras.layers.Activation("relu", name=name + "_1_relu")(_bn(x, name + "_1_bn"))
    x = keras.layers.Conv2D(filters, 3, padding="same", name=name + "_2_conv")(x)
    x = keras.layers.Activation("relu", name=name + "_2_relu")(_bn(x, name + "_2_bn"))
    x = keras.layers.Conv2D(4 * filters, 1, name=name + "_3_conv")(x)
    x = keras.layers.Add(name=name + "_add")([shortcut, _bn(x, name + "_3_bn")])
    return keras.layers.Activation("relu", name=name + "_out")(x)


def basic_block(x, filters, stride=1, conv_shortcut=True, name=""):
    """ResNet basic block (two 3x3): [B, H, W, C] -> [B, H/stride, W/stride, filters]."""
    if conv_shortcut:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False,
                                       name=name + "_0_conv")(x)
        shortcut = _bn(shortcut, name + "_0_bn")
    else:
        shortcut = x
    x = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False,
                            name=name + "_1_conv")(x)
    x = keras.layers.Activation("relu", name=name + "_1_relu")(_bn(x, name + "_1_bn"))
    x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name + "_2_conv")(x)
    x = keras.layers.Add(name=name + "_add")([shortcut, _bn(x, name + "_2_bn")])
    return keras.layers.Activation("relu", name=name + "_out")(x)


def _resnet(x, stages, block, width, shortcut_first):
    x = _stem(x, max(1, int(round(64 * width))))
    for stage, (filters, blocks) in enumerate(stages, start=2):
        filters = max(1, int(round(filters * width)))
        stride = 1 if stage == 2 else 2
        for index in range(1, blocks + 1):
            first = index == 1
            x = block(x, filters, stride=stride if first else 1,
                      conv_shortcut=first and (shortcut_first or stage > 2),
                      name=f"conv{stage}_block{index}")
    return x


def resnet50(x, width=1.0):
    """ResNet-50 (bottleneck blocks 3-4-6-3): x [B, H, W, 3] -> conv5_block3_out
    [B, H/32, W/32, 2048 * width]."""
    return _resnet(x, RESNET50_STAGES, bottleneck_block, width, shortcut_first=True)


def resnet34(x, width=1.0):
    """ResNet-34 (basic blocks 3-4-6-3): x [B, H, W, 3] -> conv5_block3_out
    [B, H/32, W/32, 512 * width]."""
    return _resnet(x, RESNET34_STAGES, basic_block, width, shortcut_first=False)
