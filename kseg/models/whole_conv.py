"""Conv2D whose kernel covers its whole input, computed as one matmul.

Matterport's box head runs two convolutions on pooled ROIs: a 7x7 "valid" one on
[rois, 7, 7, 256] and a 1x1 one on [rois, 1, 1, 1024]. Both are fully connected layers
in convolution form. Convolution kernels are tuned for images, not for thousands of
1x1 outputs: on TensorFlow's CPU kernels the 1x1 one runs at about a tenth of the
matmul's speed and the 7x7 one at two thirds (bench/RESULTS.md, 1000 ROIs: 185 -> 85 ms
forward; 512 ROIs forward and backward: 334 -> 161 ms). This layer keeps
`keras.layers.Conv2D`'s variables, names and class name (Keras 3 `.weights.h5` files key
layers by class name, so checkpoints and `mask_rcnn_coco.h5` load unchanged) and
computes `reshape(x, [N, kh*kw*C]) @ reshape(kernel, [kh*kw*C, filters])` when the kernel
covers the input exactly; anything else takes Keras' convolution.

Shape shorthand: x [N, kh, kw, C] -> [N, 1, 1, filters].
May import: keras only.
"""

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kseg")
class Conv2D(keras.layers.Conv2D):
    """`keras.layers.Conv2D`, as one matmul when the kernel covers the whole input."""

    def _covers_input(self, shape):
        kh, kw = self.kernel_size
        return (self.data_format == "channels_last" and self.groups == 1
                and tuple(self.strides) == (1, 1) and tuple(self.dilation_rate) == (1, 1)
                and (self.padding == "valid" or (kh, kw) == (1, 1))
                and tuple(shape[1:3]) == (kh, kw))

    def call(self, inputs):
        if not self._covers_input(inputs.shape):
            return super().call(inputs)
        kh, kw = self.kernel_size
        depth = kh * kw * inputs.shape[-1]
        flat = ops.reshape(inputs, (-1, depth))
        y = ops.matmul(flat, ops.reshape(self.kernel, (depth, self.filters)))
        if self.use_bias:
            y = y + self.bias
        if self.activation is not None:
            y = self.activation(y)
        return ops.reshape(y, (-1, 1, 1, self.filters))
