"""RPN training targets per image in NumPy: the reference for `RpnTargetLayer`.

Training computes the RPN targets in the graph (`kseg.models.mask_rcnn.rpn_targets`);
this module is the per-image NumPy implementation the layer is tested against (it was
`kseg.data.rpn_targets`, which still imports it). Matterport's `build_rpn_targets`
rules, in vectorized NumPy (a loop over the ground-truth boxes only, never over
anchors; no [A, N] IoU matrix is built):

1. Anchors whose IoU with a crowd box (negative class id) is > 0.001 are never
   negative (they may still be positive).
2. Anchors whose best IoU with a (non-crowd) gt box is < 0.3 are negative.
3. For each gt box, the anchor(s) with the highest IoU are positive (ties all count;
   a gt box that overlaps no anchor at all gets none, unlike Matterport where it
   would turn every anchor positive).
4. Anchors whose best IoU is >= 0.7 are positive.
5. Random subsampling: at most R / 2 positives, and negatives fill up to R in total.

Gt entries with class id 0 (padding) or zero area are ignored.

Matching (steps 1-4) is deterministic and can be cached per image with
`match_anchors`; sampling (step 5) draws from `rng` each time with
`sample_rpn_targets`.

Shape shorthand:
    A: anchors; N: gt instances; P: positive anchors before sampling;
    R: config.RPN_TRAIN_ANCHORS_PER_IMAGE.
    boxes and anchors: (y1, x1, y2, x2) pixels, y2/x2 exclusive.
"""

import numpy as np

POSITIVE_IOU = 0.7
NEGATIVE_IOU = 0.3
CROWD_IOU = 0.001

_last_columns = None  # (anchors, dtype, columns): one-entry cache for read-only anchor arrays


def _anchor_columns(anchors, dtype=np.float64):
    """Contiguous (y1, x1, y2, x2, area) arrays [A] of the anchors in `dtype`.

    Cached for the last read-only anchors array (`config_anchors` returns read-only
    arrays), so repeated calls with the same anchors skip the copy.
    """
    global _last_columns
    last = _last_columns
    if last is not None and last[0] is anchors and last[1] == dtype:
        return last[2]
    a = np.asarray(anchors, dtype=dtype)
    y1, x1, y2, x2 = (np.ascontiguousarray(a[:, i]) for i in range(4))
    columns = (y1, x1, y2, x2, (y2 - y1) * (x2 - x1))
    if isinstance(anchors, np.ndarray) and not anchors.flags.writeable:
        _last_columns = (anchors, dtype, columns)
    return columns


def iou_with_box(columns, box):
    """IoU [A] of every anchor (`_anchor_columns` output) with one box [4], in the
    columns' dtype (float32: the same operations as `kseg.ops.compute_iou`)."""
    y1, x1, y2, x2, area = columns
    by1, bx1, by2, bx2 = (y1.dtype.type(v) for v in box[:4])
    h = np.minimum(y2, by2)
    h -= np.maximum(y1, by1)
    np.maximum(h, 0.0, out=h)
    w = np.minimum(x2, bx2)
    w -= np.maximum(x1, bx1)
    np.maximum(w, 0.0, out=w)
    inter = h
    inter *= w
    union = area + (by2 - by1) * (bx2 - bx1) - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _crowd_free(columns, crowd_boxes):
    """[A] bool: True where an anchor overlaps no crowd box by more than CROWD_IOU."""
    free = np.ones(columns[0].shape[0], dtype=bool)
    for box in crowd_boxes:
        free &= iou_with_box(columns, box) <= CROWD_IOU
    return free


def match_anchors(anchors, gt_class_ids, gt_boxes, dtype=np.float64):
    """Deterministic part of the RPN targets (rules 1-4, before sampling).

    Args:
        anchors: [A, 4] pixels.
        gt_class_ids: [N] int; < 0 marks crowd boxes, 0 padding.
        gt_boxes: [N, 4] pixels.
        dtype: arithmetic of the IoUs and thresholds. Rule 3's ties are exact float
            ties, so the sets follow the rounding: np.float32 reproduces
            `RpnTargetLayer` (float32) exactly.

    Returns:
        match: [A] int8, 1 positive, -1 negative, 0 neutral.
        pos_gt: [P] int32, for each anchor of `np.flatnonzero(match == 1)` (in that
            order) the index into `gt_boxes` of its best-overlapping gt box.
    """
    columns = _anchor_columns(anchors, np.dtype(dtype).type)
    gt_class_ids = np.asarray(gt_class_ids).reshape(-1)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64).reshape(-1, 4)
    area = (gt_boxes[:, 2] - gt_boxes[:, 0]) * (gt_boxes[:, 3] - gt_boxes[:, 1])
    crowd_free = _crowd_free(columns, gt_boxes[(gt_class_ids < 0) & (area > 0)])
    best_iou = np.zeros(columns[0].shape[0], columns[0].dtype)
    best_gt = np.full(columns[0].shape[0], -1, dtype=np.int32)
    forced = []
    for j in np.flatnonzero((gt_class_ids > 0) & (area > 0)):
        iou = iou_with_box(columns, gt_boxes[j])
        better = iou > best_iou  # strict: the first gt wins ties, as np.argmax
        best_iou[better] = iou[better]
        best_gt[better] = j
        top = iou.max()
        if top > 0:
            forced.append(np.flatnonzero(iou == top))
    match = np.zeros(columns[0].shape[0], dtype=np.int8)
    match[(best_iou < NEGATIVE_IOU) & crowd_free] = -1
    if forced:
        match[np.concatenate(forced)] = 1
    match[best_iou >= POSITIVE_IOU] = 1
    return match, best_gt[match == 1]


