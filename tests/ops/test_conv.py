"""kseg.ops.conv: groups of output channels, and when they are used."""

import numpy as np
import pytest
from keras import ops

from kseg.ops.conv import by_matmul, conv2d_in_groups, conv3x3_by_matmul, output_groups


@pytest.mark.parametrize("groups,padding", [(1, "same"), (2, "same"), (4, "valid")])
def test_groups_equal_one_convolution(groups, padding):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 9, 11, 5)).astype("float32")
    kernel = rng.normal(size=(3, 3, 5, 8)).astype("float32")
    expected = ops.convert_to_numpy(ops.conv(x, kernel, padding=padding))
    got = ops.convert_to_numpy(conv2d_in_groups(x, kernel, groups, padding=padding))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("groups", [1, 2, 4])
def test_groups_with_bias_and_activation_equal_one_convolution(groups):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(1, 8, 8, 3)).astype("float32")
    kernel = rng.normal(size=(3, 3, 3, 8)).astype("float32")
    bias = rng.normal(size=(8,)).astype("float32")
    expected = ops.convert_to_numpy(ops.relu(ops.conv(x, kernel, padding="same") + bias))
    got = ops.convert_to_numpy(conv2d_in_groups(x, kernel, groups, bias=bias,
                                                activation=ops.relu))
    np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6)
    assert (got == 0).any() and (got > 0).any()


def test_groups_must_divide_the_output_channels():
    x = np.zeros((1, 4, 4, 2), "float32")
    with pytest.raises(ValueError, match="8 output channels do not split into 3"):
        conv2d_in_groups(x, np.zeros((3, 3, 2, 8), "float32"), 3)


@pytest.mark.parametrize("kernel,shape,strides,expected", [
    ((3, 3, 256, 512), (1, 128, 128, 256), (1, 1), 4),     # RPN conv on P2
    ((3, 3, 256, 512), (1, None, None, 256), (1, 1), 4),   # unknown sides count as large
    ((3, 3, 256, 256), (1, 64, 64, 256), (1, 1), 2),       # FPN output conv on P3
    ((3, 3, 256, 256), (1, 32, 32, 256), (1, 1), 2),       # ResNet res4 at 512^2
    ((3, 3, 512, 512), (1, 16, 16, 512), (1, 1), 1),       # small map
    ((3, 3, 64, 128), (1, 128, 128, 64), (1, 1), 1),       # few output channels
    ((1, 1, 256, 1024), (1, 64, 64, 256), (1, 1), 1),      # 1x1
    ((3, 3, 256, 512), (1, 64, 64, 256), (2, 2), 1),       # strided
    ((3, 3, 256, 320), (1, 64, 64, 256), (1, 1), 1),       # not a multiple of 128
])
def test_when_groups_are_used(kernel, shape, strides, expected):
    assert output_groups(kernel, shape, strides) == expected
    assert output_groups(kernel, shape, strides, use_fast_ops=False) == 1


@pytest.mark.parametrize("kernel,strides,expected", [
    ((3, 3, 2048, 512), (1, 1), True),    # torchvision's FCN head on C5
    ((3, 3, 1024, 256), (1, 1), True),
    ((3, 3, 512, 512), (1, 1), False),    # few input channels: the direct convolution
    ((3, 3, 2048, 512), (2, 2), False),   # strided
    ((1, 1, 2048, 512), (1, 1), False),   # 1x1
])
def test_when_the_matmul_form_is_used(kernel, strides, expected):
    import keras

    on_tf = keras.backend.backend() == "tensorflow"
    assert by_matmul(kernel, strides) == (expected and on_tf)
    assert not by_matmul(kernel, strides, use_fast_ops=False)


@pytest.mark.skipif(__import__("keras").backend.backend() != "tensorflow",
                    reason="the matmul form is TensorFlow's fast path")
def test_matmul_form_equals_the_convolution_with_its_gradients():
    import tensorflow as tf

    rng = np.random.default_rng(3)
    x = tf.constant(rng.normal(size=(2, 7, 5, 1024)).astype("float32"))
    kernel = tf.constant(0.03 * rng.normal(size=(3, 3, 1024, 16)).astype("float32"))
    weights = tf.constant(rng.normal(size=(2, 7, 5, 16)).astype("float32"))
    results = []
    for fast in (True, False):
        with tf.GradientTape() as tape:
            tape.watch([x, kernel])
            y = conv3x3_by_matmul(x, kernel, use_fast_ops=fast)
            loss = tf.reduce_sum(y * weights)
        results.append([y, *tape.gradient(loss, [x, kernel])])
    for fast, slow in zip(*results):
        scale = float(np.abs(np.asarray(slow)).max())
        np.testing.assert_allclose(np.asarray(fast), np.asarray(slow), atol=1e-5 * scale)
    assert tuple(results[0][0].shape) == (2, 7, 5, 16)


def test_conv2d_layer_takes_the_matmul_form_with_keras_numbers():
    import keras

    from kseg.models.conv import Conv2D

    x = np.random.default_rng(4).normal(size=(1, 6, 6, 1024)).astype("float32")
    ours = Conv2D(8, 3, padding="same", activation="relu", bias_initializer="random_normal")
    theirs = keras.layers.Conv2D(8, 3, padding="same", activation="relu")
    ours.build(x.shape)
    theirs.build(x.shape)
    theirs.set_weights(ours.get_weights())
    assert by_matmul(ours.kernel.shape, ours.strides) == (keras.backend.backend() == "tensorflow")
    np.testing.assert_allclose(np.asarray(ours(x)), np.asarray(theirs(x)), atol=1e-4)
