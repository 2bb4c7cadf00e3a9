"""Batch normalisation over the channel axis of NHWC maps, with a fused TF fast path.

Keras' BatchNormalization computes moments and the affine transform as separate
element-wise ops; on TensorFlow ``FusedBatchNormV3`` does it in one kernel, and at
inference Grappler folds it into the preceding Conv2D (oneDNN conv + BN + ReLU).

Shape shorthand::

    x      [N, H, W, C]
    gamma, beta, mean, variance  [C]
"""

from keras import ops

from kseg.ops import _tf_fast

__all__ = ["batch_norm"]


def batch_norm(x, gamma, beta, mean, variance, epsilon, training, use_fast_ops=None):
    """Normalise ``x`` with its batch moments (training) or ``mean``/``variance``.

    Args:
        x: ``[N, H, W, C]`` (the fast path) or any rank with channels last (fallback).
        gamma, beta, mean, variance: ``[C]``.
        epsilon: python float.
        training: python bool.
        use_fast_ops: None (auto), True or False; see ``kseg.ops._tf_fast``.

    Returns:
        ``(y, batch_mean, batch_variance)``: ``y`` like ``x``; the batch moments ``[C]``
        (biased variance, as ``keras.ops.moments``) when training, else None.
    """
    if len(x.shape) == 4 and _tf_fast.should_use(use_fast_ops):
        return _tf_fast.batch_norm(x, gamma, beta, mean, variance, float(epsilon),
                                   bool(training))
    stats = ops.cast(x, "float32")
    batch_mean = batch_var = None
    if training:
        axes = list(range(len(x.shape) - 1))
        batch_mean, batch_var = ops.moments(stats, axes=axes)
        mean, variance = batch_mean, batch_var
    y = ops.batch_normalization(stats, ops.cast(mean, "float32"),
                                ops.cast(variance, "float32"), axis=-1,
                                offset=ops.cast(beta, "float32"),
                                scale=ops.cast(gamma, "float32"), epsilon=epsilon)
    return ops.cast(y, x.dtype), batch_mean, batch_var
