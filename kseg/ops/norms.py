"""Sum of squares of a whole tensor in one pass where the backend has a kernel.

    sum_of_squares(x) = sum(x ** 2) over every element: a scalar.

`keras.ops.sum(keras.ops.square(x))` writes the squares out before summing them, and its
gradient broadcasts the upstream scalar to x's shape and multiplies twice (`2 * x * dy`):
five passes over x. TensorFlow's `L2Loss` kernel (`tf.nn.l2_loss`, sum(x ** 2) / 2) reads
x once, and its gradient is one multiply (`x * dy`). Over Mask R-CNN's 45M decayed
parameters (Matterport's L2 term in the loss, and each gradient's norm for `clipnorm`)
that is ~10 instead of ~16 ms forward per pass over all of them (bench/RESULTS.md).
Other backends, XLA (which fuses the square into the sum anyway) and
`use_fast_ops=False` take the `keras.ops` path; both sum in float32 in different orders,
so they agree to float32 rounding (tests/ops/test_norms.py).

Shape shorthand: x any shape, float -> [] (x's dtype).
May import: keras, kseg.ops._tf_fast.
"""

from keras import ops

from kseg.ops import _tf_fast


def sum_of_squares(x, use_fast_ops=None):
    """`sum(x ** 2)` over all elements of the float tensor `x`, as a scalar of its dtype."""
    if _tf_fast.should_use(use_fast_ops, xla_supported=False):
        return _tf_fast.sum_of_squares(x)
    return ops.sum(ops.square(x))


__all__ = ["sum_of_squares"]
