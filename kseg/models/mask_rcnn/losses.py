"""Matterport's five Mask R-CNN losses as free functions over padded, static tensors.

Every loss computes in float32 whatever the model's compute dtype (mixed precision), the
class losses and the training model's mask loss from logits. `mrcnn_mask_loss` also takes
Matterport's sigmoid probabilities (`from_logits=False`, its default): those are clipped to
[1e-7, 1 - 1e-7] as Matterport's `K.binary_crossentropy`, so a mask logit beyond about
+-16 gets a capped loss and no gradient; from logits the loss is exact and its gradient
`sigmoid(z) - target` everywhere.

Shape shorthand:
    A: anchors, N: RPN_TRAIN_ANCHORS_PER_IMAGE, T: ROIs, M: mask ROIs, C: classes
"""

from keras import ops

from kseg.distribute import replica_sum


def _f32(x):
    return ops.cast(x, "float32")


def _safe_mean(values, weights):
    """Weighted mean; under tf.distribute the weights are summed over all replicas, so
    each replica returns its share of the global-batch mean (the shares add up to it)."""
    weights = ops.cast(weights, values.dtype)
    return ops.sum(values * weights) / ops.maximum(replica_sum(ops.sum(weights)), 1.0)


def smooth_l1(y_true, y_pred):
    diff = ops.abs(y_true - y_pred)
    return ops.where(diff < 1.0, 0.5 * diff * diff, diff - 0.5)


def rpn_class_loss(rpn_match, rpn_class_logits):
    """Anchor objectness cross-entropy over non-neutral anchors.

    rpn_match: [batch, A, 1] (1 positive, -1 negative, 0 neutral); logits [batch, A, 2].
    """
    rpn_match = ops.squeeze(ops.cast(rpn_match, "int32"), -1)
    labels = ops.cast(rpn_match == 1, "int32")
    ce = ops.sparse_categorical_crossentropy(labels, _f32(rpn_class_logits), from_logits=True)
    return _safe_mean(ce, rpn_match != 0)


def positive_anchor_rows(rpn_match, count):
    """Indices [batch, count] of positive anchors in ascending order, and a validity mask."""
    rpn_match = ops.squeeze(ops.cast(rpn_match, "int32"), -1)
    num_anchors = ops.shape(rpn_match)[1]
    order = ops.cast(num_anchors - ops.arange(num_anchors), "float32")[None, :]
    keys = ops.where(rpn_match == 1, order, 0.0)
    values, rows = ops.top_k(keys, count, sorted=True)
    return rows, values > 0


def rpn_bbox_loss(target_bbox, rpn_match, rpn_bbox):
    """Smooth-L1 between RPN deltas of positive anchors and their targets.

    target_bbox: [batch, N, 4], packed in ascending positive-anchor order (Matterport).
    rpn_match: [batch, A, 1]; rpn_bbox: [batch, A, 4].
    """
    count = target_bbox.shape[1]
    rows, valid = positive_anchor_rows(rpn_match, count)
    pred = ops.take_along_axis(_f32(rpn_bbox), rows[..., None], axis=1)
    loss = ops.mean(smooth_l1(_f32(target_bbox), pred), axis=-1)  # Matterport: mean per coordinate
    return _safe_mean(loss, valid)


def mrcnn_class_loss(target_class_ids, pred_class_logits, active_class_ids, roi_weights=None):
    """Classifier cross-entropy; predictions of classes not in the image's source are ignored.

    target_class_ids [batch, T]; logits [batch, T, C]; active_class_ids [batch, C].
    """
    target_class_ids = ops.cast(target_class_ids, "int32")
    pred_class_logits = _f32(pred_class_logits)
    pred_ids = ops.argmax(pred_class_logits, axis=-1)
    pred_active = ops.take_along_axis(ops.cast(active_class_ids, "float32"), pred_ids, axis=1)
    ce = ops.sparse_categorical_crossentropy(target_class_ids, pred_class_logits,
                                             from_logits=True)
    weights = pred_active if roi_weights is None else pred_active * roi_weights
    return _safe_mean(ce, weights)


def mrcnn_bbox_loss(target_bbox, target_class_ids, pred_bbox):
    """Smooth-L1 on the deltas predicted for the true class of positive ROIs.

    target_bbox [batch, T, 4]; target_class_ids [batch, T]; pred_bbox [batch, T, C, 4].
    """
    target_class_ids = ops.cast(target_class_ids, "int32")
    pred = ops.take_along_axis(_f32(pred_bbox), target_class_ids[..., None, None], axis=2)[:, :, 0]
    loss = ops.mean(smooth_l1(_f32(target_bbox), pred), axis=-1)
    return _safe_mean(loss, target_class_ids > 0)


def true_class_channel(pred_masks, class_ids):
    """Each ROI's channel of its own class: [batch, M, h, w, C] -> [batch, M, h, w].

    class_ids: [batch, M] int. A gather on the flat row-major layout (index
    `pixel * C + class`): loss + gradient take 0.39-0.43x the time of `take_along_axis` on
    the class axis and 0.7-0.9x that of a one-hot multiply-sum on CPU (TF, [1, 128, 28,
    28, 81] and [2, 66, 28, 28, 81]), with the same numbers (bench/mask_loss_pick.py).
    Indices are int32: up to 2**31 mask values.
    """
    shape = ops.shape(pred_masks)
    num_classes = pred_masks.shape[-1]
    pixels = pred_masks.shape[2] * pred_masks.shape[3]
    rows = ops.broadcast_to(ops.cast(class_ids, "int32")[:, :, None],
                            (shape[0], shape[1], pixels))
    rows = ops.reshape(rows, (-1,))
    flat = ops.arange(ops.shape(rows)[0], dtype="int32") * num_classes + rows
    picked = ops.take(ops.reshape(pred_masks, (-1,)), flat)
    return ops.reshape(picked, (shape[0], shape[1], shape[2], shape[3]))


def mrcnn_mask_loss(target_masks, target_class_ids, pred_masks, from_logits=False):
    """Binary cross-entropy of the true class's mask on positive ROIs.

    target_masks [batch, M, h, w]; target_class_ids [batch, T >= M];
    pred_masks [batch, M, h, w, C] per class, or [batch, M, h, w] already the true
    class's channel (the training model's `mrcnn_mask_true_logits`): sigmoid
    probabilities (Matterport's, clipped to [1e-7, 1 - 1e-7]) or, with
    `from_logits=True`, logits (stable for any logit, no clipping).
    """
    m = pred_masks.shape[1]
    class_ids = ops.cast(target_class_ids[:, :m], "int32")
    pred = _f32(pred_masks)
    if len(pred.shape) == 5:
        pred = true_class_channel(pred, class_ids)
    target = ops.cast(target_masks, pred.dtype)
    if from_logits:
        bce = ops.binary_crossentropy(target, pred, from_logits=True)
    else:
        pred = ops.clip(pred, 1e-7, 1.0 - 1e-7)
        bce = -(target * ops.log(pred) + (1.0 - target) * ops.log(1.0 - pred))
    per_roi = ops.mean(bce, axis=(2, 3))
    return _safe_mean(per_roi, class_ids > 0)
