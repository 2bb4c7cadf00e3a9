"""Bilinear crop-and-resize and FPN pyramid RoIAlign with static shapes.

Shape shorthand::

    [B, H, W, C]        images / one feature map
    [R, (y1, x1, y2, x2)]  normalized boxes, (0, 0, 1, 1) = whole image
    [R]                 int image index of each box
    (crop_h, crop_w)    output size (python ints)
    P2..P5              [batch, h_i, w_i, C] pyramid levels (strides 4..32)
    [batch, num_rois, (y1, x1, y2, x2)]  normalized RoIs
    [batch, num_rois, pool_h, pool_w, C]  pooled features

Normalized coordinates follow ``tf.image.crop_and_resize``: a coordinate
``y`` maps to the sample row ``y * (H - 1)``; samples outside
``[0, H - 1] x [0, W - 1]`` take the value 0 (with a few-ulp tolerance at
the borders, see ``_corners``).

Both ops gather the 4 bilinear corners of every sample in a single
``keras.ops.take`` from a flat ``[pixels, C]`` table. For the pyramid the
table is the concatenation of all levels, so each RoI is sampled once from
its own level (no per-level crops, no data-dependent shapes).
"""

import keras
from keras import ops

from kseg.ops import _tf_fast

__all__ = ["crop_and_resize", "roi_level", "roi_align", "PyramidROIAlign"]


def _pair(size):
    if isinstance(size, int):
        return size, size
    h, w = size
    return int(h), int(w)


def _sample_coords(lo, hi, extent, n):
    """Sample positions of ``n`` points along one axis (TF semantics).

    Args:
        lo, hi: ``[...]`` normalized box edges (y1, y2 or x1, x2).
        extent: ``[...]`` or scalar float, ``H - 1`` (or ``W - 1``).
        n: python int, number of samples.

    Returns:
        ``[..., n]`` float positions in pixels.
    """
    if n == 1:
        return ops.expand_dims(0.5 * (lo + hi) * extent, -1)
    scale = (hi - lo) * extent / float(n - 1)
    steps = ops.arange(n, dtype=lo.dtype)
    return ops.expand_dims(lo * extent, -1) + steps * ops.expand_dims(scale, -1)


def _corners(pos, extent):
    """Floor/ceil indices, lerp weight and in-range mask per sample.

    A sample is in range when ``0 <= pos <= extent`` up to ``1e-6 * extent``
    (a few float32 ulps), so results do not depend on how a compiler
    rounds ``y1 * (H - 1) + i * scale`` (e.g. for boxes ending at 1.0).

    Args:
        pos: ``[..., n]`` float positions.
        extent: ``[...]`` or scalar float, the largest valid position.

    Returns:
        ``(low [..., n] int32, high [..., n] int32, frac [..., n], valid)``.
    """
    extent = ops.expand_dims(extent, -1) if len(ops.shape(extent)) else extent
    tol = 1e-6 * ops.maximum(extent, 1.0)
    valid = ops.logical_and(pos >= -tol, pos <= extent + tol)
    pos = ops.clip(pos, 0.0, extent)
    low = ops.floor(pos)
    frac = pos - low
    low = ops.cast(low, "int32")
    high = ops.cast(ops.ceil(pos), "int32")
    return low, high, frac, valid


def _bilinear(table, base, height, width, boxes, crop_size):
    """Samples ``crop_size`` grids from a flat ``[pixels, C]`` table.

    Args:
        table: ``[pixels, C]`` flattened feature maps.
        base: ``[...]`` int32 flat index of pixel (0, 0) of each box's map.
        height, width: ``[...]`` int32 (or python int) size of that map.
        boxes: ``[..., (y1, x1, y2, x2)]`` normalized (float32).
        crop_size: ``(crop_h, crop_w)`` python ints.

    Returns:
        ``[..., crop_h, crop_w, C]`` float32.
    """
    ch, cw = crop_size
    hmax = ops.cast(height, "float32") - 1.0
    wmax = ops.cast(width, "float32") - 1.0
    ys = _sample_coords(boxes[..., 0], boxes[..., 2], hmax, ch)
    xs = _sample_coords(boxes[..., 1], boxes[..., 3], wmax, cw)
    top, bottom, ylerp, yvalid = _corners(ys, hmax)
    left, right, xlerp, xvalid = _corners(xs, wmax)
    rows = ops.concatenate([top, bottom], axis=-1)  # [..., 2ch]
    cols = ops.concatenate([left, right], axis=-1)  # [..., 2cw]
    width = ops.cast(width, "int32")
    if len(ops.shape(width)):
        width = ops.expand_dims(width, -1)
    rows = ops.expand_dims(rows * width + ops.expand_dims(base, -1), -1)
    pix = ops.take(table, rows + ops.expand_dims(cols, -2), axis=0)
    pix = ops.cast(pix, "float32")  # [..., 2ch, 2cw, C]
    tl, tr = pix[..., :ch, :cw, :], pix[..., :ch, cw:, :]
    bl, br = pix[..., ch:, :cw, :], pix[..., ch:, cw:, :]
    xw = ops.expand_dims(ops.expand_dims(xlerp, -2), -1)
    upper = tl + (tr - tl) * xw
    lower = bl + (br - bl) * xw
    out = upper + (lower - upper) * ops.expand_dims(ops.expand_dims(ylerp, -1), -1)
    mask = ops.logical_and(ops.expand_dims(yvalid, -1), ops.expand_dims(xvalid, -2))
    return ops.where(ops.expand_dims(mask, -1), out, 0.0)


