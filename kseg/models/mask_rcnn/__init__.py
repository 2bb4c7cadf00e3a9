"""Mask R-CNN (He et al. 2017) in Keras 3, Matterport's layer names and API."""

from kseg.models.mask_rcnn.config import MaskRCNNConfig

__all__ = ["MaskRCNN", "MaskRCNNConfig"]


def __getattr__(name):
    if name == "MaskRCNN":
        from kseg.models.mask_rcnn.model import MaskRCNN

        return MaskRCNN
    raise AttributeError(name)