def box_deltas(boxes, gt_boxes):
    """Matterport `box_refinement`: [K, (dy, dx, log dh, log dw)] float64 from boxes to gt."""
    boxes = np.asarray(boxes, dtype=np.float64)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float64)
    h = boxes[:, 2] - boxes[:, 0]
    w = boxes[:, 3] - boxes[:, 1]
    gh = gt_boxes[:, 2] - gt_boxes[:, 0]
    gw = gt_boxes[:, 3] - gt_boxes[:, 1]
    dy = (gt_boxes[:, 0] + 0.5 * gh - boxes[:, 0] - 0.5 * h) / h
    dx = (gt_boxes[:, 1] + 0.5 * gw - boxes[:, 1] - 0.5 * w) / w
    return np.stack([dy, dx, np.log(gh / h), np.log(gw / w)], axis=1)


def _choose(rng, ix, count):
    """`count` entries of `ix` without replacement (sorted positions), or all of them."""
    if len(ix) <= count:
        return np.arange(len(ix))
    return np.sort(rng.choice(len(ix), size=count, replace=False))


def sample_rpn_targets(anchors, match, pos_gt, gt_boxes, config, rng=None):
    """Subsample matched anchors (rule 5) and compute the positives' deltas.

    Args:
        anchors: [A, 4] pixels; match, pos_gt: `match_anchors` output.
        gt_boxes: [N, 4] pixels (the boxes given to `match_anchors`).
        config: uses RPN_TRAIN_ANCHORS_PER_IMAGE (R) and RPN_BBOX_STD_DEV.
        rng: `np.random.Generator` (a fresh unseeded one if None).

    Returns:
        rpn_match: [A] int32, 1 / -1 / 0 with at most R / 2 positives and R non-zero.
        rpn_bbox: [R, (dy, dx, log dh, log dw)] float32 divided by RPN_BBOX_STD_DEV,
            one row per positive anchor in anchor order, zero rows after them.
    """
    rng = np.random.default_rng() if rng is None else rng
    total = int(config.RPN_TRAIN_ANCHORS_PER_IMAGE)
    pos_ix = np.flatnonzero(match == 1)
    keep = _choose(rng, pos_ix, total // 2)
    pos_ix, pos_gt = pos_ix[keep], np.asarray(pos_gt)[keep]
    neg_ix = np.flatnonzero(match == -1)
    neg_ix = neg_ix[_choose(rng, neg_ix, total - len(pos_ix))]
    rpn_match = np.zeros(len(match), dtype=np.int32)
    rpn_match[pos_ix] = 1
    rpn_match[neg_ix] = -1
    rpn_bbox = np.zeros([total, 4], dtype=np.float32)
    if len(pos_ix):
        deltas = box_deltas(np.asarray(anchors)[pos_ix], np.asarray(gt_boxes)[pos_gt])
        rpn_bbox[:len(pos_ix)] = deltas / np.asarray(config.RPN_BBOX_STD_DEV, np.float64)
    return rpn_match, rpn_bbox


def build_rpn_targets(anchors, gt_class_ids, gt_boxes, config, rng=None):
    """RPN targets for one image (Matterport `build_rpn_targets`).

    Args:
        anchors: [A, (y1, x1, y2, x2)] pixels.
        gt_class_ids: [N] int; negative ids are crowd boxes, 0 is padding.
        gt_boxes: [N, (y1, x1, y2, x2)] pixels.
        config: a `MaskRCNNConfig` (RPN_TRAIN_ANCHORS_PER_IMAGE, RPN_BBOX_STD_DEV).
        rng: `np.random.Generator` for the subsampling; results are deterministic
            given its state.

    Returns:
        rpn_match: [A] int32 (1 positive, -1 negative, 0 neutral).
        rpn_bbox: [R, (dy, dx, log dh, log dw)] float32, normalized by RPN_BBOX_STD_DEV.
    """
    match, pos_gt = match_anchors(anchors, gt_class_ids, gt_boxes)
    return sample_rpn_targets(anchors, match, pos_gt, gt_boxes, config, rng)