def _out_dtype(x):
    dtype = keras.backend.standardize_dtype(x.dtype)
    return dtype if keras.backend.is_float_dtype(dtype) else "float32"


def crop_and_resize(images, boxes, box_indices, crop_size, use_fast_ops=None):
    """Bilinear crops with the exact semantics of ``tf.image.crop_and_resize``.

    Args:
        images: ``[B, H, W, C]`` (static H, W, C).
        boxes: ``[R, (y1, x1, y2, x2)]`` normalized; flipped boxes flip.
        box_indices: ``[R]`` int, image of each box (not range-checked).
        crop_size: ``(crop_h, crop_w)`` python ints (or one int).
        use_fast_ops: None (auto), True or False; see ``kseg.ops._tf_fast``.
            Under XLA the fallback is always used (no XLA kernel in TF).

    Returns:
        ``[R, crop_h, crop_w, C]`` in ``images``' float dtype (else float32).
    """
    crop_size = _pair(crop_size)
    if _tf_fast.should_use(use_fast_ops, xla_supported=False):
        return _tf_fast.crop_and_resize(images, boxes, box_indices, crop_size)
    images = ops.convert_to_tensor(images)
    _, height, width, channels = images.shape
    boxes = ops.cast(boxes, "float32")
    base = ops.cast(box_indices, "int32") * (height * width)
    table = ops.reshape(images, (-1, channels))
    crops = _bilinear(table, base, height, width, boxes, crop_size)
    return ops.cast(crops, _out_dtype(images))


def roi_level(boxes, image_shape):
    """FPN level (2..5) of each RoI, exactly as Matterport's PyramidROIAlign.

    ``clip(4 + round(log2(sqrt(h * w) / (224 / sqrt(H * W)))), 2, 5)`` with
    ``h, w`` in normalized units and ``(H, W) = image_shape``; ``round`` is
    half-to-even like ``tf.round``. Empty boxes get level 2.

    Args:
        boxes: ``[..., (y1, x1, y2, x2)]`` normalized.
        image_shape: ``(H, W)`` of the network input image: python ints, or scalar
            tensors read at run time (e.g. ``ops.shape(image)[1:3]``).

    Returns:
        ``[...]`` int32 levels in ``[2, 5]``.
    """
    boxes = ops.cast(boxes, "float32")
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    area = ops.maximum(area, 1e-12)
    if isinstance(image_shape[0], int) and isinstance(image_shape[1], int):
        image_area = float(image_shape[0] * image_shape[1])
    else:
        image_area = ops.cast(image_shape[0], "float32") * ops.cast(image_shape[1], "float32")
    ratio = ops.sqrt(area) / (224.0 / ops.sqrt(image_area))
    level = ops.log(ratio) / ops.log(2.0)
    level = ops.clip(4.0 + ops.round(level), 2.0, 5.0)
    return ops.cast(level, "int32")


def _flat_pyramid(feature_maps):
    """Concatenates levels into a ``[pixels, C]`` table + each level's (h, w): python ints
    when static, scalar tensors when the image size is only known at run time."""
    sizes = [tuple(ops.shape(f)[1:3]) for f in feature_maps]
    channels = feature_maps[0].shape[-1]
    dtype = keras.backend.result_type(*[f.dtype for f in feature_maps])
    table = ops.concatenate(
        [ops.reshape(ops.cast(f, dtype), (-1, channels)) for f in feature_maps],
        axis=0)
    return table, sizes


def _per_roi(values, level):
    """Looks up a per-level list (python ints or scalar tensors) at ``level`` (int32)."""
    if all(isinstance(v, int) for v in values):
        return ops.take(ops.convert_to_tensor(values, "int32"), level)
    return ops.take(ops.stack([ops.cast(v, "int32") for v in values]), level)


def _roi_geometry(sizes, level, batch):
    """Flat-table offset and map size of each RoI's level.

    Args:
        sizes: per-level ``(h_i, w_i)`` python ints or scalar int tensors.
        level: ``[batch, num_rois]`` int32 level index (0 = P2).
        batch: int or scalar tensor, batch size.

    Returns:
        ``(base, heights, widths)``, each ``[batch, num_rois]`` int32.
    """
    hw = [h * w for h, w in sizes]
    prefix = [sum(hw[:i]) for i in range(len(hw))]
    image = ops.cast(ops.cumsum(ops.ones_like(level), axis=0) - 1, "int32")
    base = batch * _per_roi(prefix, level) + image * _per_roi(hw, level)
    heights = _per_roi([h for h, _ in sizes], level)
    return base, heights, _per_roi([w for _, w in sizes], level)


