"""The one ResNet of kseg (He et al., CVPR 2016), shared by FCN, U-Net and Mask R-CNN.

    c1, c2, c3, c4, c5 = resnet(x, depth=50)                          # FCN / U-Net encoders
    c1, c2, c3, c4, c5 = resnet_graph(image, "resnet101", True, train_bn=False)  # Mask R-CNN

Depths 18 and 34 stack basic blocks (two 3x3 convs without bias), 50 and 101 bottleneck
blocks (1x1, 3x3, 1x1, stride on the first 1x1 as in Caffe, Matterport and
keras.applications). A block's input is projected (1x1 conv + BN, `branch1`) when the
block changes its shape (the first block of every stage of 50/101, of stages 3..5 of 18/34).

Layer names are Matterport's, so mask_rcnn_coco.h5 and fchollet's ResNet-50 file load by name:
    conv1_pad, conv1, bn_conv1, conv1_relu (C1), pool1_pad, pool1      the stem
    res{stage}{block}_branch2a / 2b / 2c, bn{stage}{block}_branch2a ...  the main branch
    res{stage}{block}_branch1, bn{stage}{block}_branch1               the projection
    res{stage}{block}_branch2a_relu, res{stage}{block}_add, res{stage}{block}_out
with stage 2..5 and block a, b, c, ... (ResNet-101's stage 4: a..w). C2..C5 are the last
`_out` of each stage (res2c_out, res3d_out, res4f_out, res5c_out for 34 / 50). The
Keras-applications names of kseg 0.1 and of Keras' ImageNet file (conv2_block1_1_conv, ...)
map to these in `kseg.saving.resnet_names`. Mask R-CNN's tiny ResNet (`resnet_tiny`, basic
blocks on a two-conv stem) keeps its own names (stem_conv1, tiny2a_conv1, tiny2a_proj, ...).

Two styles keep each model's numbers and weights:
    FCN / U-Net (`keras_norm`, pool="padded"): kseg `BatchNormalization`, epsilon 1.001e-5,
        zero-pad 1 then 3x3/2 max pool, as keras.applications.ResNet50;
    Mask R-CNN (`matterport_norm(train_bn)`, pool="same"): `BatchNorm` (epsilon 1e-3, frozen
        unless train_bn), 3x3/2 max pool with "same" padding, as Matterport.

Shape shorthand: x [B, H, W, 3] normalized, H and W multiples of 32; w = width.
    C1 [B, H/2, W/2, 64w]; Ck [B, H/2^k, W/2^k, F_k] for k = 2..5 with
    F = (256, 512, 1024, 2048) * w for 50 / 101 and (64, 128, 256, 512) * w for 18 / 34.
"""

from keras import layers

from kseg.models.conv import Conv2D
from kseg.models.normalization import BatchNorm, BatchNormalization

KERAS_BN_EPSILON = 1.001e-5
# depth: (block kind, blocks per stage 2..5)
DEPTHS = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
          50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3))}
STAGE_FILTERS = (64, 128, 256, 512)
# A strided 1x1 conv with fewer input channels is built as subsample + 1x1 conv.


def keras_norm(name):
    """FCN / U-Net normalization: kseg's BatchNormalization as keras.applications' ResNets."""
    return BatchNormalization(axis=-1, epsilon=KERAS_BN_EPSILON, name=name)


def matterport_norm(train_bn=True):
    """Mask R-CNN normalization: `name -> BatchNorm`, frozen (inference mode) unless train_bn."""
    return lambda name: BatchNorm(name=name, frozen=not train_bn)


def scaled(filters, width):
    """`filters * width`, rounded, at least 1."""
    return max(1, int(round(filters * width)))


def block_letter(index):
    """0 -> "a", 1 -> "b", ... (Matterport's block names)."""
    return chr(97 + index)


