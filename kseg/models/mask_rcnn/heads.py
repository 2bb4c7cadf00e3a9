"""Box/class head and mask head over pyramid RoIAlign features (Matterport names).

Shape shorthand:
    R: ROIs per image, C: NUM_CLASSES
    rois [batch, R, (y1, x1, y2, x2)] normalized
    -> mrcnn_class_logits [batch, R, C], mrcnn_class [batch, R, C],
       mrcnn_bbox [batch, R, C, (dy, dx, log(dh), log(dw))]
    -> mrcnn_mask [batch, R, MASK_SHAPE[0], MASK_SHAPE[1], C] (sigmoid; the training
       model's `mrcnn_mask_true_logits` [batch, R, MASK_SHAPE[0], MASK_SHAPE[1]] are the
       logits of each ROI's target class only: the same `mrcnn_mask` layer and weights)
"""

import keras
from keras import layers, ops

from kseg.models.conv import Conv2D
from kseg.models.mask_rcnn.layers import BatchNorm, FoldRoisIntoBatch
from kseg.ops import PyramidROIAlign, leading_rows, pad_rows


@keras.saving.register_keras_serializable(package="kseg")
class SqueezeSpatial(keras.layers.Layer):
    """[batch, R, 1, 1, D] -> [batch, R, D] (Matterport's `pool_squeeze` Lambda)."""

    def call(self, x):
        return ops.squeeze(x, axis=(2, 3))

    def compute_output_shape(self, shape):
        return (shape[0], shape[1], shape[4])


@keras.saving.register_keras_serializable(package="kseg")
class ClassBoxes(keras.layers.Layer):
    """[batch, R, C * 4] -> [batch, R, C, 4] (Matterport's `mrcnn_bbox` Reshape)."""

    def __init__(self, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.num_classes = int(num_classes)

    def call(self, x):
        return ops.reshape(x, (ops.shape(x)[0], ops.shape(x)[1], self.num_classes, 4))

    def compute_output_shape(self, shape):
        return (shape[0], shape[1], self.num_classes, 4)

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes}


@keras.saving.register_keras_serializable(package="kseg")
class LeadingRows(keras.layers.Layer):
    """[batch, N, ...] -> the first max(count) rows (TF fast path) or all N (fallback).

    Call with `[rows, count]`, `count` [batch] int: rows in use come first. See
    `kseg.ops.rows`: the mask head then runs on the positive ROIs / kept detections only.
    """

    def call(self, inputs):
        rows, count = inputs
        return leading_rows(rows, count)

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], None, *input_shape[0][2:])


@keras.saving.register_keras_serializable(package="kseg")
class PadRows(keras.layers.Layer):
    """[batch, n, ...] -> [batch, total, ...] zero-padded (undoes `LeadingRows`)."""

    def __init__(self, total, **kwargs):
        super().__init__(**kwargs)
        self.total = int(total)

    def call(self, x):
        return pad_rows(x, self.total)

    def compute_output_shape(self, shape):
        return (shape[0], self.total, *shape[2:])

    def get_config(self):
        return {**super().get_config(), "total": self.total}


@keras.saving.register_keras_serializable(package="kseg")
class CountRows(keras.layers.Layer):
    """Rows in use per image: `[batch]` int32 count of `ids[:, :limit] > 0`.

    `ids` is [batch, N] (target class ids) or [batch, N, 6] detections (class id in column 4).
    """

    def __init__(self, limit=None, **kwargs):
        super().__init__(**kwargs)
        self.limit = None if limit is None else int(limit)

    def call(self, ids):
        ids = ids[..., 4] if len(ids.shape) == 3 else ids
        ids = ids if self.limit is None else ids[:, :self.limit]
        return ops.sum(ops.cast(ids > 0, "int32"), axis=1)

    def compute_output_shape(self, shape):
        return (shape[0],)

    def get_config(self):
        return {**super().get_config(), "limit": self.limit}


@keras.saving.register_keras_serializable(package="kseg")
class TrueClassMaskLogits(FoldRoisIntoBatch):
    """The training model's `mrcnn_mask` layer: the mask head's last 1x1 convolution
    (the wrapped `Conv2D(C, 1)`, the inference model's weights) evaluated on each ROI's
    target-class channel only, without the sigmoid.

    Call with `[features, class_ids]`: features [batch, R, h, w, F], class_ids
    [batch, T >= R] int (row r's target class; 0 on negative and padding rows, which the
    mask loss ignores) -> logits [batch, R, h, w]. The same numbers as the full
    convolution's channel `class_ids[:, r]` (a sum over F per pixel), at 1/C of its work
    and without the gather over [batch, R, h, w, C] logits in the loss's gradient: the
    512-ROI training step at 512^2 with 81 classes saves ~40 ms (bench/RESULTS.md).
    """

    def build(self, input_shape):
        super().build(input_shape[0])

    def call(self, inputs, training=None):
        features, class_ids = inputs
        conv = self.layer
        rows = ops.shape(features)[1]
        ids = ops.cast(class_ids[:, :rows], "int32")
        filters = conv.kernel.shape[-2]
        kernel = ops.transpose(ops.reshape(conv.kernel, (filters, conv.filters)))  # [C, F]
        weights = ops.take(kernel, ids, axis=0)  # [batch, R, F]
        features = ops.cast(features, weights.dtype)
        logits = ops.einsum("brhwf,brf->brhw", features, weights)
        if conv.use_bias:
            logits = logits + ops.take(conv.bias, ids, axis=0)[:, :, None, None]
        return logits

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0][:4])


