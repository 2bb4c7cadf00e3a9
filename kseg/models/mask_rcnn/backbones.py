"""Backbones for Mask R-CNN: Matterport's ResNet50/101 and a registry for others.

A backbone is a function `f(image, train_bn, filters) -> [C1, C2, C3, C4, C5]`; C2..C5
have strides BACKBONE_STRIDES[:4] (default 4, 8, 16, 32; P6 is P5 subsampled x2).
Register your own with `register_backbone(name, fn, strides=(4, 8, 16, 32, 64))`; a
config whose BACKBONE_STRIDES differ from the registered ones is refused with the value
to set. resnet50 / resnet101 are Matterport-sized: BACKBONE_FILTERS sizes the tiny ones.

Layer names follow Matterport (`conv1`, `bn_conv1`, `res2a_branch2a`, ...) so that
`mask_rcnn_coco.h5` loads by name.
"""

from keras import layers

from kseg.config import ConfigError
from kseg.models.mask_rcnn.layers import BatchNorm

BACKBONES = {}


def register_backbone(name, fn, strides=(4, 8, 16, 32, 64)):
    """Make `BACKBONE = name` build `fn(image, train_bn, filters)`."""
    BACKBONES[name] = (fn, tuple(strides))
    return fn


def get_backbone(name):
    """(fn, strides) for a registered name or a callable BACKBONE."""
    if callable(name):
        return name, None
    if name not in BACKBONES:
        raise ValueError(
            f"MaskRCNNConfig.BACKBONE = {name!r} is unknown; expected one of "
            f"{sorted(BACKBONES)} or a callable f(image, train_bn, filters) -> [C1..C5]."
        )
    return BACKBONES[name]


def _bn(name, train_bn):
    return BatchNorm(name=name, frozen=not train_bn)


def identity_block(x, kernel_size, filters, stage, block, train_bn=True):
    """Bottleneck block without a projection shortcut (Matterport names)."""
    f1, f2, f3 = filters
    base = f"res{stage}{block}_branch"
    bn_base = f"bn{stage}{block}_branch"
    y = layers.Conv2D(f1, 1, name=base + "2a")(x)
    y = layers.Activation("relu")(_bn(bn_base + "2a", train_bn)(y))
    y = layers.Conv2D(f2, kernel_size, padding="same", name=base + "2b")(y)
    y = layers.Activation("relu")(_bn(bn_base + "2b", train_bn)(y))
    y = layers.Conv2D(f3, 1, name=base + "2c")(y)
    y = _bn(bn_base + "2c", train_bn)(y)
    y = layers.Add()([y, x])
    return layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def conv_block(x, kernel_size, filters, stage, block, strides=2, train_bn=True):
    """Bottleneck block with a projection shortcut; stride on branch2a/branch1."""
    f1, f2, f3 = filters
    base = f"res{stage}{block}_branch"
    bn_base = f"bn{stage}{block}_branch"
    y = layers.Conv2D(f1, 1, strides=strides, name=base + "2a")(x)
    y = layers.Activation("relu")(_bn(bn_base + "2a", train_bn)(y))
    y = layers.Conv2D(f2, kernel_size, padding="same", name=base + "2b")(y)
    y = layers.Activation("relu")(_bn(bn_base + "2b", train_bn)(y))
    y = layers.Conv2D(f3, 1, name=base + "2c")(y)
    y = _bn(bn_base + "2c", train_bn)(y)
    shortcut = layers.Conv2D(f3, 1, strides=strides, name=base + "1")(x)
    shortcut = _bn(bn_base + "1", train_bn)(shortcut)
    y = layers.Add()([y, shortcut])
    return layers.Activation("relu", name=f"res{stage}{block}_out")(y)


