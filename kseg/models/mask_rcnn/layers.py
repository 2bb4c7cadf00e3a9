"""Small Keras layers shared by the Mask R-CNN graph: BatchNorm, Anchors, ImageWindow."""

import keras
import numpy as np
from keras import ops

from kseg.models.normalization import BatchNorm  # noqa: F401  (Matterport-era home)
from kseg.ops.anchors import anchors_for_shape


@keras.saving.register_keras_serializable(package="kseg")
class Anchors(keras.layers.Layer):
    """Anchors for the image fed to the model: [batch, A, (y1, x1, y2, x2)], normalized
    (or in pixels with `normalized=False`, for the RPN targets).

    With a static image shape the anchors are a NumPy constant computed once; with
    a dynamic one they are generated with keras.ops from the runtime shape.
    """

    def __init__(self, scales, ratios, strides, anchor_stride=1, normalized=True, **kwargs):
        kwargs.setdefault("dtype", "float32")  # float32 under mixed precision
        super().__init__(**kwargs)
        self.scales = [float(s) for s in scales]
        self.ratios = [float(r) for r in ratios]
        self.strides = [int(s) for s in strides]
        self.anchor_stride = int(anchor_stride)
        self.normalized = bool(normalized)

    def call(self, image):
        batch = ops.shape(image)[0]
        height, width = image.shape[1], image.shape[2]
        if isinstance(height, int) and isinstance(width, int):
            anchors = ops.convert_to_tensor(anchors_for_shape(
                (height, width), self.scales, self.ratios, self.strides, self.anchor_stride,
                normalized=self.normalized), dtype="float32")
        else:
            anchors = self._dynamic_anchors(ops.shape(image)[1], ops.shape(image)[2])
        return ops.broadcast_to(anchors[None], (batch,) + tuple(ops.shape(anchors)))

    def _dynamic_anchors(self, height, width):
        levels = []
        ratios = ops.convert_to_tensor(np.array(self.ratios, np.float32))
        h_f, w_f = ops.cast(height, "float32"), ops.cast(width, "float32")
        for scale, stride in zip(self.scales, self.strides):
            fh = (height + stride - 1) // stride
            fw = (width + stride - 1) // stride
            ys = ops.cast(ops.arange(0, fh, self.anchor_stride), "float32") * stride
            xs = ops.cast(ops.arange(0, fw, self.anchor_stride), "float32") * stride
            cy, cx = ops.meshgrid(ys, xs, indexing="ij")
            hs, ws = scale / ops.sqrt(ratios), scale * ops.sqrt(ratios)
            cy = ops.reshape(cy, (-1, 1))
            cx = ops.reshape(cx, (-1, 1))
            boxes = ops.stack([cy - hs / 2, cx - ws / 2, cy + hs / 2, cx + ws / 2], axis=-1)
            levels.append(ops.reshape(boxes, (-1, 4)))
        anchors = ops.concatenate(levels, axis=0)
        if not self.normalized:
            return anchors
        scale = ops.stack([h_f - 1, w_f - 1, h_f - 1, w_f - 1])
        return (anchors - ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0])) / scale

    def compute_output_shape(self, input_shape):
        return (input_shape[0], None, 4)

    def get_config(self):
        return {**super().get_config(), "scales": self.scales, "ratios": self.ratios,
                "strides": self.strides, "anchor_stride": self.anchor_stride,
                "normalized": self.normalized}


@keras.saving.register_keras_serializable(package="kseg")
class NormalizedWindow(keras.layers.Layer):
    """The image window from image meta, normalized: [batch, (y1, x1, y2, x2)]."""

    def __init__(self, **kwargs):
        kwargs.setdefault("dtype", "float32")  # float32 under mixed precision
        super().__init__(**kwargs)

    def call(self, image_meta, image):
        h = ops.cast(ops.shape(image)[1], "float32")
        w = ops.cast(ops.shape(image)[2], "float32")
        window = image_meta[:, 7:11]
        scale = ops.stack([h - 1, w - 1, h - 1, w - 1])
        return (window - ops.convert_to_tensor([0.0, 0.0, 1.0, 1.0])) / scale

    def compute_output_shape(self, image_meta_shape, image_shape):
        return (image_meta_shape[0], 4)


@keras.saving.register_keras_serializable(package="kseg")
class FoldRoisIntoBatch(keras.layers.Wrapper):
    """Apply a layer to every ROI by folding the ROIs into the batch:
    [batch, R, ...] -> reshape to [batch * R, ...] -> layer -> back to [batch, R, ...].

    Keras 2's TimeDistributed did this reshape (kseg called this layer TimeDistributed
    until it was renamed for what it does; the old name still loads, see below). Keras 3's loops over the time axis in
    Python (one call per ROI, and BatchNormalization then sees one ROI per image at a
    time), which is slow and wrong for the heads' BatchNorm, so kseg uses this one.
    Weights live in the wrapped layer, under the wrapper's name (Matterport's layout).
    """

    def build(self, input_shape):
        if not self.layer.built:
            self.layer.build((None, *input_shape[2:]))
        self.built = True

    def call(self, inputs, training=None):
        shape = ops.shape(inputs)
        merged = ops.reshape(inputs, (-1, *inputs.shape[2:]))
        outputs = self.layer(merged, training=training)
        return ops.reshape(outputs, (shape[0], shape[1], *outputs.shape[1:]))

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape((None, *input_shape[2:]))
        return (input_shape[0], input_shape[1], *inner[1:])


@keras.saving.register_keras_serializable(package="kseg")
class TimeDistributed(FoldRoisIntoBatch):
    """The old name of `FoldRoisIntoBatch`, kept so that saved models naming it still load
    (it shadowed `keras.layers.TimeDistributed`, whose Keras 3 version loops over ROIs)."""
