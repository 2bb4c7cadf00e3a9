"""Bounding-box ops (``keras.ops`` only, backend agnostic, static shapes).

Boxes are always ``(y1, x1, y2, x2)`` with ``y2``/``x2`` exclusive in pixel
coordinates (Matterport convention). A box whose four coordinates are all
zero is *padding*.

Shape shorthand::

    [..., 4]            any number of leading dims, last dim (y1, x1, y2, x2)
    [..., N, 4]         N boxes per leading index (e.g. [batch, N, 4])
    [batch, num_rois, (y1, x1, y2, x2)]
    std_dev             python sequence of 4 floats (dy, dx, dh, dw) or None
    window              [4] or [batch, 4] (y1, x1, y2, x2)
    shape               (height, width): python ints, [2] or [batch, 2] tensor

All functions accept NumPy arrays or backend tensors and return backend
tensors in ``keras.config.floatx()`` unless the input already is floating.
"""

import keras
from keras import ops

__all__ = [
    "box_area",
    "compute_iou",
    "encode_box_deltas",
    "decode_box_deltas",
    "clip_boxes",
    "normalize_boxes",
    "denormalize_boxes",
]


def _as_float(x):
    """Converts ``x`` to a floating tensor (keeps float dtypes, else floatx)."""
    x = ops.convert_to_tensor(x)
    if not keras.backend.is_float_dtype(keras.backend.standardize_dtype(x.dtype)):
        x = ops.cast(x, keras.config.floatx())
    return x


def _unstack4(boxes):
    """Splits ``[..., 4]`` into four ``[...]`` tensors."""
    return boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]


def box_area(boxes):
    """Area of boxes; flipped boxes get area 0.

    Args:
        boxes: ``[..., (y1, x1, y2, x2)]``.

    Returns:
        ``[...]`` areas, same float dtype as ``boxes``.
    """
    y1, x1, y2, x2 = _unstack4(_as_float(boxes))
    return ops.maximum(y2 - y1, 0.0) * ops.maximum(x2 - x1, 0.0)


def compute_iou(boxes_a, boxes_b):
    """Pairwise intersection-over-union (Matterport ``overlaps_graph``).

    Leading dims broadcast. Pairs whose union is 0 get IoU 0 (never NaN);
    all-zero padding boxes have area 0 and so IoU 0 with everything.

    Args:
        boxes_a: ``[..., N, (y1, x1, y2, x2)]``.
        boxes_b: ``[..., M, (y1, x1, y2, x2)]``.

    Returns:
        ``[..., N, M]`` IoU values in ``[0, 1]``.
    """
    a = ops.expand_dims(_as_float(boxes_a), -2)  # [..., N, 1, 4]
    b = ops.expand_dims(_as_float(boxes_b), -3)  # [..., 1, M, 4]
    ay1, ax1, ay2, ax2 = _unstack4(a)
    by1, bx1, by2, bx2 = _unstack4(b)
    ih = ops.maximum(ops.minimum(ay2, by2) - ops.maximum(ay1, by1), 0.0)
    iw = ops.maximum(ops.minimum(ax2, bx2) - ops.maximum(ax1, bx1), 0.0)
    inter = ih * iw
    union = box_area(a) + box_area(b) - inter
    positive = union > 0.0
    safe_union = ops.where(positive, union, ops.ones_like(union))
    return ops.where(positive, inter / safe_union, ops.zeros_like(union))


def _std(std_dev, dtype):
    return ops.convert_to_tensor(std_dev, dtype=dtype)


def _centers(boxes):
    """Returns ``(cy, cx, h, w)`` each ``[...]`` for ``[..., 4]`` boxes."""
    y1, x1, y2, x2 = _unstack4(boxes)
    h = y2 - y1
    w = x2 - x1
    return y1 + 0.5 * h, x1 + 0.5 * w, h, w


def encode_box_deltas(boxes, gt_boxes, std_dev=None):
    """Refinement deltas taking ``boxes`` to ``gt_boxes`` (``box_refinement``).

    ``dy = (gt_cy - cy) / h``, ``dx = (gt_cx - cx) / w``,
    ``dh = log(gt_h / h)``, ``dw = log(gt_w / w)``; then divided by
    ``std_dev`` if given. Boxes must have positive height and width.

    Args:
        boxes: ``[..., (y1, x1, y2, x2)]`` reference boxes (anchors / RoIs).
        gt_boxes: ``[..., (y1, x1, y2, x2)]`` targets, broadcastable.
        std_dev: optional length-4 sequence ``(dy, dx, dh, dw)`` scales.

    Returns:
        ``[..., (dy, dx, log(dh), log(dw))]``.
    """
    boxes = _as_float(boxes)
    gt_boxes = ops.cast(_as_float(gt_boxes), boxes.dtype)
    cy, cx, h, w = _centers(boxes)
    gcy, gcx, gh, gw = _centers(gt_boxes)
    deltas = ops.stack(
        [(gcy - cy) / h, (gcx - cx) / w, ops.log(gh / h), ops.log(gw / w)],
        axis=-1,
    )
    if std_dev is not None:
        deltas = deltas / _std(std_dev, deltas.dtype)
    return deltas