def resnet_graph(image, architecture, stage5=True, train_bn=True, filters=64):
    """Matterport's ResNet: returns [C1, C2, C3, C4, C5]. `filters` scales widths (64 = paper)."""
    if architecture not in ("resnet50", "resnet101"):
        raise ValueError(f"architecture must be resnet50 or resnet101, got {architecture!r}")
    f = filters
    x = layers.ZeroPadding2D((3, 3))(image)
    x = layers.Conv2D(f, 7, strides=2, name="conv1")(x)
    x = layers.Activation("relu")(_bn("bn_conv1", train_bn)(x))
    c1 = x = layers.MaxPooling2D(3, strides=2, padding="same")(x)
    x = conv_block(x, 3, [f, f, 4 * f], stage=2, block="a", strides=1, train_bn=train_bn)
    x = identity_block(x, 3, [f, f, 4 * f], stage=2, block="b", train_bn=train_bn)
    c2 = x = identity_block(x, 3, [f, f, 4 * f], stage=2, block="c", train_bn=train_bn)
    x = conv_block(x, 3, [2 * f, 2 * f, 8 * f], stage=3, block="a", train_bn=train_bn)
    for block in "bcd":
        x = identity_block(x, 3, [2 * f, 2 * f, 8 * f], stage=3, block=block, train_bn=train_bn)
    c3 = x
    x = conv_block(x, 3, [4 * f, 4 * f, 16 * f], stage=4, block="a", train_bn=train_bn)
    for i in range({"resnet50": 5, "resnet101": 22}[architecture]):
        x = identity_block(x, 3, [4 * f, 4 * f, 16 * f], stage=4, block=chr(98 + i),
                           train_bn=train_bn)
    c4 = x
    c5 = None
    if stage5:
        x = conv_block(x, 3, [8 * f, 8 * f, 32 * f], stage=5, block="a", train_bn=train_bn)
        x = identity_block(x, 3, [8 * f, 8 * f, 32 * f], stage=5, block="b", train_bn=train_bn)
        c5 = identity_block(x, 3, [8 * f, 8 * f, 32 * f], stage=5, block="c", train_bn=train_bn)
    return [c1, c2, c3, c4, c5]


def basic_block(x, filters, name, strides=1, train_bn=True):
    """ResNet basic block (two 3x3 convs), projection shortcut when shape changes."""
    y = layers.Conv2D(filters, 3, strides=strides, padding="same", use_bias=False,
                      name=name + "_conv1")(x)
    y = layers.Activation("relu")(_bn(name + "_bn1", train_bn)(y))
    y = layers.Conv2D(filters, 3, padding="same", use_bias=False, name=name + "_conv2")(y)
    y = _bn(name + "_bn2", train_bn)(y)
    if strides != 1 or x.shape[-1] != filters:
        if strides != 1:
            # Subsample, then a 1x1 conv: the same numbers and weights as a strided 1x1
            # conv, whose filter gradient corrupts the heap in TF 2.21's oneDNN at batch 1
            # with under 16 input channels (bench/onednn_conv1x1_stride2.py).
            x = layers.MaxPooling2D(1, strides=strides, name=name + "_proj_subsample")(x)
        x = layers.Conv2D(filters, 1, use_bias=False, name=name + "_proj")(x)
        x = _bn(name + "_proj_bn", train_bn)(x)
    return layers.Activation("relu", name=name + "_out")(layers.Add()([y, x]))


def resnet_tiny_graph(image, train_bn=True, filters=32, blocks=(1, 1, 1, 1)):
    """A small ResNet of basic blocks for CPU training from scratch.

    Widths filters * (1, 2, 4, 8) at strides 4, 8, 16, 32; stem: 3x3/2 conv + 3x3/2 conv.
    """
    x = layers.Conv2D(filters // 2, 3, strides=2, padding="same", use_bias=False,
                      name="stem_conv1")(image)
    c1 = x = layers.Activation("relu")(_bn("stem_bn1", train_bn)(x))
    x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False,
                      name="stem_conv2")(x)
    x = layers.Activation("relu")(_bn("stem_bn2", train_bn)(x))
    outputs = [c1]
    for stage, n_blocks in enumerate(blocks):
        width = filters * 2 ** stage
        for b in range(n_blocks):
            strides = 2 if (b == 0 and stage > 0) else 1
            x = basic_block(x, width, f"tiny{stage + 2}{chr(97 + b)}", strides, train_bn)
        outputs.append(x)
    return outputs


# Matterport-sized whatever BACKBONE_FILTERS says (it sizes the tiny backbones only), so
# mask_rcnn_coco.h5 and the ImageNet file always fit.
register_backbone("resnet50", lambda image, train_bn, filters=64:
                  resnet_graph(image, "resnet50", True, train_bn))
register_backbone("resnet101", lambda image, train_bn, filters=64:
                  resnet_graph(image, "resnet101", True, train_bn))
register_backbone("resnet_tiny", lambda image, train_bn, filters=32:
                  resnet_tiny_graph(image, train_bn, filters))
register_backbone("resnet_tiny2", lambda image, train_bn, filters=32:
                  resnet_tiny_graph(image, train_bn, filters, blocks=(2, 2, 2, 2)))


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

