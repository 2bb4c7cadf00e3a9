"""Mask R-CNN's backbone: C2..C5 of the configured BACKBONE, checked against its strides.

The backbones themselves live in `kseg.models.backbones`: one registry for every kseg
model (`BACKBONES`, `register_backbone`, `get_backbone`, re-exported here) and the one
ResNet (`resnet_graph`, `identity_block`, `conv_block`, `resnet_tiny_graph`, Matterport's
layer names `conv1`, `bn_conv1`, `res2a_branch2a`, ... so `mask_rcnn_coco.h5` loads by
name). A backbone is `f(image, train_bn, filters) -> [C1, C2, C3, C4, C5]`; C2..C5 have
strides BACKBONE_STRIDES[:4] (default 4, 8, 16, 32; P6 is P5 subsampled x2). Register your
own with `register_backbone(name, fn, strides=(4, 8, 16, 32, 64))`; a config whose
BACKBONE_STRIDES differ from the registered ones is refused with the value to set.
resnet50 / resnet101 are Matterport-sized: BACKBONE_FILTERS sizes the tiny ones.
"""

from kseg.config import ConfigError
from kseg.models.backbones.registry import BACKBONES, get_backbone, register_backbone
from kseg.models.backbones.resnet import (
    conv_block,
    identity_block,
    resnet_graph,
    resnet_tiny_graph,
)

__all__ = ["BACKBONES", "build_backbone", "conv_block", "get_backbone", "identity_block",
           "register_backbone", "resnet_graph", "resnet_tiny_graph"]


def build_backbone(image, config):
    """[C2, C3, C4, C5] for the config's BACKBONE, plus the pyramid strides.

    The pyramid and the anchors follow BACKBONE_STRIDES: a backbone registered with
    other strides, or whose outputs do not have them, is a `ConfigError` saying what to set.
    """
    fn, strides = get_backbone(config.BACKBONE)
    expected = tuple(int(s) for s in config.BACKBONE_STRIDES)
    if strides is not None and tuple(strides) != expected:
        raise ConfigError(
            f"MaskRCNNConfig.BACKBONE_STRIDES = {list(expected)}, but backbone "
            f"{config.BACKBONE!r} was registered with strides {list(strides)}: set "
            f"BACKBONE_STRIDES = {list(strides)} (the anchors follow BACKBONE_STRIDES).")
    c1, c2, c3, c4, c5 = fn(image, config.TRAIN_BN is not False, config.BACKBONE_FILTERS)
    _check_strides(config, image, [c2, c3, c4, c5], expected)
    return [c2, c3, c4, c5], expected


def _check_strides(config, image, features, strides):
    """ConfigError unless C2..C5 have sizes ceil(image / stride) for strides[:4]."""
    height, width = image.shape[1], image.shape[2]
    if height is None or width is None:
        return
    sizes = [tuple(f.shape[1:3]) for f in features]
    wanted = [(-(-height // s), -(-width // s)) for s in strides[:4]]
    if sizes != wanted:
        actual = [height // h if h else None for h, _ in sizes]
        raise ConfigError(
            f"backbone {config.BACKBONE!r} gives C2..C5 of sizes {sizes} for a {height}x"
            f"{width} image (strides {actual}), but MaskRCNNConfig.BACKBONE_STRIDES = "
            f"{list(strides)} expects {wanted}: set BACKBONE_STRIDES to the backbone's "
            f"strides (the fifth level is the fourth's x2).")

