"""The shapes config: Mask R-CNN sized to train from scratch on 2 CPU cores in ~10 minutes.

It lives in the package (`kseg.models.mask_rcnn.presets`) so that `kseg train maskrcnn
--dataset shapes` can use it; this module re-exports it for the sample.
"""

from kseg.models.mask_rcnn.presets import ShapesConfig

__all__ = ["ShapesConfig"]
