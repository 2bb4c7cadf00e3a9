"""Detection-target layer: sample ROIs from proposals and build head targets (static, batched).

Positives (IoU >= 0.5 with a ground-truth box) are sampled up to
`train_rois_per_image * roi_positive_ratio`, then negatives (IoU < 0.5, not
touching a crowd box) fill the rest, as detectron2 does; rows left over are zero
padding with `roi_weights` 0. Positives come first, so the mask head only needs
the first `num_mask_rois` rows. With `add_gt_as_proposals` the ground-truth
boxes join the proposals (torchvision/detectron2), which gives the heads
positives from the first step when training from scratch.

Shape shorthand:
    P: proposals, G: MAX_GT_INSTANCES, T: train_rois_per_image, M: num_mask_rois
    proposals [batch, P, 4], gt_class_ids [batch, G], gt_boxes [batch, G, 4] normalized,
    gt_masks [batch, h, w, G] (mini masks or full-image masks)
    -> rois [batch, T, 4], class_ids [batch, T], deltas [batch, T, 4],
       masks [batch, M, mask_h, mask_w], roi_weights [batch, T]
"""

import keras
import numpy as np
from keras import ops

from kseg.models.mask_rcnn.proposals import gather_rows
from kseg.ops import compute_iou, crop_and_resize, encode_box_deltas


def _ranked_indices(is_member, count, seed_generator):
    """Indices [batch, count] of members in random order first; non-members after."""
    noise = keras.random.uniform(ops.shape(is_member), seed=seed_generator)
    keys = ops.where(is_member, 1.0 + noise, -noise)
    return ops.top_k(keys, count, sorted=True)[1]


def _to_box_frame(rois, boxes):
    """Express rois in the normalized frame of `boxes` (for mini-mask cropping)."""
    y1, x1, y2, x2 = ops.split(rois, 4, axis=-1)
    gy1, gx1, gy2, gx2 = ops.split(boxes, 4, axis=-1)
    gh = ops.maximum(gy2 - gy1, 1e-6)
    gw = ops.maximum(gx2 - gx1, 1e-6)
    return ops.concatenate([(y1 - gy1) / gh, (x1 - gx1) / gw,
                            (y2 - gy1) / gh, (x2 - gx1) / gw], axis=-1)