def _td(layer, name):
    dtype = "float32" if layer.dtype_policy.name == "float32" else None
    return FoldRoisIntoBatch(layer, name=name, dtype=dtype)


def _roi_align(rois, feature_maps, image_meta, pool_size, name):
    """PyramidROIAlign whose level rule reads the image size from `image_meta` at run time
    (the input image tensor or Matterport's image_meta), or from a fixed (H, W) list."""
    if isinstance(image_meta, (list, tuple)):
        return PyramidROIAlign([pool_size, pool_size], image_meta, name=name,
                               dtype="float32")([rois, *feature_maps])
    return PyramidROIAlign([pool_size, pool_size], name=name,
                           dtype="float32")([rois, image_meta, *feature_maps])


def fpn_classifier_graph(rois, feature_maps, image_meta, pool_size, num_classes,
                         train_bn=True, fc_layers_size=1024):
    """Class logits, probabilities and per-class box deltas for each ROI.

    `image_meta`: the input image [batch, H, W, 3] (or Matterport's image_meta), whose
    run-time size sets each ROI's pyramid level.
    """
    x = _roi_align(rois, feature_maps, image_meta, pool_size, "roi_align_classifier")
    x = _td(Conv2D(fc_layers_size, pool_size, padding="valid"), "mrcnn_class_conv1")(x)
    x = _td(BatchNorm(frozen=not train_bn), "mrcnn_class_bn1")(x)
    x = layers.Activation("relu")(x)
    x = _td(Conv2D(fc_layers_size, 1), "mrcnn_class_conv2")(x)
    x = _td(BatchNorm(frozen=not train_bn), "mrcnn_class_bn2")(x)
    x = layers.Activation("relu")(x)
    shared = SqueezeSpatial(name="pool_squeeze")(x)
    # The last layers compute in float32 (mixed precision: logits, softmax and deltas
    # keep their range and the losses stay finite).
    logits = _td(layers.Dense(num_classes, dtype="float32"), "mrcnn_class_logits")(shared)
    probs = _td(layers.Activation("softmax", dtype="float32"), "mrcnn_class")(logits)
    x = _td(layers.Dense(num_classes * 4, activation="linear", dtype="float32"),
            "mrcnn_bbox_fc")(shared)
    bbox = ClassBoxes(num_classes, name="mrcnn_bbox", dtype="float32")(x)
    return logits, probs, bbox


def fpn_mask_graph(rois, feature_maps, image_meta, pool_size, num_classes,
                   train_bn=True, filters=256, row_count=None, class_ids=None):
    """Per-class sigmoid masks [batch, R, 2 * pool_size, 2 * pool_size, C] for each ROI.

    With `class_ids` ([batch, T >= R] int, the training model's target class ids) the
    "mrcnn_mask" layer (same weights, `TrueClassMaskLogits`) returns the logits of each
    ROI's target class only, [batch, R, 2 * pool_size, 2 * pool_size]: the training
    model's mask loss is computed from them (stable where probabilities saturate).

    `image_meta`: the input image (or Matterport's image_meta), whose run-time size sets
    each ROI's pyramid level. With `row_count` ([batch] int, the ROIs in use come first)
    the head runs on the first max(row_count) ROIs only where the backend allows (see
    `LeadingRows`); the other rows of the output are zeros there.
    """
    total = rois.shape[1]
    if row_count is not None:
        rois = LeadingRows(name="mask_rows_in_use", dtype="float32")([rois, row_count])
    x = _roi_align(rois, feature_maps, image_meta, pool_size, "roi_align_mask")
    for i in range(1, 5):
        x = _td(layers.Conv2D(filters, 3, padding="same"), f"mrcnn_mask_conv{i}")(x)
        x = _td(BatchNorm(frozen=not train_bn), f"mrcnn_mask_bn{i}")(x)
        x = layers.Activation("relu")(x)
    x = _td(layers.Conv2DTranspose(filters, 2, strides=2, activation="relu"),
            "mrcnn_mask_deconv")(x)
    # float32 under mixed precision: logits and probabilities keep their range
    if class_ids is None:
        x = _td(layers.Conv2D(num_classes, 1, activation="sigmoid", dtype="float32"),
                "mrcnn_mask")(x)
    else:
        x = TrueClassMaskLogits(layers.Conv2D(num_classes, 1, dtype="float32"),
                                name="mrcnn_mask", dtype="float32")([x, class_ids])
    return x if row_count is None else PadRows(total, name="mask_rows_padded",
                                               dtype="float32")(x)