class BlockNames:
    """Layer names of one block, unit "2a" (stage 2, block a): Matterport's scheme
    (res2a_branch2a, bn2a_branch2a, res2a_branch1) or the tiny ResNet's (tiny2a_conv1,
    tiny2a_bn1, tiny2a_proj, tiny2a_proj_bn). Roles: "2a", "2b", "2c" (main branch), "1"."""

    _TINY = {"2a": ("conv1", "bn1"), "2b": ("conv2", "bn2"), "1": ("proj", "proj_bn")}

    def __init__(self, unit, scheme="matterport"):
        self.unit, self.scheme = unit, scheme
        self.prefix = f"tiny{unit}" if scheme == "tiny" else f"res{unit}"

    def conv(self, role):
        if self.scheme == "tiny":
            return f"{self.prefix}_{self._TINY[role][0]}"
        return f"res{self.unit}_branch{role}"

    def bn(self, role):
        if self.scheme == "tiny":
            return f"{self.prefix}_{self._TINY[role][1]}"
        return f"bn{self.unit}_branch{role}"


def _conv_bn(x, filters, kernel_size, names, role, norm, strides=1, use_bias=True, relu=False,
             dilation=1):
    """Conv (padding "same" for k > 1) + norm (+ ReLU named `<conv>_relu`)."""
    name = names.conv(role)
    # kseg's Conv2D: Keras' variables, on the kernel that suits the shape (e.g. it avoids
    # oneDNN's batch-1 crash on strided 1x1 convs over few channels; kseg.models.conv)
    x = Conv2D(filters, kernel_size, strides=strides, use_bias=use_bias,
               dilation_rate=dilation, padding="same" if kernel_size > 1 else "valid",
               name=name)(x)
    x = norm(names.bn(role))(x)
    return layers.Activation("relu", name=name + "_relu")(x) if relu else x


def _merge(x, y, filters, names, strides, norm, project, use_bias):
    """relu(shortcut + y); the shortcut is x, or its 1x1 projection (`branch1`) when
    `project` (None: when the shape changes). Shortcut first: kseg 0.1's graph order."""
    if project is None:
        project = strides != 1 or x.shape[-1] != filters
    shortcut = _conv_bn(x, filters, 1, names, "1", norm, strides, use_bias) if project else x
    y = layers.Add(name=names.prefix + "_add")([shortcut, y])
    return layers.Activation("relu", name=names.prefix + "_out")(y)


def bottleneck_block(x, filters, names, strides=1, norm=keras_norm, kernel_size=3,
                     project=None, dilation=1):
    """1x1 (stride), kxk (dilation), 1x1 convs: [B, H, W, C] -> [B, H/strides, W/strides, F3].

    `filters`: F (-> F, F, 4F) or (F1, F2, F3); `names`: a `BlockNames`.
    """
    f1, f2, f3 = (filters, filters, 4 * filters) if isinstance(filters, int) else filters
    y = _conv_bn(x, f1, 1, names, "2a", norm, strides, relu=True)
    y = _conv_bn(y, f2, kernel_size, names, "2b", norm, relu=True, dilation=dilation)
    y = _conv_bn(y, f3, 1, names, "2c", norm)
    return _merge(x, y, f3, names, strides, norm, project, use_bias=True)


def basic_block(x, filters, names, strides=1, norm=keras_norm, project=None, dilation=1):
    """Two 3x3 convs (stride on the first; both dilated by `dilation`), no bias:
    [B, H, W, C] -> [B, H/s, W/s, filters]."""
    y = _conv_bn(x, filters, 3, names, "2a", norm, strides, use_bias=False, relu=True,
                 dilation=dilation)
    y = _conv_bn(y, filters, 3, names, "2b", norm, use_bias=False, dilation=dilation)
    return _merge(x, y, filters, names, strides, norm, project, use_bias=False)


