"""Conv2D with Keras' variables and numbers, on the fastest kernel for its shape.

Two shapes are slow on TensorFlow's CPU convolution kernels, and both occur in Mask
R-CNN (bench/RESULTS.md has the measurements):
- A kernel that covers its whole input (the box head's 7x7 "valid" convolution on
  [rois, 7, 7, 256] and its 1x1 one on [rois, 1, 1, 1024]: fully connected layers in
  convolution form). Computed here as `reshape(x, [N, kh*kw*C]) @ reshape(kernel,
  [kh*kw*C, filters])`: 1000 ROIs forward 185 -> 85 ms, 512 ROIs forward and backward
  334 -> 161 ms. Any backend.
- A strided 1x1 convolution over fewer than 16 channels: TF 2.21's oneDNN filter
  gradient for it corrupts the heap at batch 1 (bench/onednn_conv1x1_stride2.py).
  Computed here as the strided subsample then a stride-1 1x1 convolution: the same
  sums, so the same numbers. Any backend.
- A 3x3 convolution with many output channels on a large map (the RPN's 512-channel
  convolution, the FPN's 3x3 output convolutions): computed in groups of 128 output
  channels on TensorFlow without a GPU (`kseg.ops.conv`; bit-identical).
- A 3x3 convolution over 1024 or more input channels (FCN's 3x3 fc6 on a ResNet's C5):
  one matmul and nine shifted adds on TensorFlow without a GPU (`kseg.ops.conv`).
The layer keeps `keras.layers.Conv2D`'s variables, names and class name (Keras 3
`.weights.h5` files key layers by class name), so checkpoints and `mask_rcnn_coco.h5`
load unchanged.

Shape shorthand: x [N, H, W, C] -> [N, H', W', filters].
May import: keras, kseg.ops.
"""

import keras
from keras import ops

from kseg.ops.conv import by_matmul, conv2d_in_groups, conv3x3_by_matmul, output_groups

# A strided 1x1 conv over fewer input channels than this is computed as subsample + conv.
ONEDNN_SAFE_1X1_CHANNELS = 16


@keras.saving.register_keras_serializable(package="kseg")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`: one matmul when the kernel covers the whole input, groups of
    output channels where TensorFlow's CPU kernels run those faster, Keras' path otherwise."""

    def _plain(self):
        return (self.data_format == "channels_last" and self.groups == 1
                and tuple(self.dilation_rate) == (1, 1))

    def _covers_input(self, shape):
        kh, kw = self.kernel_size
        return (self._plain() and tuple(self.strides) == (1, 1)
                and (self.padding == "valid" or (kh, kw) == (1, 1))
                and tuple(shape[1:3]) == (kh, kw))

    def _small_strided_pointwise(self, shape):
        return (self._plain() and tuple(self.kernel_size) == (1, 1)
                and max(self.strides) > 1 and shape[-1] < ONEDNN_SAFE_1X1_CHANNELS)

    def _output_groups(self, shape):
        if not self._plain():
            return 1
        return output_groups(self.kernel.shape, shape, self.strides)

    def call(self, inputs):
        if self._covers_input(inputs.shape):
            kh, kw = self.kernel_size
            depth = kh * kw * inputs.shape[-1]
            y = ops.matmul(ops.reshape(inputs, (-1, depth)),
                           ops.reshape(self.kernel, (depth, self.filters)))
            return self._finish(ops.reshape(y, (-1, 1, 1, self.filters)))
        if self._small_strided_pointwise(inputs.shape):
            # 1x1 kernel: "same" and "valid" both take every stride-th pixel from 0
            sy, sx = self.strides
            y = ops.conv(inputs[:, ::sy, ::sx, :], self.kernel, strides=1, padding="valid")
            return self._finish(y)
        if self._plain() and self.padding == "same" and by_matmul(self.kernel.shape,
                                                                  self.strides):
            return self._finish(conv3x3_by_matmul(inputs, self.kernel))
        groups = self._output_groups(inputs.shape)
        if groups == 1:
            return super().call(inputs)
        return conv2d_in_groups(inputs, self.kernel, groups, strides=self.strides,
                                padding=self.padding,
                                bias=self.bias if self.use_bias else None,
                                activation=self.activation)

    def _finish(self, y):
        if self.use_bias:
            y = y + self.bias
        if self.activation is not None:
            y = self.activation(y)
        return y
