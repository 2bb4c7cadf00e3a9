"""Optimizer updates of one variable in one pass where the backend has a kernel.

    momentum_update (SGD with momentum, not Nesterov):
        accum <- momentum * accum - learning_rate * gradient
        variable <- variable + accum
    adam_update (Adam, not AMSGrad), step t = 1, 2, ...:
        alpha <- learning_rate * sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        m <- m + (gradient - m) * (1 - beta_1)
        v <- v + (gradient ** 2 - v) * (1 - beta_2)
        variable <- variable - m * alpha / (sqrt(v) + epsilon)

Keras writes each as element-wise ops and assignments, each a pass over the variable;
TensorFlow's `ResourceApplyKerasMomentum` and `ResourceApplyAdam` kernels (Keras 2's)
do each in one. Over Mask R-CNN's 45M parameters the momentum kernel saves ~20 ms of a
2-core training step; with the fused bias of grouped convolutions, Adam's kernel took
U-Net's train step from 0.76 to 0.64 s and FCN's from 0.83 to 0.69 s (bench/RESULTS.md). Other
backends, XLA and `use_fast_ops=False` take the `keras.ops` path, Keras' own formulas.

May import: keras, kseg.ops._tf_fast (TensorFlow lazily).
"""

import keras
from keras import ops

from kseg.ops._tf_fast import should_use


def _tf_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def momentum_update(variable, accum, gradient, learning_rate, momentum, use_fast_ops=None):
    """Apply one SGD momentum step (not Nesterov) to `variable` and its slot `accum`.

    variable, accum: variables of one shape and float dtype; gradient: a dense tensor of
    that shape; learning_rate, momentum: scalars.
    """
    dtype = variable.dtype
    learning_rate = ops.cast(learning_rate, dtype)
    momentum = ops.cast(momentum, dtype)
    gradient = ops.cast(gradient, dtype)
    if should_use(use_fast_ops, xla_supported=True):
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            tf.raw_ops.ResourceApplyKerasMomentum(
                var=_tf_variable(variable).handle, accum=_tf_variable(accum).handle,
                lr=learning_rate, grad=gradient, momentum=momentum)
            return
    accum.assign(ops.subtract(ops.multiply(accum, momentum),
                              ops.multiply(gradient, learning_rate)))
    variable.assign_add(accum)


def adam_update(variable, m, v, gradient, learning_rate, beta_1, beta_2, epsilon, step,
                use_fast_ops=None):
    """Apply one Adam step (not AMSGrad) to `variable` and its slots `m`, `v`.

    variable, m, v: variables of one shape and float dtype; gradient: a dense tensor of
    that shape; learning_rate, beta_1, beta_2, epsilon: scalars; step: the 1-based step
    number (Keras' `iterations + 1`).
    """
    dtype = variable.dtype
    lr = ops.cast(learning_rate, dtype)
    gradient = ops.cast(gradient, dtype)
    step = ops.cast(step, dtype)
    beta_1_power = ops.power(ops.cast(beta_1, dtype), step)
    beta_2_power = ops.power(ops.cast(beta_2, dtype), step)
    if should_use(use_fast_ops, xla_supported=True):
        import tensorflow as tf

        if not isinstance(gradient, tf.IndexedSlices):
            tf.raw_ops.ResourceApplyAdam(
                var=_tf_variable(variable).handle, m=_tf_variable(m).handle,
                v=_tf_variable(v).handle, beta1_power=beta_1_power,
                beta2_power=beta_2_power, lr=lr, beta1=ops.cast(beta_1, dtype),
                beta2=ops.cast(beta_2, dtype), epsilon=ops.cast(epsilon, dtype),
                grad=gradient)
            return
    alpha = lr * ops.sqrt(1 - beta_2_power) / (1 - beta_1_power)
    m.assign_add(ops.multiply(ops.subtract(gradient, m), 1 - beta_1))
    v.assign_add(ops.multiply(ops.subtract(ops.square(gradient), v), 1 - beta_2))
    variable.assign_sub(ops.divide(ops.multiply(m, alpha), ops.add(ops.sqrt(v), epsilon)))


__all__ = ["adam_update", "momentum_update"]
