"""RPN training targets in the graph: which anchors are positive or negative, and their deltas.

Matterport's `build_rpn_targets` rules, batched with `keras.ops` over
[batch, A] anchors x [batch, G] ground-truth boxes (static shapes, no loop over the
batch, the anchors or the boxes), as torchvision, detectron2 and keras-hub do it:

1. Anchors whose IoU with a crowd box (negative class id) is > 0.001 are never
   negative (they may still be positive).
2. Anchors whose best IoU with a (non-crowd) gt box is < 0.3 are negative.
3. For each gt box, the anchor(s) with the highest IoU are positive (ties all count;
   a gt box that overlaps no anchor at all gets none).
4. Anchors whose best IoU is >= 0.7 are positive.
5. Random subsampling: at most R / 2 positives, and negatives fill up to R in total
   (`keras.random` with the layer's `SeedGenerator`: reproducible when seeded).

Gt entries with class id 0 (padding) or zero area are ignored. Everything is in
pixels and float32; the NumPy reference `rpn_targets_numpy` gives the same sets.

Shape shorthand:
    A: anchors; G: MAX_GT_INSTANCES; R: RPN_TRAIN_ANCHORS_PER_IMAGE.
    anchors [batch, A, (y1, x1, y2, x2)] pixels ([A, 4] is broadcast over the batch),
    gt_class_ids [batch, G] int, gt_boxes [batch, G, (y1, x1, y2, x2)] pixels
    -> rpn_match [batch, A, 1] int32 (1 positive, -1 negative, 0 neutral),
       rpn_bbox [batch, R, (dy, dx, log dh, log dw)] float32 / RPN_BBOX_STD_DEV, one
       row per sampled positive in ascending anchor order (as `losses.rpn_bbox_loss`
       reads them), zero rows after them.
"""

import keras
import numpy as np
from keras import ops

from kseg.ops import box_area, compute_iou, encode_box_deltas, leading_rows

POSITIVE_IOU = 0.7
NEGATIVE_IOU = 0.3
CROWD_IOU = 0.001


def used_gt_columns(gt_class_ids, gt_boxes):
    """gt_class_ids [batch, G'], gt_boxes [batch, G', 4]: on TensorFlow outside XLA the
    first G' = (last non-padding entry of the batch) + 1 columns, else all G (the same
    targets: padding matches nothing). The [batch, A, G'] IoU matrix is the layer's cost:
    with G = 100 and a few instances this makes it ~30x cheaper on CPU."""
    used = (gt_class_ids != 0) | ops.any(gt_boxes != 0, axis=-1)
    count = ops.max(ops.where(used, ops.arange(1, ops.shape(used)[1] + 1)[None, :], 0), axis=1)
    return leading_rows(gt_class_ids, count), leading_rows(gt_boxes, count)


def _batched(anchors, batch_like):
    """Anchors [batch, A, 4] float32 (an [A, 4] array is broadcast to the batch)."""
    anchors = ops.cast(anchors, "float32")
    if len(anchors.shape) == 2:
        anchors = anchors[None]
    batch = ops.shape(batch_like)[0]
    return ops.broadcast_to(anchors, (batch, ops.shape(anchors)[1], 4))


def match_anchors(anchors, gt_class_ids, gt_boxes, positive_iou=POSITIVE_IOU,
                  negative_iou=NEGATIVE_IOU, crowd_iou=CROWD_IOU):
    """Deterministic part of the RPN targets (rules 1-4, before sampling).

    Args:
        anchors: [batch, A, 4] pixels; gt_class_ids [batch, G]; gt_boxes [batch, G, 4] pixels.

    Returns:
        match: [batch, A] int32, 1 positive, -1 negative, 0 neutral.
        best_gt: [batch, A] int32, the index of each anchor's best-overlapping
            (non-crowd) gt box (meaningful where match == 1).
    """
    gt_class_ids = ops.cast(gt_class_ids, "int32")
    gt_boxes = ops.cast(gt_boxes, "float32")
    iou = compute_iou(anchors, gt_boxes)  # [batch, A, G]
    real = box_area(gt_boxes) > 0
    is_object = ((gt_class_ids > 0) & real)[:, None, :]
    is_crowd = ((gt_class_ids < 0) & real)[:, None, :]
    object_iou = ops.where(is_object, iou, -1.0)
    best_iou = ops.maximum(ops.max(object_iou, axis=-1), 0.0)
    best_gt = ops.cast(ops.argmax(object_iou, axis=-1), "int32")
    crowd_free = ops.max(ops.where(is_crowd, iou, 0.0), axis=-1) <= crowd_iou
    top = ops.max(object_iou, axis=1, keepdims=True)  # [batch, 1, G]: each gt's best IoU
    forced = ops.any((object_iou == top) & (top > 0), axis=-1)
    positive = forced | (best_iou >= positive_iou)
    negative = (best_iou < negative_iou) & crowd_free
    match = ops.where(positive, 1, ops.where(negative, -1, 0))
    return ops.cast(match, "int32"), best_gt


