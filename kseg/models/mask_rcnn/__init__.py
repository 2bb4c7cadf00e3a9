"""Mask R-CNN (He et al. 2017) in Keras 3, Matterport's layer names and API.

One stage a module: backbones, fpn, rpn, rpn_targets, proposals, targets, heads, detection,
losses (rpn_targets_numpy is the NumPy reference of rpn_targets);
graph.py wires them, model.py is `MaskRCNN` (train, detect, load_weights), fit.py and
training.py train, checkpoints.py writes them, intermediates.py reads tensors by name.

May import: kseg.config, kseg.ops, kseg.data, kseg.saving, kseg.weights, kseg.utils."""

from kseg.models.mask_rcnn.config import MaskRCNNConfig

__all__ = ["MaskRCNN", "MaskRCNNConfig"]


def __getattr__(name):
    if name == "MaskRCNN":
        from kseg.models.mask_rcnn.model import MaskRCNN

        return MaskRCNN
    raise AttributeError(name)