def stem(x, filters=64, norm=keras_norm, pool="padded"):
    """7x7/2 conv + norm + ReLU (C1, stride 2), then 3x3/2 max pool (stride 4).

    pool: "padded" (zero-pad 1, valid pool: keras.applications) or "same" (Matterport).
    Returns (C1, pooled).
    """
    x = layers.ZeroPadding2D(3, name="conv1_pad")(x)
    x = layers.Conv2D(filters, 7, strides=2, name="conv1")(x)
    c1 = layers.Activation("relu", name="conv1_relu")(norm("bn_conv1")(x))
    if pool == "padded":
        x = layers.ZeroPadding2D(1, name="pool1_pad")(c1)
        return c1, layers.MaxPooling2D(3, strides=2, name="pool1")(x)
    if pool != "same":
        raise ValueError(f"pool must be 'padded' or 'same', got {pool!r}")
    return c1, layers.MaxPooling2D(3, strides=2, padding="same", name="pool1")(c1)


OUTPUT_STRIDES = (8, 16, 32)


def stage_dilations(counts, output_stride=32):
    """[(first block's stride, [dilation of each block])] of stages 2..5 for an output
    stride of 32 (none dilated), 16 (stage 5 dilated) or 8 (stages 4 and 5), as
    torchvision's `replace_stride_with_dilation` and DeepLab: a dilated stage keeps its
    input's resolution, its first block uses the previous dilation, the others twice it."""
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride!r}")
    plan, stride, dilation = [], 4, 1
    for stage, count in enumerate(counts, start=2):
        if stage == 2:
            plan.append((1, [1] * count))
        elif stride * 2 <= output_stride:
            stride *= 2
            plan.append((2, [dilation] * count))
        else:
            plan.append((1, [dilation] + [dilation * 2] * (count - 1)))
            dilation *= 2
    return plan


def resnet_stages(x, depth=50, width=1.0, norm=keras_norm, stage5=True, output_stride=32):
    """Stages 2..5 on the pooled stem output: [C2, C3, C4, C5] (C5 None if not stage5).

    output_stride 16 or 8 dilates stage 5 (and 4) instead of striding (`stage_dilations`):
    the same weights, C4 / C5 at stride 16 or 8.
    """
    if depth not in DEPTHS:
        raise ValueError(f"ResNet depth must be one of {sorted(DEPTHS)}, got {depth!r}")
    kind, counts = DEPTHS[depth]
    block = basic_block if kind == "basic" else bottleneck_block
    outputs = []
    plan = stage_dilations(counts, output_stride)
    for stage, (base, count) in enumerate(zip(STAGE_FILTERS, counts), start=2):
        if stage == 5 and not stage5:
            outputs.append(None)
            break
        first_stride, dilations = plan[stage - 2]
        for index in range(count):
            # (a dilated stage's first block still projects: its channels change)
            x = block(x, scaled(base, width), BlockNames(f"{stage}{block_letter(index)}"),
                      strides=first_stride if index == 0 else 1, norm=norm,
                      dilation=dilations[index])
        outputs.append(x)
    return outputs


def resnet(x, depth=50, width=1.0, norm=keras_norm, pool="padded", stage5=True,
           output_stride=32):
    """ResNet-`depth` on x [B, H, W, 3]: [C1, C2, C3, C4, C5] at strides 2, 4, 8, 16, 32
    (C4, C5 at min(16, output_stride), output_stride when dilated).

    Args:
        depth: 18, 34, 50 or 101.
        width: filter multiplier (1.0 = the paper's widths; pretrained weights need 1.0).
        norm: `name -> normalization layer` (`keras_norm` or `matterport_norm(train_bn)`).
        pool: the stem's max pool, "padded" (FCN / U-Net) or "same" (Mask R-CNN).
        stage5: build stage 5 (else C5 is None).
        output_stride: 32, or 16 / 8 with dilated stages (`stage_dilations`).
    """
    c1, x = stem(x, scaled(64, width), norm, pool)
    return [c1, *resnet_stages(x, depth, width, norm, stage5, output_stride)]


