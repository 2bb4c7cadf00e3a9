"""SGD's momentum update of one variable, in one pass where the backend has a kernel.

    accum <- momentum * accum - learning_rate * gradient
    variable <- variable + accum

Keras' SGD writes this as four element-wise ops and two assignments, each a pass over
the variable; TensorFlow's `ResourceApplyKerasMomentum` kernel (the one Keras 2's SGD
used) does it in one. Over Mask R-CNN's 45M parameters that is ~50 ms of a training step
on 2 CPU cores (bench/RESULTS.md). Other backends, XLA and `use_fast_ops=False` take the
`keras.ops` path, Keras' own formula.

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


__all__ = ["momentum_update"]