@keras.saving.register_keras_serializable(package="kseg")
class DetectionTargetLayer(keras.layers.Layer):
    """Sample ROIs and compute class, box-refinement and mask targets for the heads."""

    def __init__(self, train_rois_per_image, roi_positive_ratio, mask_shape, bbox_std_dev,
                 use_mini_mask=True, add_gt_as_proposals=True, seed=None, **kwargs):
        kwargs.setdefault("dtype", "float32")  # box targets in float32 (mixed precision)
        super().__init__(**kwargs)
        self.train_rois_per_image = int(train_rois_per_image)
        self.roi_positive_ratio = float(roi_positive_ratio)
        self.mask_shape = [int(v) for v in mask_shape]
        self.bbox_std_dev = [float(v) for v in np.ravel(bbox_std_dev)]
        self.use_mini_mask = bool(use_mini_mask)
        self.add_gt_as_proposals = bool(add_gt_as_proposals)
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.num_mask_rois = max(1, int(round(self.train_rois_per_image * self.roi_positive_ratio)))

    def call(self, proposals, gt_class_ids, gt_boxes, gt_masks):
        gt_class_ids = ops.cast(gt_class_ids, "int32")
        proposals = ops.stop_gradient(proposals)
        if self.add_gt_as_proposals:
            own = ops.where((gt_class_ids > 0)[..., None], gt_boxes, ops.zeros_like(gt_boxes))
            proposals = ops.concatenate([proposals, own], axis=1)
        missing = self.train_rois_per_image - (proposals.shape[1] or 0)
        if missing > 0:  # fewer candidates than ROI slots: pad with empty rows
            proposals = ops.pad(proposals, [[0, 0], [0, missing], [0, 0]])
        valid_roi = (proposals[..., 2] > proposals[..., 0]) & (proposals[..., 3] > proposals[..., 1])
        overlaps = compute_iou(proposals, gt_boxes)  # [batch, P, G]
        overlaps_obj = ops.where((gt_class_ids > 0)[:, None, :], overlaps, -1.0)
        crowd_max = ops.max(ops.where((gt_class_ids < 0)[:, None, :], overlaps, 0.0), axis=-1)
        roi_iou_max = ops.max(overlaps_obj, axis=-1)
        positive = valid_roi & (roi_iou_max >= 0.5)
        negative = valid_roi & (roi_iou_max < 0.5) & (crowd_max < 0.001)
        rows, num_pos = self._sample(positive, negative)
        rois = gather_rows(proposals, rows)
        assign = ops.argmax(gather_rows(overlaps_obj, rows), axis=-1)  # [batch, T]
        slot = ops.arange(self.train_rois_per_image)[None, :]
        is_pos = slot < num_pos[:, None]
        roi_weights = ops.cast(slot < self._num_real(negative, num_pos)[:, None], "float32")
        class_ids = ops.where(is_pos, ops.take_along_axis(gt_class_ids, assign, axis=1), 0)
        matched = gather_rows(gt_boxes, assign)
        deltas = encode_box_deltas(rois, matched, self.bbox_std_dev)
        deltas = ops.where(is_pos[..., None], deltas, 0.0)
        rois = rois * roi_weights[..., None]
        masks = self._mask_targets(rois, matched, assign, gt_masks)
        masks = masks * ops.cast(is_pos[:, :self.num_mask_rois, None, None], masks.dtype)
        return rois, class_ids, deltas, masks, roi_weights

    def _sample(self, positive, negative):
        """Row indices [batch, T]: sampled positives first, then negatives."""
        t = self.train_rois_per_image
        max_pos = self.num_mask_rois
        pos_rows = _ranked_indices(positive, t, self.seed_generator)
        neg_rows = _ranked_indices(negative, t, self.seed_generator)
        num_pos = ops.minimum(ops.sum(ops.cast(positive, "int32"), axis=1), max_pos)
        slot = ops.arange(t)[None, :]
        neg_slot = ops.clip(slot - num_pos[:, None], 0, t - 1)
        rows = ops.where(slot < num_pos[:, None], pos_rows,
                         ops.take_along_axis(neg_rows, neg_slot, axis=1))
        return rows, num_pos

    def _num_real(self, negative, num_pos):
        num_neg = ops.sum(ops.cast(negative, "int32"), axis=1)
        return ops.minimum(num_pos + num_neg, self.train_rois_per_image)

    def _mask_targets(self, rois, matched, assign, gt_masks):
        """Crop each positive ROI's ground-truth mask to mask_shape: [batch, M, mh, mw]."""
        m = self.num_mask_rois
        rois, matched, assign = rois[:, :m], matched[:, :m], assign[:, :m]
        if self.use_mini_mask:
            rois = _to_box_frame(rois, matched)
        batch = ops.shape(gt_masks)[0]
        num_gt = ops.shape(gt_masks)[3]
        # [batch, h, w, G] -> [batch * G, h, w, 1]
        masks = ops.reshape(ops.transpose(ops.cast(gt_masks, "float32"), (0, 3, 1, 2)),
                            (-1, ops.shape(gt_masks)[1], ops.shape(gt_masks)[2], 1))
        image_index = ops.cumsum(ops.ones_like(assign), axis=0) - 1
        box_indices = ops.reshape(image_index * num_gt + assign, (-1,))
        crops = crop_and_resize(masks, ops.reshape(rois, (-1, 4)), box_indices, self.mask_shape)
        crops = ops.round(crops[..., 0])
        return ops.reshape(crops, (batch, m, *self.mask_shape))

    def compute_output_shape(self, proposals_shape, gt_class_ids_shape, gt_boxes_shape,
                             gt_masks_shape):
        b, t, m = proposals_shape[0], self.train_rois_per_image, self.num_mask_rois
        return (b, t, 4), (b, t), (b, t, 4), (b, m, *self.mask_shape), (b, t)

    def get_config(self):
        return {**super().get_config(), "train_rois_per_image": self.train_rois_per_image,
                "roi_positive_ratio": self.roi_positive_ratio, "mask_shape": self.mask_shape,
                "bbox_std_dev": self.bbox_std_dev, "use_mini_mask": self.use_mini_mask,
                "add_gt_as_proposals": self.add_gt_as_proposals, "seed": self.seed}
