"""kseg.ops.updates: the one-kernel SGD momentum and Adam updates against the keras.ops
formulas and against updates by hand."""

import keras
import numpy as np
import pytest

from kseg.ops.updates import adam_update, momentum_update

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="the fast path is TensorFlow's")


def _run(use_fast_ops, steps=3):
    rng = np.random.default_rng(0)
    variable = keras.Variable(rng.normal(size=(4, 5)).astype("float32"))
    accum = keras.Variable(rng.normal(size=(4, 5)).astype("float32"))
    for _ in range(steps):
        gradient = rng.normal(size=(4, 5)).astype("float32")
        momentum_update(variable, accum, gradient, 0.1, 0.9, use_fast_ops=use_fast_ops)
    return np.asarray(variable.numpy()), np.asarray(accum.numpy())


def test_fallback_is_sgd_with_momentum_by_hand():
    rng = np.random.default_rng(0)
    variable = rng.normal(size=(4, 5)).astype("float32")
    accum = rng.normal(size=(4, 5)).astype("float32")
    for _ in range(3):
        gradient = rng.normal(size=(4, 5)).astype("float32")
        accum = np.float32(0.9) * accum - np.float32(0.1) * gradient
        variable = variable + accum
    got_variable, got_accum = _run(use_fast_ops=False)
    np.testing.assert_allclose(got_accum, accum, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(got_variable, variable, rtol=1e-6, atol=1e-7)


@TF_ONLY
def test_fast_path_inside_a_graph_function():
    import tensorflow as tf

    variable = keras.Variable(np.ones((3,), "float32"))
    accum = keras.Variable(np.zeros((3,), "float32"))

    @tf.function
    def step(gradient):
        momentum_update(variable, accum, gradient, 0.5, 0.9)

    step(tf.constant([1.0, 2.0, 3.0]))
    step(tf.constant([1.0, 2.0, 3.0]))
    # accum: -0.5 g, then 0.9 * -0.5 g - 0.5 g = -0.95 g; variable: 1 - 1.45 g
    np.testing.assert_allclose(accum.numpy(), [-0.95, -1.9, -2.85], rtol=1e-6)
    np.testing.assert_allclose(variable.numpy(), [1 - 1.45, 1 - 2.9, 1 - 4.35], rtol=1e-6)


def _adam(use_fast_ops, steps=3):
    rng = np.random.default_rng(0)
    variable = keras.Variable(rng.normal(size=(4, 5)).astype("float32"))
    m = keras.Variable(np.zeros((4, 5), "float32"))
    v = keras.Variable(np.zeros((4, 5), "float32"))
    for step in range(1, steps + 1):
        gradient = rng.normal(size=(4, 5)).astype("float32")
        adam_update(variable, m, v, gradient, 0.01, 0.9, 0.999, 1e-7, step,
                    use_fast_ops=use_fast_ops)
    return [np.asarray(x.numpy()) for x in (variable, m, v)]


def test_adam_fallback_is_adam_by_hand():
    rng = np.random.default_rng(0)
    variable = rng.normal(size=(4, 5)).astype("float64")
    m = np.zeros((4, 5))
    v = np.zeros((4, 5))
    for step in range(1, 4):
        gradient = rng.normal(size=(4, 5)).astype("float32").astype("float64")
        m = m + (gradient - m) * 0.1
        v = v + (gradient ** 2 - v) * 0.001
        alpha = 0.01 * np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step)
        variable = variable - m * alpha / (np.sqrt(v) + 1e-7)
    got = _adam(use_fast_ops=False)
    for a, b in zip(got, (variable, m, v)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


@TF_ONLY
@pytest.mark.parametrize("run,rtol", [(_run, 1e-6), (_adam, 1e-5)], ids=["momentum", "adam"])
def test_fast_path_matches_the_fallback(run, rtol):
    fast, slow = run(use_fast_ops=True), run(use_fast_ops=False)
    for a, b in zip(fast, slow):
        np.testing.assert_allclose(a, b, rtol=rtol, atol=1e-7)
    assert not np.allclose(fast[0], run(use_fast_ops=False, steps=2)[0])  # it moved
