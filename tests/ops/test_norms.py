"""kseg.ops.norms: sum_of_squares and its gradient, fast path against the keras.ops one."""

import keras
import numpy as np
import pytest

from kseg.ops.norms import sum_of_squares


def test_fallback_is_the_sum_of_squares():
    x = np.arange(-3, 4, dtype="float32").reshape(7, 1) * 0.5
    assert float(sum_of_squares(x, use_fast_ops=False)) == pytest.approx(
        float(np.sum(x.astype("float64") ** 2)), rel=1e-7)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                    reason="the fast path is TensorFlow's")
def test_fast_path_value_and_gradient_match_the_fallback():
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(0).normal(size=(3, 3, 64, 128)).astype("float32"))
    results = []
    for fast in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(x)
            value = 3.0 * sum_of_squares(x, use_fast_ops=fast)
        results.append((float(value), tape.gradient(value, x).numpy()))
    (fast_value, fast_grad), (slow_value, slow_grad) = results
    expected = 3.0 * float(np.sum(x.numpy().astype("float64") ** 2))
    assert fast_value == pytest.approx(expected, rel=1e-6)
    assert slow_value == pytest.approx(expected, rel=1e-6)
    np.testing.assert_allclose(fast_grad, 6.0 * x.numpy(), rtol=1e-6)
    np.testing.assert_allclose(fast_grad, slow_grad, rtol=1e-6)