def _random_members(is_member, count, seed_generator):
    """Indices [batch, count] of members in random order first (distinct indices; entries
    past the member count point anywhere, possibly past A: `is_member` is padded)."""
    noise = keras.random.uniform(ops.shape(is_member), seed=seed_generator)
    keys = ops.where(is_member, 1.0 + noise, -noise)
    keys = ops.pad(keys, [[0, 0], [0, count]], constant_values=-2.0)  # count <= A + count
    return ops.top_k(keys, count, sorted=True)[1]


def _flag(indices, used, num_anchors):
    """[batch, A] int32: 1 at `indices` [batch, k] (distinct per row) where `used`."""
    batch, k = ops.shape(indices)[0], ops.shape(indices)[1]
    rows = ops.broadcast_to(ops.arange(batch, dtype="int32")[:, None], (batch, k))
    coords = ops.reshape(ops.stack([rows, ops.cast(indices, "int32")], axis=-1), (-1, 2))
    flags = ops.zeros((batch, num_anchors + k), "int32")
    flags = ops.scatter_update(flags, coords, ops.reshape(ops.cast(used, "int32"), (-1,)))
    return flags[:, :num_anchors]


def sample_anchors(match, total, seed_generator):
    """Rule 5: keep at most total // 2 positives and fill up to `total` with negatives.

    Args:
        match: [batch, A] int32 from `match_anchors`.
        total: R, a Python int.

    Returns:
        rpn_match [batch, A] int32 (1 / -1 / 0); positives [batch, total // 2] int32,
        the kept positive anchors in ascending order, then A (past the end) as padding;
        num_pos [batch] int32.
    """
    num_anchors = ops.shape(match)[1]
    half = total // 2
    positive, negative = match == 1, match == -1
    num_pos = ops.minimum(ops.sum(ops.cast(positive, "int32"), axis=1), half)
    num_neg = ops.minimum(ops.sum(ops.cast(negative, "int32"), axis=1), total - num_pos)
    pos_rows = _random_members(positive, half, seed_generator)
    neg_rows = _random_members(negative, total, seed_generator)
    pos_used = ops.arange(half)[None, :] < num_pos[:, None]
    neg_used = ops.arange(total)[None, :] < num_neg[:, None]
    rpn_match = (_flag(pos_rows, pos_used, num_anchors)
                 - _flag(neg_rows, neg_used, num_anchors))
    positives = ops.sort(ops.where(pos_used, ops.cast(pos_rows, "int32"), num_anchors), axis=1)
    return rpn_match, positives, num_pos


def _gather(values, rows):
    """values [batch, N, ...] at rows [batch, k] -> [batch, k, ...]."""
    index = ops.reshape(rows, (*ops.shape(rows), *([1] * (len(values.shape) - 2))))
    return ops.take_along_axis(values, index, axis=1)


def positive_deltas(anchors, gt_boxes, best_gt, positives, num_pos, total, std_dev):
    """rpn_bbox [batch, total, 4]: deltas / std_dev of the `positives` rows, zero after."""
    num_anchors = ops.shape(anchors)[1]
    rows = ops.minimum(positives, num_anchors - 1)
    boxes = _gather(anchors, rows)
    gt = _gather(ops.cast(gt_boxes, "float32"), _gather(best_gt, rows))
    used = (ops.arange(ops.shape(positives)[1])[None, :] < num_pos[:, None])[..., None]
    safe_gt = ops.where(used, gt, boxes)  # unused rows: finite zeros, no log(0)
    deltas = ops.where(used, encode_box_deltas(boxes, safe_gt, std_dev), 0.0)
    return ops.pad(deltas, [[0, 0], [0, total - ops.shape(positives)[1]], [0, 0]])