def roi_align(feature_maps, boxes, pool_size, image_shape, use_fast_ops=None):
    """Multi-level RoIAlign (Matterport ``PyramidROIAlign``), static shapes.

    Each RoI is assigned a level with :func:`roi_level` and sampled with
    ``crop_and_resize`` semantics from that level only. Strategy: the levels
    are flattened into one ``[sum(batch * h_i * w_i), C]`` table and each
    RoI's bilinear corners are gathered from it in a single ``take`` using a
    per-RoI base offset and level size: one crop per RoI (4x less gathering
    than cropping every RoI from every level and masking). On TF outside
    XLA the fast path ``_tf_fast.roi_align`` (Matterport's per-level
    ``tf.where`` + C++ ``crop_and_resize``, scattered back) is used; it is
    3-7x faster than the un-jitted fallback (XLA-compiled: about equal).

    Args:
        feature_maps: list of 4 tensors P2..P5 ``[batch, h_i, w_i, C]``
            (static C; h_i, w_i may be dynamic).
        boxes: ``[batch, num_rois, (y1, x1, y2, x2)]`` normalized.
        pool_size: ``(pool_h, pool_w)`` python ints (or one int).
        image_shape: ``(H, W)`` of the network input image (python ints or scalar
            tensors), for level assignment.
        use_fast_ops: None (auto), True or False; see ``kseg.ops._tf_fast``.

    Returns:
        ``[batch, num_rois, pool_h, pool_w, C]`` in the maps' float dtype.
    """
    pool_size = _pair(pool_size)
    boxes = ops.stop_gradient(ops.cast(boxes, "float32"))
    # A box with a NaN or infinite coordinate (e.g. from diverged weights) has no level
    # and no pixels: it is sampled from beyond the image (level 2), so its crop is zeros
    # on both paths, as crop_and_resize's extrapolation value.
    finite = ops.all(ops.isfinite(boxes), axis=-1, keepdims=True)
    boxes = ops.where(finite, boxes, 2.0)
    level = roi_level(boxes, image_shape)  # [batch, num_rois] in 2..5
    if _tf_fast.should_use(use_fast_ops, xla_supported=False):
        return _tf_fast.roi_align(feature_maps, boxes, level, pool_size)
    table, sizes = _flat_pyramid(feature_maps)
    base, heights, widths = _roi_geometry(sizes, level - 2, ops.shape(boxes)[0])
    pooled = _bilinear(table, base, heights, widths, boxes, pool_size)
    return ops.cast(pooled, _out_dtype(table))


@keras.saving.register_keras_serializable(package="kseg")
class PyramidROIAlign(keras.layers.Layer):
    """RoIAlign over the FPN pyramid (see :func:`roi_align`).

    The image area in the level rule is read at run time, as Matterport does, so
    any input size ("pad64", "none", non-square) gets the right level. Call with

    - ``[boxes, image, p2, p3, p4, p5]``: ``image`` is the network input
      ``[batch, H, W, 3]``, whose shape gives ``(H, W)``;
    - ``[boxes, image_meta, p2, ..., p5]`` (Matterport's call): ``(H, W)`` is the
      molded image shape ``image_meta[0, 4:6]``;
    - ``[boxes, p2, ..., p5]`` when ``image_shape`` was given (a fixed size).

    ``boxes`` is ``[batch, num_rois, (y1, x1, y2, x2)]`` normalized and ``p_i`` are
    ``[batch, h_i, w_i, C]``. Output ``[batch, num_rois, pool_h, pool_w, C]``.

    Args:
        pool_shape: ``(pool_h, pool_w)`` ints, e.g. ``(7, 7)``.
        image_shape: None (read at run time, see above), or a fixed ``(H, W)``
            (extra trailing entries such as channels are ignored).
    """

    def __init__(self, pool_shape, image_shape=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # sampling coordinates in float32 (mixed precision)
        super().__init__(**kwargs)
        self.pool_shape = _pair(pool_shape)
        self.image_shape = None if image_shape is None else tuple(int(d) for d in image_shape)

    def call(self, inputs):
        if self.image_shape is not None:
            boxes, *feature_maps = inputs
            return roi_align(feature_maps, boxes, self.pool_shape, self.image_shape[:2])
        boxes, image, *feature_maps = inputs
        return roi_align(feature_maps, boxes, self.pool_shape, _input_hw(image))

    def compute_output_shape(self, input_shape):
        boxes_shape, p2_shape = input_shape[0], input_shape[-1]
        return (boxes_shape[0], boxes_shape[1], *self.pool_shape,
                p2_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(pool_shape=list(self.pool_shape),
                      image_shape=None if self.image_shape is None else list(self.image_shape))
        return config


def _input_hw(image):
    """(H, W) of the input image [batch, H, W, C], or of Matterport's image_meta
    [batch, META] (its molded image shape, entries 4:6 of the first image)."""
    if len(image.shape) == 2:
        return image[0, 4], image[0, 5]
    return tuple(ops.shape(image)[1:3])
