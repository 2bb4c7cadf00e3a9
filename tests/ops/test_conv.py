"""kseg.ops.conv: groups of output channels, and when they are used."""

import numpy as np
import pytest
from keras import ops

from kseg.ops.conv import conv2d_in_groups, output_groups


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
