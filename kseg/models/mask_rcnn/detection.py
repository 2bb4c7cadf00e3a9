"""Detection layer: refine ROIs with the box head, per-class NMS, padded output (static).

Per-class NMS is done as one NMS over class-offset boxes (boxes of different
classes are moved apart so they never overlap), which keeps shapes static.

Shape shorthand:
    rois [batch, R, 4], probs [batch, R, C], deltas [batch, R, C, 4], window [batch, 4]
    -> detections [batch, D, (y1, x1, y2, x2, class_id, score)] normalized, zero padded,
       D = max_instances.
"""

import keras
import numpy as np
from keras import ops

from kseg.models.mask_rcnn.proposals import gather_rows
from kseg.ops import clip_boxes, decode_box_deltas, non_max_suppression


@keras.saving.register_keras_serializable(package="kseg")
class DetectionLayer(keras.layers.Layer):
    """Final detections from classified, refined ROIs.

    Args:
        max_instances: detections kept per image (DETECTION_MAX_INSTANCES).
        min_confidence: minimum class probability (DETECTION_MIN_CONFIDENCE).
        nms_threshold: per-class NMS IoU threshold (DETECTION_NMS_THRESHOLD).
        bbox_std_dev: box delta scales (BBOX_STD_DEV).
    """

    def __init__(self, max_instances, min_confidence, nms_threshold,
                 bbox_std_dev=(0.1, 0.1, 0.2, 0.2), **kwargs):
        kwargs.setdefault("dtype", "float32")  # box decoding and NMS in float32 (mixed precision)
        super().__init__(**kwargs)
        self.max_instances = int(max_instances)
        self.min_confidence = float(min_confidence)
        self.nms_threshold = float(nms_threshold)
        self.bbox_std_dev = [float(v) for v in np.ravel(bbox_std_dev)]

    def call(self, rois, probs, deltas, window):
        # top_k rather than argmax: the TF argmax lowers to Bitcast ops ONNX lacks.
        scores, class_ids = ops.top_k(probs, 1)
        scores, class_ids = scores[..., 0], class_ids[..., 0]  # [batch, R]
        class_deltas = ops.take_along_axis(deltas, class_ids[..., None, None], axis=2)[:, :, 0]
        boxes = decode_box_deltas(rois, class_deltas, self.bbox_std_dev)
        boxes = clip_boxes(boxes, window)
        valid_roi = ops.sum(ops.abs(rois), axis=-1) > 0
        area_ok = (boxes[..., 2] > boxes[..., 0]) & (boxes[..., 3] > boxes[..., 1])
        keep = (class_ids > 0) & (scores >= self.min_confidence) & valid_roi & area_ok
        scores = ops.where(keep, scores, -1.0)
        offset = ops.cast(class_ids, boxes.dtype)[..., None] * 2.0
        picks, valid = non_max_suppression(boxes + offset, scores, self.max_instances,
                                           self.nms_threshold, score_threshold=0.0)
        detections = ops.concatenate([
            gather_rows(boxes, picks),
            ops.cast(gather_rows(class_ids[..., None], picks), boxes.dtype),
            gather_rows(scores[..., None], picks)], axis=-1)
        is_valid = ops.arange(self.max_instances)[None, :] < valid[:, None]
        return ops.where(is_valid[..., None], detections, 0.0)

    def compute_output_shape(self, rois_shape, probs_shape, deltas_shape, window_shape):
        return (rois_shape[0], self.max_instances, 6)

    def get_config(self):
        return {**super().get_config(), "max_instances": self.max_instances,
                "min_confidence": self.min_confidence, "nms_threshold": self.nms_threshold,
                "bbox_std_dev": self.bbox_std_dev}
