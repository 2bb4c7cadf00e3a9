"""Anchors for every pyramid level, computed once per image shape (NumPy).

Shape shorthand:
    A: total anchors = sum over levels of (h_i / anchor_stride) * (w_i / anchor_stride) * len(ratios)
    anchors: [A, (y1, x1, y2, x2)] in pixels, or normalized to [0, 1] by `norm_anchors`.
"""

import functools

import numpy as np


def generate_anchors(scale, ratios, feature_shape, feature_stride, anchor_stride):
    """Anchors of one level: [h * w * len(ratios), (y1, x1, y2, x2)] pixels.

    Order: for each feature-map cell (row-major), each ratio, as Matterport.
    """
    ratios = np.asarray(ratios, dtype=np.float64)
    heights = scale / np.sqrt(ratios)
    widths = scale * np.sqrt(ratios)
    shifts_y = np.arange(0, feature_shape[0], anchor_stride) * feature_stride
    shifts_x = np.arange(0, feature_shape[1], anchor_stride) * feature_stride
    shifts_x, shifts_y = np.meshgrid(shifts_x, shifts_y)
    box_widths, box_centers_x = np.meshgrid(widths, shifts_x)
    box_heights, box_centers_y = np.meshgrid(heights, shifts_y)
    centers = np.stack([box_centers_y, box_centers_x], axis=2).reshape([-1, 2])
    sizes = np.stack([box_heights, box_widths], axis=2).reshape([-1, 2])
    return np.concatenate([centers - 0.5 * sizes, centers + 0.5 * sizes], axis=1)


def generate_pyramid_anchors(scales, ratios, feature_shapes, feature_strides, anchor_stride):
    """Anchors of all levels concatenated: [A, (y1, x1, y2, x2)] pixels, level by level."""
    return np.concatenate([
        generate_anchors(scale, ratios, shape, stride, anchor_stride)
        for scale, shape, stride in zip(scales, feature_shapes, feature_strides)
    ], axis=0)


def backbone_shapes(image_shape, strides):
    """Feature-map (height, width) of each level for an input of `image_shape`."""
    return np.array([[int(np.ceil(image_shape[0] / s)), int(np.ceil(image_shape[1] / s))]
                     for s in strides])


@functools.lru_cache(maxsize=16)
def _cached_anchors(image_hw, scales, ratios, strides, anchor_stride):
    shapes = backbone_shapes(image_hw, strides)
    anchors = generate_pyramid_anchors(scales, ratios, shapes, strides, anchor_stride)
    anchors.setflags(write=False)
    return anchors


def anchors_for_shape(image_shape, scales, ratios, strides, anchor_stride=1, normalized=False):
    """Pixel (or normalized) anchors for an image shape, cached per shape.

    Returns:
        [A, (y1, x1, y2, x2)] float32 (normalized) or float64 (pixels); read-only.
    """
    hw = (int(image_shape[0]), int(image_shape[1]))
    anchors = _cached_anchors(hw, tuple(scales), tuple(ratios), tuple(strides), anchor_stride)
    if normalized:
        return norm_anchors(anchors, hw)
    return anchors


def norm_anchors(anchors, image_hw):
    """Pixel boxes -> normalized coordinates (Matterport's `norm_boxes`)."""
    h, w = image_hw
    scale = np.array([h - 1, w - 1, h - 1, w - 1], dtype=np.float64)
    shift = np.array([0, 0, 1, 1], dtype=np.float64)
    return ((anchors - shift) / scale).astype(np.float32)


def config_anchors(config, image_shape=None, normalized=False):
    """Anchors for a `MaskRCNNConfig` (IMAGE_SHAPE unless `image_shape` is given)."""
    shape = config.IMAGE_SHAPE if image_shape is None else image_shape
    return anchors_for_shape(shape, config.RPN_ANCHOR_SCALES, config.RPN_ANCHOR_RATIOS,
                             config.BACKBONE_STRIDES, config.RPN_ANCHOR_STRIDE,
                             normalized=normalized)