@keras.saving.register_keras_serializable(package="kseg")
class RpnTargetLayer(keras.layers.Layer):
    """RPN training targets from anchors and ground truth (see the module docstring).

    Args:
        anchors_per_image: R (RPN_TRAIN_ANCHORS_PER_IMAGE).
        bbox_std_dev: the four delta scales (RPN_BBOX_STD_DEV).
        seed: seed of the sampling's `keras.random.SeedGenerator` (None: Keras's global seed).

    Call: anchors [batch, A, 4] (or [A, 4]) pixels, gt_class_ids [batch, G],
    gt_boxes [batch, G, 4] pixels -> (rpn_match [batch, A, 1] int32,
    rpn_bbox [batch, R, 4] float32).
    """

    def __init__(self, anchors_per_image, bbox_std_dev=(0.1, 0.1, 0.2, 0.2),
                 positive_iou=POSITIVE_IOU, negative_iou=NEGATIVE_IOU, crowd_iou=CROWD_IOU,
                 seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # targets in float32 (mixed precision)
        super().__init__(**kwargs)
        self.anchors_per_image = int(anchors_per_image)
        self.bbox_std_dev = [float(v) for v in np.ravel(bbox_std_dev)]
        self.positive_iou, self.negative_iou = float(positive_iou), float(negative_iou)
        self.crowd_iou = float(crowd_iou)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, anchors, gt_class_ids, gt_boxes):
        anchors = ops.stop_gradient(_batched(anchors, gt_class_ids))
        gt_boxes = ops.stop_gradient(ops.cast(gt_boxes, "float32"))
        gt_class_ids, gt_boxes = used_gt_columns(ops.cast(gt_class_ids, "int32"), gt_boxes)
        match, best_gt = match_anchors(anchors, gt_class_ids, gt_boxes, self.positive_iou,
                                       self.negative_iou, self.crowd_iou)
        rpn_match, positives, num_pos = sample_anchors(match, self.anchors_per_image,
                                                       self.seed_generator)
        rpn_bbox = positive_deltas(anchors, gt_boxes, best_gt, positives, num_pos,
                                   self.anchors_per_image, self.bbox_std_dev)
        return rpn_match[..., None], rpn_bbox

    def compute_output_spec(self, anchors, gt_class_ids, gt_boxes):
        batch = gt_class_ids.shape[0]
        num_anchors = anchors.shape[-2]
        return (keras.KerasTensor((batch, num_anchors, 1), dtype="int32"),
                keras.KerasTensor((batch, self.anchors_per_image, 4), dtype="float32"))

    def get_config(self):
        return {**super().get_config(), "anchors_per_image": self.anchors_per_image,
                "bbox_std_dev": self.bbox_std_dev, "positive_iou": self.positive_iou,
                "negative_iou": self.negative_iou, "crowd_iou": self.crowd_iou,
                "seed": self.seed}


def rpn_targets(anchors, gt_class_ids, gt_boxes, config, seed=None):
    """RPN targets of one image as NumPy (Matterport's `build_rpn_targets` signature),
    computed by `RpnTargetLayer`, e.g. to look at them in a notebook.

    Args:
        anchors: [A, 4] pixels; gt_class_ids: [N] int (negative: crowd, 0: padding);
        gt_boxes: [N, 4] pixels; config: RPN_TRAIN_ANCHORS_PER_IMAGE, RPN_BBOX_STD_DEV.
        seed: int for reproducible sampling.

    Returns:
        rpn_match [A] int32, rpn_bbox [R, 4] float32 (see the module docstring).
    """
    ids = np.asarray(gt_class_ids, np.int32).reshape(-1)
    boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    if len(ids) == 0:  # one padding entry: G must be at least 1
        ids, boxes = np.zeros([1], np.int32), np.zeros([1, 4], np.float32)
    layer = RpnTargetLayer(config.RPN_TRAIN_ANCHORS_PER_IMAGE, config.RPN_BBOX_STD_DEV,
                           seed=seed)
    rpn_match, rpn_bbox = layer(np.asarray(anchors, np.float32), ids[None], boxes[None])
    return ops.convert_to_numpy(rpn_match)[0, :, 0], ops.convert_to_numpy(rpn_bbox)[0]
