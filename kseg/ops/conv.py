"""2-D convolution computed in groups of output channels, where that is faster.

On TensorFlow's CPU kernels (oneDNN) a 3x3 convolution with many output channels on a
large feature map runs about 25% faster as groups of 128 output channels concatenated
than as one call, with bit-identical outputs (the same sums, per output channel):
Mask R-CNN's 512-channel RPN convolution on a 128x128 P2 map takes 130 ms instead of
170 ms, the FPN's 256-channel 3x3 output convolution on P2 62 instead of 77 ms
(bench/RESULTS.md); on 32x32 maps (ResNet's res4 3x3 convolutions at 512^2, the FPN's
P4) 5.0 instead of 3.7 ms forward, 11.6 instead of 9.9 ms with both gradients. On 16x16
maps, with few output channels, on other backends or on a GPU the single call is as fast
or faster, so `output_groups` says 1 there.

A 3x3 convolution over many input channels (at least 1024: a 3x3 head on a ResNet's
2048-channel C5, as torchvision's FCN head) runs as one matmul and nine shifted adds on
TensorFlow's CPU (`conv3x3_by_matmul`, `by_matmul`): 2048 -> 512 on 64x64, 388 -> 252 ms.

Shape shorthand: x [N, H, W, C_in]; kernel [kh, kw, C_in, C_out] -> [N, H', W', C_out].
May import: keras, TensorFlow (device list only), kseg.ops._tf_fast.
"""

import functools

from keras import ops

from kseg.ops._tf_fast import should_use

GROUP_FILTERS = 128
MIN_FILTERS = 256
MIN_SIDE = 32
MATMUL_MIN_CHANNELS = 1024


@functools.cache
def _tf_on_cpu_only():
    import tensorflow as tf
    return not tf.config.list_physical_devices("GPU")


def output_groups(kernel_shape, input_shape, strides=(1, 1), use_fast_ops=None):
    """How many groups of output channels to compute the convolution in (1: one call).

    More than one only on TensorFlow without a GPU, outside XLA, for 3x3 stride-1
    kernels with at least 256 output channels (a multiple of 128) on maps whose known
    sides are both at least 32 (unknown sides count as large: Mask R-CNN's RPN runs one
    convolution over every pyramid level).
    """
    kh, kw, _, filters = kernel_shape
    if (kh, kw) != (3, 3) or tuple(strides) != (1, 1):
        return 1
    if filters < MIN_FILTERS or filters % GROUP_FILTERS:
        return 1
    if any(side is not None and side < MIN_SIDE for side in input_shape[1:3]):
        return 1
    if not should_use(use_fast_ops, xla_supported=False):
        return 1
    if not _tf_on_cpu_only():
        return 1
    return filters // GROUP_FILTERS


def by_matmul(kernel_shape, strides=(1, 1), use_fast_ops=None):
    """True where `conv3x3_by_matmul` should compute the convolution: TensorFlow without
    a GPU, outside XLA, 3x3 stride-1 kernels over at least 1024 input channels."""
    kh, kw, channels, _ = kernel_shape
    if (kh, kw) != (3, 3) or tuple(strides) != (1, 1) or channels < MATMUL_MIN_CHANNELS:
        return False
    return should_use(use_fast_ops, xla_supported=False) and _tf_on_cpu_only()


def conv3x3_by_matmul(x, kernel, use_fast_ops=None):
    """A 3x3 stride-1 "same" convolution [N, H, W, C] * [3, 3, C, K] -> [N, H, W, K]: one
    matmul and nine shifted adds on TensorFlow (`kseg.ops._tf_fast.conv3x3_by_matmul`),
    `keras.ops.conv` elsewhere; the same numbers to float32 rounding."""
    if should_use(use_fast_ops, xla_supported=False):
        from kseg.ops import _tf_fast

        return _tf_fast.conv3x3_by_matmul(x, kernel)
    return ops.conv(x, kernel, strides=1, padding="same")


def conv2d_in_groups(x, kernel, groups, strides=1, padding="same", dilation_rate=1,
                     bias=None, activation=None):
    """`activation(keras.ops.conv(x, kernel, ...) + bias)` as `groups` equal slices of the
    output channels, concatenated: the same numbers, per output channel.

    x [N, H, W, C_in]; kernel [kh, kw, C_in, C_out] with C_out divisible by `groups`;
    bias [C_out] or None; activation an element-wise callable or None. Bias and
    activation are applied to each group before the concatenation, so that TensorFlow
    fuses them into each group's convolution (and the bias gradient into its filter
    gradient) instead of making extra passes over the whole output.
    """
    filters = kernel.shape[-1]
    groups = max(int(groups), 1)
    if filters % groups:
        raise ValueError(f"{filters} output channels do not split into {groups} groups")

    def split(tensor):
        # one split (its gradient is one concatenation, where slices would each scatter
        # into a zero tensor)
        return [tensor] if groups == 1 else ops.split(tensor, groups, axis=-1)

    kernels = split(kernel)
    biases = [None] * groups if bias is None else split(bias)
    parts = []
    for part, part_bias in zip(kernels, biases):
        y = ops.conv(x, part, strides=strides, padding=padding, dilation_rate=dilation_rate)
        if part_bias is not None:
            y = y + part_bias
        parts.append(y if activation is None else activation(y))
    return parts[0] if len(parts) == 1 else ops.concatenate(parts, axis=-1)


__all__ = ["by_matmul", "conv2d_in_groups", "conv3x3_by_matmul", "output_groups"]
