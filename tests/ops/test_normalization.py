"""kseg.ops.batch_norm: the fused TF kernel against the keras.ops fallback and Keras' layer."""

import keras
import numpy as np
import pytest

from kseg.models.normalization import BatchNorm
from kseg.ops import batch_norm

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="the fast path is TensorFlow's")


def _inputs(seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(3.0, 2.0, (4, 6, 5, 8)).astype("float32")
    gamma, beta = rng.uniform(0.5, 2, 8).astype("float32"), rng.normal(size=8).astype("float32")
    mean, var = rng.normal(size=8).astype("float32"), rng.uniform(0.5, 3, 8).astype("float32")
    return x, gamma, beta, mean, var


@TF_ONLY
@pytest.mark.parametrize("training", [True, False])
def test_fused_kernel_matches_the_fallback(training):
    x, gamma, beta, mean, var = _inputs()
    fast = batch_norm(x, gamma, beta, mean, var, 1e-3, training, use_fast_ops=True)
    slow = batch_norm(x, gamma, beta, mean, var, 1e-3, training, use_fast_ops=False)
    np.testing.assert_allclose(np.asarray(fast[0]), np.asarray(slow[0]), rtol=1e-4, atol=1e-4)
    if training:  # batch moments, variance biased like keras.ops.moments
        np.testing.assert_allclose(np.asarray(fast[1]), x.mean(axis=(0, 1, 2)), rtol=1e-5)
        np.testing.assert_allclose(np.asarray(fast[2]), x.var(axis=(0, 1, 2)), rtol=1e-4)
    else:
        expected = (x - mean) / np.sqrt(var + 1e-3) * gamma + beta
        np.testing.assert_allclose(np.asarray(fast[0]), expected, rtol=1e-4, atol=1e-4)
        assert fast[1] is None and fast[2] is None


@pytest.mark.parametrize("training", [True, False])
def test_kseg_batchnorm_layer_matches_keras_batchnormalization(training):
    x, *_ = _inputs(1)
    ours, theirs = BatchNorm(momentum=0.9), keras.layers.BatchNormalization(momentum=0.9)
    ours.build(x.shape)
    theirs.build(x.shape)
    rng = np.random.default_rng(2)
    weights = [rng.uniform(0.5, 2, 8), rng.normal(size=8), rng.normal(size=8),
               rng.uniform(0.5, 3, 8)]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    np.testing.assert_allclose(np.asarray(ours(x, training=training)),
                               np.asarray(theirs(x, training=training)), rtol=1e-4, atol=1e-4)
    for a, b in zip(ours.get_weights(), theirs.get_weights()):  # moving statistics
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    frozen = BatchNorm(frozen=True)
    frozen.build(x.shape)
    frozen.set_weights(weights)
    gamma, beta, mean, var = weights  # frozen: moving statistics, in training too
    expected = (x - mean) / np.sqrt(var + frozen.epsilon) * gamma + beta
    np.testing.assert_allclose(np.asarray(frozen(x, training=True)), expected,
                               rtol=1e-4, atol=1e-4)


@TF_ONLY
def test_frozen_batchnorm_after_a_biased_conv_folds_the_bias_with_the_same_gradients():
    """In a graph, BN(conv + bias) is computed as BN(conv) with the bias in the offset:
    the same outputs, and the same gradients for the kernel, bias, gamma and beta as the
    keras.ops path (which normalises conv + bias as written)."""
    import tensorflow as tf

    from kseg.models.conv import Conv2D
    from kseg.ops import _tf_fast

    x = tf.constant(np.random.default_rng(3).normal(size=(2, 9, 9, 4)).astype("float32"))
    conv = Conv2D(8, 3, padding="same", bias_initializer="random_normal")
    conv.build(x.shape)
    _, gamma, beta, mean, var = _inputs(4)
    variables = [conv.kernel, conv.bias]
    seen = []

    def step(use_fast_ops):
        with tf.GradientTape() as tape:
            tape.watch([gamma, beta])
            z = conv(x)
            if use_fast_ops:
                seen.append(_tf_fast._conv_and_bias(z) is not None)
            y, _, _ = batch_norm(z, gamma, beta, mean, var, 1e-3, False,
                                 use_fast_ops=use_fast_ops)
            loss = tf.reduce_sum(y * tf.range(1, 9, dtype=tf.float32))
        return [y, *tape.gradient(loss, [*variables, gamma, beta])]

    gamma, beta = tf.constant(gamma), tf.constant(beta)
    fast = tf.function(lambda: step(True))()
    slow = step(False)  # eagerly, no fold
    assert seen == [True]  # the fold applied in the graph
    for a, b in zip(fast, slow):  # as the fused kernel against the fallback above
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-4)
    assert np.abs(np.asarray(fast[2])).min() > 0  # the bias has a gradient