def resnet_graph(input_image, architecture, stage5=True, train_bn=True, filters=64):
    """Matterport's `resnet_graph`: [C1, C2, C3, C4, C5] of "resnet50" / "resnet101".

    C1 is the stem's max-pool output (stride 4) as in Matterport; `filters` scales the
    widths (64 = the paper's).
    """
    depths = {"resnet50": 50, "resnet101": 101}
    if architecture not in depths:
        raise ValueError(f"architecture must be resnet50 or resnet101, got {architecture!r}")
    norm = matterport_norm(train_bn)
    _, pooled = stem(input_image, filters, norm, pool="same")
    return [pooled, *resnet_stages(pooled, depths[architecture], filters / 64, norm, stage5)]


def identity_block(input_tensor, kernel_size, filters, stage, block, use_bias=True,
                   train_bn=True):
    """Matterport's identity block: bottleneck (f1, f2, f3) without projection."""
    del use_bias  # Matterport's convs always have a bias here
    return bottleneck_block(input_tensor, tuple(filters), BlockNames(f"{stage}{block}"),
                            norm=matterport_norm(train_bn), kernel_size=kernel_size,
                            project=False)


def conv_block(input_tensor, kernel_size, filters, stage, block, strides=(2, 2),
               use_bias=True, train_bn=True):
    """Matterport's conv block: bottleneck (f1, f2, f3) with a projection shortcut."""
    del use_bias
    return bottleneck_block(input_tensor, tuple(filters), BlockNames(f"{stage}{block}"),
                            strides=strides, norm=matterport_norm(train_bn),
                            kernel_size=kernel_size, project=True)


def resnet_tiny_graph(image, train_bn=True, filters=32, blocks=(1, 1, 1, 1)):
    """Mask R-CNN's small ResNet of basic blocks for CPU training from scratch.

    Stem: 3x3/2 conv (C1, stride 2) + 3x3/2 conv; widths filters * (1, 2, 4, 8) at
    strides 4, 8, 16, 32. Returns [C1, C2, C3, C4, C5].
    """
    norm = matterport_norm(train_bn)
    x = layers.Conv2D(filters // 2, 3, strides=2, padding="same", use_bias=False,
                      name="stem_conv1")(image)
    c1 = x = layers.Activation("relu", name="stem_relu1")(norm("stem_bn1")(x))
    x = layers.Conv2D(filters, 3, strides=2, padding="same", use_bias=False,
                      name="stem_conv2")(x)
    x = layers.Activation("relu", name="stem_relu2")(norm("stem_bn2")(x))
    outputs = [c1]
    for stage, count in enumerate(blocks):
        for index in range(count):
            strides = 2 if index == 0 and stage > 0 else 1
            x = basic_block(x, filters * 2 ** stage,
                            BlockNames(f"{stage + 2}{block_letter(index)}", "tiny"),
                            strides=strides, norm=norm)
        outputs.append(x)
    return outputs


def encoder(depth):
    """The FCN / U-Net encoder `f(x, width=1.0) -> C5` of ResNet-`depth` (keras style)."""
    def build(x, width=1.0, output_stride=32):
        return resnet(x, depth, width, output_stride=output_stride)[-1]

    build.__name__ = build.__qualname__ = f"resnet{depth}"
    build.__doc__ = f"ResNet-{depth} encoder: x [B, H, W, 3] -> C5 [B, H/32, W/32, F5]."
    return build


def stage_outputs(depth):
    """Names of C1..C5 of ResNet-`depth` (C1 conv1_relu, Ck the last block's `_out`)."""
    counts = DEPTHS[depth][1]
    return ("conv1_relu", *(f"res{stage}{block_letter(count - 1)}_out"
                            for stage, count in enumerate(counts, start=2)))


resnet18, resnet34, resnet50, resnet101 = (encoder(d) for d in (18, 34, 50, 101))