def decode_box_deltas(boxes, deltas, std_dev=None):
    """Applies refinement deltas to boxes (``apply_box_deltas_graph``).

    Inverse of :func:`encode_box_deltas`: deltas are first multiplied by
    ``std_dev`` if given.

    Args:
        boxes: ``[..., (y1, x1, y2, x2)]`` boxes to refine.
        deltas: ``[..., (dy, dx, log(dh), log(dw))]``, broadcastable.
        std_dev: optional length-4 sequence ``(dy, dx, dh, dw)`` scales.

    Returns:
        ``[..., (y1, x1, y2, x2)]`` refined boxes.
    """
    boxes = _as_float(boxes)
    deltas = ops.cast(_as_float(deltas), boxes.dtype)
    if std_dev is not None:
        deltas = deltas * _std(std_dev, deltas.dtype)
    cy, cx, h, w = _centers(boxes)
    cy = cy + deltas[..., 0] * h
    cx = cx + deltas[..., 1] * w
    h = h * ops.exp(deltas[..., 2])
    w = w * ops.exp(deltas[..., 3])
    y1 = cy - 0.5 * h
    x1 = cx - 0.5 * w
    return ops.stack([y1, x1, y1 + h, x1 + w], axis=-1)


def _expand_batched(t, rank):
    """Adds an axis at -2 to ``[batch, k]`` params so they meet ``[b, N, k]``."""
    if len(t.shape) == 2 and rank >= 3:
        t = ops.expand_dims(t, -2)
    return t


def clip_boxes(boxes, window):
    """Clips boxes to lie inside ``window`` (``clip_boxes_graph``).

    Args:
        boxes: ``[..., N, (y1, x1, y2, x2)]``.
        window: ``[4]`` or ``[batch, 4]`` ``(y1, x1, y2, x2)``; a batched
            window is applied to ``[batch, N, 4]`` boxes.

    Returns:
        ``[..., N, (y1, x1, y2, x2)]`` clipped boxes.
    """
    boxes = _as_float(boxes)
    window = ops.cast(ops.convert_to_tensor(window), boxes.dtype)
    window = _expand_batched(window, len(boxes.shape))
    wy1, wx1, wy2, wx2 = _unstack4(window)
    y1, x1, y2, x2 = _unstack4(boxes)
    clipped = [
        ops.maximum(ops.minimum(y1, wy2), wy1),
        ops.maximum(ops.minimum(x1, wx2), wx1),
        ops.maximum(ops.minimum(y2, wy2), wy1),
        ops.maximum(ops.minimum(x2, wx2), wx1),
    ]
    return ops.stack(clipped, axis=-1)


def _scale_shift(shape, dtype, rank):
    """``scale = [h-1, w-1, h-1, w-1]``, ``shift = [0, 0, 1, 1]``."""
    shape = ops.cast(ops.convert_to_tensor(shape), dtype)
    h, w = shape[..., 0], shape[..., 1]
    scale = ops.stack([h - 1.0, w - 1.0, h - 1.0, w - 1.0], axis=-1)
    shift = ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0], dtype=dtype)
    return _expand_batched(scale, rank), shift


def normalize_boxes(boxes, shape):
    """Pixel boxes -> normalized coordinates (Matterport ``norm_boxes``).

    ``(boxes - [0, 0, 1, 1]) / [h - 1, w - 1, h - 1, w - 1]``.

    Args:
        boxes: ``[..., (y1, x1, y2, x2)]`` in pixels (y2/x2 exclusive).
        shape: ``(height, width)`` as python ints, ``[2]`` or ``[batch, 2]``
            tensor (batched shapes pair with ``[batch, N, 4]`` boxes).

    Returns:
        ``[..., (y1, x1, y2, x2)]`` float, ``(0, 0, 1, 1)`` = whole image.
    """
    boxes = _as_float(boxes)
    scale, shift = _scale_shift(shape, boxes.dtype, len(boxes.shape))
    return (boxes - shift) / scale


def denormalize_boxes(boxes, shape, as_int=True):
    """Normalized boxes -> pixels (Matterport ``denorm_boxes``).

    ``round(boxes * [h - 1, w - 1, h - 1, w - 1] + [0, 0, 1, 1])``.

    Args:
        boxes: ``[..., (y1, x1, y2, x2)]`` normalized coordinates.
        shape: ``(height, width)`` as python ints, ``[2]`` or ``[batch, 2]``.
        as_int: if True (Matterport semantics) round and return int32,
            else return the unrounded float pixel coordinates.

    Returns:
        ``[..., (y1, x1, y2, x2)]`` int32 (or float) pixel coordinates.
    """
    boxes = _as_float(boxes)
    scale, shift = _scale_shift(shape, boxes.dtype, len(boxes.shape))
    pixels = boxes * scale + shift
    if as_int:
        return ops.cast(ops.round(pixels), "int32")
    return pixels
