"""Batched, statically shaped greedy non-max suppression.

Shape shorthand::

    batch               images per batch (may be dynamic)
    N                   candidate boxes per image (static)
    K                   max_output_size (python int)
    [batch, N, (y1, x1, y2, x2)]  boxes, any consistent units
    [batch, N]          scores (float)
    [batch, K]          selected indices, int32, padded with 0
    [batch]             number of valid selected indices, int32

The ``keras.ops`` fallback runs on every backend and under XLA: a
``while_loop`` of at most ``K`` greedy picks (argmax of the remaining scores,
then suppress every box with IoU > ``iou_threshold``), vectorized over the
batch. On the TensorFlow backend the C++ kernel ``NonMaxSuppressionV4`` is
used instead (see ``kseg.ops._tf_fast``), which gives identical results.
"""

from keras import ops

from kseg.ops import _tf_fast

__all__ = ["non_max_suppression"]

_NEG_INF = float("-inf")


def _canonicalize(boxes):
    """Orders corners so that ``y1 <= y2`` and ``x1 <= x2`` (as TF does)."""
    y1, x1, y2, x2 = boxes[..., 0], boxes[..., 1], boxes[..., 2], boxes[..., 3]
    return ops.stack(
        [ops.minimum(y1, y2), ops.minimum(x1, x2),
         ops.maximum(y1, y2), ops.maximum(x1, x2)], axis=-1)


def _iou_one_vs_all(box, boxes, areas):
    """IoU of one box per image against all boxes of that image.

    Args:
        box: ``[batch, (y1, x1, y2, x2)]``.
        boxes: ``[batch, N, (y1, x1, y2, x2)]``.
        areas: ``[batch, N]`` areas of ``boxes``.

    Returns:
        ``[batch, N]`` IoU, 0 where the union is 0.
    """
    box = ops.expand_dims(box, 1)
    lo = ops.maximum(box[..., :2], boxes[..., :2])
    hi = ops.minimum(box[..., 2:], boxes[..., 2:])
    wh = ops.maximum(hi - lo, 0.0)
    inter = wh[..., 0] * wh[..., 1]
    box_area = (box[..., 2] - box[..., 0]) * (box[..., 3] - box[..., 1])
    union = box_area + areas - inter
    positive = union > 0.0
    return ops.where(positive, inter / ops.where(positive, union, 1.0), 0.0)


def _nms_fallback(boxes, scores, max_output_size, iou_threshold,
                  score_threshold):
    """``keras.ops`` greedy NMS; same contract as :func:`non_max_suppression`."""
    # Indices carry no gradient; stopping it keeps JAX reverse-mode away from
    # the while_loop (which it cannot transpose).
    boxes = _canonicalize(ops.stop_gradient(ops.cast(boxes, "float32")))
    scores = ops.stop_gradient(ops.cast(scores, "float32"))
    num_boxes = boxes.shape[1]
    areas = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    active = ops.where(scores > score_threshold, scores, _NEG_INF)
    indices = ops.zeros_like(scores[:, :1], dtype="int32")
    indices = ops.tile(indices, (1, max_output_size))
    counts = ops.zeros_like(scores[:, 0], dtype="int32")
    positions = ops.arange(max_output_size, dtype="int32")

    def cond(i, active, indices, counts):
        return ops.logical_and(i < max_output_size, ops.any(active > _NEG_INF))

    def body(i, active, indices, counts):
        best = ops.cast(ops.argmax(active, axis=1), "int32")  # [batch]
        valid = ops.max(active, axis=1) > _NEG_INF  # [batch]
        picked = ops.arange(num_boxes, dtype="int32")[None] == best[:, None]
        best_box = ops.sum(ops.where(picked[..., None], boxes, 0.0), axis=1)
        iou = _iou_one_vs_all(best_box, boxes, areas)
        drop = ops.logical_and(
            ops.logical_or(iou > iou_threshold, picked), valid[:, None])
        active = ops.where(drop, _NEG_INF, active)
        write = ops.logical_and(positions[None] == i, valid[:, None])
        indices = ops.where(write, best[:, None], indices)
        counts = counts + ops.cast(valid, "int32")
        return i + 1, active, indices, counts

    loop_vars = (ops.convert_to_tensor(0, "int32"), active, indices, counts)
    _, _, indices, counts = ops.while_loop(cond, body, loop_vars)
    return indices, counts


def non_max_suppression(boxes, scores, max_output_size, iou_threshold=0.5,
                        score_threshold=_NEG_INF, use_fast_ops=None):
    """Greedy per-image NMS over a batch with padded, static-shape outputs.

    Boxes with ``score <= score_threshold`` are never selected; a candidate
    is suppressed by a selected box when their IoU is ``> iou_threshold``.
    Zero-area boxes (e.g. all-zero padding) have IoU 0 with everything.

    Args:
        boxes: ``[batch, N, (y1, x1, y2, x2)]`` float (computed in float32).
        scores: ``[batch, N]`` float.
        max_output_size: python int ``K``, picks per image.
        iou_threshold: python float.
        score_threshold: python float.
        use_fast_ops: None (auto: TF kernel on the TensorFlow backend unless
            env ``KSEG_DISABLE_FAST_OPS=1``), True (require it) or False.

    Returns:
        ``(indices, valid_counts)``: ``[batch, K]`` int32 indices into ``N``
        sorted by descending score, padded with 0 after ``valid_counts``
        (``[batch]`` int32) entries.
    """
    max_output_size = int(max_output_size)
    iou_threshold = float(iou_threshold)
    score_threshold = float(score_threshold)
    if _tf_fast.should_use(use_fast_ops):
        return _tf_fast.non_max_suppression(
            boxes, scores, max_output_size, iou_threshold, score_threshold)
    return _nms_fallback(boxes, scores, max_output_size, iou_threshold,
                         score_threshold)
