"""Proposal layer: RPN scores and deltas -> top proposals after NMS (static, batched).

Shape shorthand:
    A: anchors, K: min(PRE_NMS_LIMIT, A), R: proposal_count
    rpn_probs [batch, A, 2], rpn_bbox [batch, A, 4], anchors [batch, A, (y1, x1, y2, x2)]
    -> proposals [batch, R, (y1, x1, y2, x2)] normalized, zero rows where fewer survive NMS.
"""

import keras
import numpy as np
from keras import ops

from kseg.ops import decode_box_deltas, non_max_suppression


def gather_rows(values, indices):
    """values [batch, N, ...], indices [batch, K] -> [batch, K, ...]."""
    extra = len(values.shape) - 2
    idx = ops.reshape(indices, tuple(ops.shape(indices)) + (1,) * extra)
    return ops.take_along_axis(values, idx, axis=1)


@keras.saving.register_keras_serializable(package="kseg")
class ProposalLayer(keras.layers.Layer):
    """Decode anchors with RPN deltas, keep the top `pre_nms_limit`, NMS, pad to `proposal_count`.

    Args:
        proposal_count: proposals kept per image (POST_NMS_ROIS_TRAINING/INFERENCE).
        nms_threshold: IoU above which a lower-scored proposal is dropped (RPN_NMS_THRESHOLD).
        pre_nms_limit: anchors kept by score before NMS (PRE_NMS_LIMIT).
        rpn_bbox_std_dev: the four delta scales (RPN_BBOX_STD_DEV).
    """

    def __init__(self, proposal_count, nms_threshold, pre_nms_limit=6000,
                 rpn_bbox_std_dev=(0.1, 0.1, 0.2, 0.2), **kwargs):
        kwargs.setdefault("dtype", "float32")  # box decoding and NMS in float32 (mixed precision)
        super().__init__(**kwargs)
        self.proposal_count = int(proposal_count)
        self.nms_threshold = float(nms_threshold)
        self.pre_nms_limit = int(pre_nms_limit)
        self.rpn_bbox_std_dev = [float(v) for v in np.ravel(rpn_bbox_std_dev)]

    def call(self, rpn_probs, rpn_bbox, anchors):
        scores = rpn_probs[..., 1]
        num_anchors = anchors.shape[1] if isinstance(anchors.shape[1], int) else None
        k = self.pre_nms_limit if num_anchors is None else min(self.pre_nms_limit, num_anchors)
        scores, top = ops.top_k(scores, k, sorted=True)
        deltas = gather_rows(rpn_bbox, top)
        boxes = decode_box_deltas(gather_rows(anchors, top), deltas, self.rpn_bbox_std_dev)
        boxes = ops.clip(boxes, 0.0, 1.0)
        keep, valid = non_max_suppression(boxes, scores, self.proposal_count, self.nms_threshold)
        proposals = gather_rows(boxes, keep)
        is_valid = ops.arange(self.proposal_count)[None, :] < ops.expand_dims(valid, 1)
        return ops.where(is_valid[..., None], proposals, ops.zeros_like(proposals))

    def compute_output_shape(self, rpn_probs_shape, rpn_bbox_shape, anchors_shape):
        return (rpn_probs_shape[0], self.proposal_count, 4)

    def get_config(self):
        return {**super().get_config(), "proposal_count": self.proposal_count,
                "nms_threshold": self.nms_threshold, "pre_nms_limit": self.pre_nms_limit,
                "rpn_bbox_std_dev": self.rpn_bbox_std_dev}
