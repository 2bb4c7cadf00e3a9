"""BatchNormalization on the fused kernel, and BatchNorm, freezable as Matterport's.

Every kseg model normalises with these layers (`BatchNormalization` in the ResNet
encoders and U-Net blocks of FCN and U-Net, `BatchNorm` in Mask R-CNN's backbone and
heads). They keep Keras' variables, names and arithmetic (checked against `keras.layers.BatchNormalization` in tests/ops/test_normalization.py),
and computes through `kseg.ops.batch_norm`: one fused kernel on TensorFlow instead of
separate moment and affine ops (about 10% of a Mask R-CNN or U-Net training step).

Shape shorthand: x [N, H, W, C] (any rank with channels last takes Keras' path).
"""

import keras
from keras import ops

from kseg.ops import batch_norm


@keras.saving.register_keras_serializable(package="kseg")
class BatchNormalization(keras.layers.BatchNormalization):
    """Keras' BatchNormalization computed with `kseg.ops.batch_norm` (fused on TF).

    Same variables and arithmetic as Keras' layer, and the same class name: Keras 3
    `.weights.h5` files key layers by their class name, so checkpoints written with
    `keras.layers.BatchNormalization` load into this layer and back.
    """

    def call(self, inputs, training=None, mask=None):
        if mask is not None or self.renorm or self.synchronized or \
                self.axis not in (-1, len(inputs.shape) - 1) or not (self.scale and self.center):
            return super().call(inputs, training=training, mask=mask)
        training = bool(training) and self.trainable
        y, mean, variance = batch_norm(inputs, self.gamma, self.beta, self.moving_mean,
                                       self.moving_variance, self.epsilon, training)
        if training:
            self.moving_mean.assign(self.moving_mean * self.momentum
                                    + mean * (1.0 - self.momentum))
            self.moving_variance.assign(self.moving_variance * self.momentum
                                        + variance * (1.0 - self.momentum))
        return ops.cast(y, self.compute_dtype)


@keras.saving.register_keras_serializable(package="kseg")
class BatchNorm(BatchNormalization):
    """BatchNormalization that can be frozen (always inference mode) as Matterport's.

    With `frozen=True` the moving statistics are used and never updated, in training
    too; gamma and beta still train unless the layer is made non-trainable. Small
    batches make batch statistics noisy, which is why Matterport freezes them.
    """

    def __init__(self, frozen=False, **kwargs):
        super().__init__(**kwargs)
        self.frozen = frozen

    def call(self, inputs, training=None, mask=None):
        return super().call(inputs, training=False if self.frozen else training, mask=mask)

    def get_config(self):
        return {**super().get_config(), "frozen": self.frozen}
