"""Low-level Mask R-CNN tensor ops (``keras.ops``; TF fast paths optional) and anchors.

Boxes are ``(y1, x1, y2, x2)``. See each module for its shape shorthand.
``anchors`` generates the pyramid anchors in NumPy (used by the data pipeline and the
models alike). May import: NumPy, Keras, TensorFlow (``_tf_fast`` only), nothing of kseg
but ``kseg.ops`` itself.
Set ``KSEG_DISABLE_FAST_OPS=1`` to force the ``keras.ops`` fallbacks on the
TensorFlow backend.
"""

from kseg.ops.boxes import (
    box_area,
    clip_boxes,
    compute_iou,
    decode_box_deltas,
    denormalize_boxes,
    encode_box_deltas,
    normalize_boxes,
)
from kseg.ops.nms import non_max_suppression
from kseg.ops.normalization import batch_norm
from kseg.ops.roi_align import (
    PyramidROIAlign,
    crop_and_resize,
    roi_align,
    roi_level,
)
from kseg.ops.rows import leading_rows, pad_rows

__all__ = [
    "PyramidROIAlign",
    "batch_norm",
    "box_area",
    "clip_boxes",
    "compute_iou",
    "crop_and_resize",
    "decode_box_deltas",
    "denormalize_boxes",
    "encode_box_deltas",
    "leading_rows",
    "non_max_suppression",
    "normalize_boxes",
    "pad_rows",
    "roi_align",
    "roi_level",
]
