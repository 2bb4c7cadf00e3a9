"""VGG16 convolutional encoder (Simonyan & Zisserman) with Keras-applications layer names.

The names (`block1_conv1` ... `block5_pool`) are those of `keras.applications.VGG16`,
so `vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5` loads by name when `width=1`.

Shape shorthand: x [B, H, W, 3] normalized (Keras "caffe" mode for ImageNet weights);
`blockN_conv*` [B, H / 2^(N-1), W / 2^(N-1), F_N]; `blockN_pool` [B, H / 2^N, W / 2^N, F_N]
with F = (64, 128, 256, 512, 512) * width.
"""

import keras

VGG16_BLOCKS = ((64, 2), (128, 2), (256, 3), (512, 3), (512, 3))


def vgg16(x, width=1.0):
    """Apply the VGG16 conv stack to tensor `x`; returns the `block5_pool` tensor.

    Args:
        x: [B, H, W, 3] normalized image tensor.
        width: filter multiplier (1.0 = the paper's widths; ImageNet weights need 1.0).
    """
    for block, (filters, convs) in enumerate(VGG16_BLOCKS, start=1):
        filters = max(1, int(round(filters * width)))
        for index in range(1, convs + 1):
            x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu",
                                    name=f"block{block}_conv{index}")(x)
        x = keras.layers.MaxPooling2D(2, strides=2, name=f"block{block}_pool")(x)
    return x
