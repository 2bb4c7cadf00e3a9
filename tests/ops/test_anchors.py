import numpy as np

from kseg.models.mask_rcnn.layers import Anchors
from kseg.ops.anchors import (
    anchors_for_shape,
    backbone_shapes,
    generate_anchors,
    norm_anchors,
)


def test_generate_anchors_one_cell_matches_hand_values():
    anchors = generate_anchors(32, [0.5, 1, 2], (1, 1), 4, 1)
    # ratio = width / height; cell centre at (0, 0)
    h = 32 / np.sqrt([0.5, 1, 2])
    w = 32 * np.sqrt([0.5, 1, 2])
    expected = np.stack([-h / 2, -w / 2, h / 2, w / 2], axis=1)
    np.testing.assert_allclose(anchors, expected)


def test_pyramid_anchor_count_and_order():
    shapes = backbone_shapes((64, 64), [4, 8, 16, 32, 64])
    np.testing.assert_array_equal(shapes, [[16, 16], [8, 8], [4, 4], [2, 2], [1, 1]])
    anchors = anchors_for_shape((64, 64), (8, 16, 32, 64, 128), [0.5, 1, 2], [4, 8, 16, 32, 64])
    assert anchors.shape == (3 * (256 + 64 + 16 + 4 + 1), 4)
    # The first level's anchors come first, row-major cells, then ratios.
    np.testing.assert_allclose(anchors[3], generate_anchors(8, [0.5, 1, 2], (1, 2), 4, 1)[3])
    assert not anchors.flags.writeable  # cached constant


def test_anchors_layer_static_and_dynamic_agree():
    layer = Anchors((8, 16, 32, 64, 128), [0.5, 1, 2], [4, 8, 16, 32, 64])
    image = np.zeros((2, 64, 96, 3), np.float32)
    static = np.asarray(layer(image))
    expected = norm_anchors(anchors_for_shape((64, 96), (8, 16, 32, 64, 128), [0.5, 1, 2],
                                              [4, 8, 16, 32, 64]), (64, 96))
    assert static.shape == (2,) + expected.shape
    np.testing.assert_allclose(static[1], expected, atol=1e-6)
    dynamic = np.asarray(layer._dynamic_anchors(64, 96))
    np.testing.assert_allclose(dynamic, expected, atol=1e-5)
    assert Anchors.from_config(layer.get_config()).get_config() == layer.get_config()


def test_anchors_layer_in_pixels_for_the_rpn_targets():
    layer = Anchors((8, 16, 32, 64, 128), [0.5, 1, 2], [4, 8, 16, 32, 64], normalized=False)
    expected = anchors_for_shape((64, 96), (8, 16, 32, 64, 128), [0.5, 1, 2],
                                 [4, 8, 16, 32, 64])
    static = np.asarray(layer(np.zeros((2, 64, 96, 3), np.float32)))
    assert static.dtype == np.float32
    np.testing.assert_array_equal(static[0], expected.astype(np.float32))
    np.testing.assert_allclose(np.asarray(layer._dynamic_anchors(64, 96)), expected, atol=1e-4)
    assert Anchors.from_config(layer.get_config()).normalized is False
