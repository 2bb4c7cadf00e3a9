"""kseg.models.conv.Conv2D: Keras' Conv2D numbers on faster kernels."""

import keras
import numpy as np
import pytest

from kseg.models.conv import Conv2D


def _pair(shape, **kwargs):
    """Keras' Conv2D and kseg's, built on `shape` with the same weights."""
    ref, fast = keras.layers.Conv2D(**kwargs), Conv2D(**kwargs)
    ref.build(shape)
    fast.build(shape)
    rng = np.random.default_rng(0)
    fast.set_weights([rng.normal(size=w.shape).astype("float32") for w in ref.get_weights()])
    ref.set_weights(fast.get_weights())
    return ref, fast


@pytest.mark.parametrize("shape,kwargs", [
    ((6, 7, 7, 16), dict(filters=24, kernel_size=7, padding="valid")),
    ((6, 1, 1, 32), dict(filters=8, kernel_size=1, activation="relu")),
    ((5, 1, 1, 32), dict(filters=8, kernel_size=1, padding="same", use_bias=False)),
    ((2, 9, 9, 4), dict(filters=3, kernel_size=7, padding="valid")),   # not covered: conv
    ((2, 5, 5, 4), dict(filters=3, kernel_size=3, padding="same")),    # not covered: conv
])
def test_same_numbers_as_keras_conv2d(shape, kwargs):
    ref, fast = _pair(shape, **kwargs)
    x = np.random.default_rng(1).normal(size=shape).astype("float32")
    expected = keras.ops.convert_to_numpy(ref(x))
    got = keras.ops.convert_to_numpy(fast(x))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_matmul_path_taken_only_when_kernel_covers_input():
    layer = Conv2D(4, 7, padding="valid")
    assert layer._covers_input((None, 7, 7, 8))
    assert not layer._covers_input((None, 9, 9, 8))
    assert not Conv2D(4, 7, padding="same")._covers_input((None, 7, 7, 8))
    assert not Conv2D(4, 1, strides=2)._covers_input((None, 1, 1, 8))


def test_gradients_match_keras(tmp_path):
    import tensorflow as tf
    ref, fast = _pair((4, 7, 7, 8), filters=6, kernel_size=7, padding="valid")
    x = tf.constant(np.random.default_rng(2).normal(size=(4, 7, 7, 8)).astype("float32"))
    grads = []
    for layer in (ref, fast):
        with tf.GradientTape() as tape:
            tape.watch(x)
            loss = tf.reduce_sum(layer(x) ** 2)
        grads.append(tape.gradient(loss, [x, *layer.trainable_variables]))
    for a, b in zip(*grads):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-4)


def test_weights_files_of_keras_conv2d_load(tmp_path):
    """Same class name as Keras' layer: a .weights.h5 written with one loads into the other."""
    def model(conv):
        inp = keras.Input((7, 7, 8))
        return keras.Model(inp, conv(5, 7, padding="valid")(inp))
    ref, fast = model(keras.layers.Conv2D), model(Conv2D)
    path = str(tmp_path / "m.weights.h5")
    ref.save_weights(path)
    fast.load_weights(path)
    x = np.random.default_rng(3).normal(size=(2, 7, 7, 8)).astype("float32")
    np.testing.assert_allclose(fast.predict(x, verbose=0), ref.predict(x, verbose=0),
                               rtol=1e-5, atol=1e-5)


def test_grouped_output_channels_give_keras_numbers():
    """A 3x3 convolution with 256 outputs on a 64x64 map runs in two groups of 128 on
    TensorFlow without a GPU: bit-for-bit the numbers of Keras' layer."""
    from kseg.ops.conv import output_groups
    shape = (1, 64, 64, 8)
    ref, fast = _pair(shape, filters=256, kernel_size=3, padding="same", activation="relu")
    assert output_groups(fast.kernel.shape, shape) == 2
    x = np.random.default_rng(4).normal(size=shape).astype("float32")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(fast(x)),
                                  keras.ops.convert_to_numpy(ref(x)))


@pytest.mark.parametrize("shape,padding", [((2, 16, 16, 8), "valid"), ((1, 15, 9, 8), "same"),
                                           ((1, 15, 9, 8), "valid")])
def test_strided_pointwise_over_few_channels_gives_keras_numbers(shape, padding):
    """Subsample + stride-1 1x1 conv (oneDNN's batch-1 crash avoided): Keras' numbers."""
    ref, fast = _pair(shape, filters=16, kernel_size=1, strides=2, padding=padding)
    assert fast._small_strided_pointwise(shape)
    x = np.random.default_rng(5).normal(size=shape).astype("float32")
    expected = keras.ops.convert_to_numpy(ref(x))
    got = keras.ops.convert_to_numpy(fast(x))
    assert got.shape == expected.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
