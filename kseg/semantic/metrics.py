"""Keras metrics for semantic segmentation, all from one confusion-matrix state.

    model.compile(..., metrics=[MeanIoU(2, activation="sigmoid"), PixelAccuracy(2, ...)])

The state is a [K, K] confusion matrix (rows = ground truth, columns = prediction)
accumulated over the epoch, so IoU / Dice are dataset-level values, not batch means.
Classes that appear neither in ground truth nor in predictions are left out of means.

Shape shorthand:
    y_true [B, H, W] (or [B, H, W, 1]) int class indices (`ignore_index` pixels skipped).
    y_pred [B, H, W, K] probabilities or logits (argmax), or [B, H, W, 1] for a binary
        model: class 1 where sigmoid >= threshold ("sigmoid") or logit >= 0 ("logits").
"""

import keras
from keras import ops


def predicted_classes(y_pred, activation="softmax", threshold=0.5):
    """Class indices [B, H, W] int32 from model outputs (see module docstring)."""
    if y_pred.shape[-1] == 1:
        cut = 0.0 if activation == "logits" else threshold
        return ops.cast(y_pred[..., 0] >= cut, "int32")
    return ops.cast(ops.argmax(y_pred, axis=-1), "int32")


def confusion_matrix(y_true, y_pred_classes, num_classes, ignore_index=None):
    """[K, K] float32 confusion matrix of int class maps of equal shape: a segment sum
    over cells gt * K + prediction (ignored and out-of-range gt pixels weigh 0). Not
    `ops.bincount`: its output length depends on values, which JAX cannot jit."""
    y_true = ops.reshape(ops.cast(y_true, "int32"), (-1,))
    y_pred_classes = ops.reshape(ops.cast(y_pred_classes, "int32"), (-1,))
    valid = ops.logical_and(y_true >= 0, y_true < num_classes)
    if ignore_index is not None:
        valid = ops.logical_and(valid, ops.not_equal(y_true, ignore_index))
    cells = ops.where(valid, y_true * num_classes + y_pred_classes, 0)
    counts = ops.segment_sum(ops.cast(valid, "float32"), cells,
                             num_segments=num_classes * num_classes)
    return ops.reshape(counts, (num_classes, num_classes))


class _ConfusionMetric(keras.metrics.Metric):
    """Base: accumulates a [K, K] confusion matrix; subclasses define `result`."""

    def __init__(self, num_classes, activation="softmax", ignore_index=None, threshold=0.5,
                 name=None, dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_classes = int(num_classes)
        self.activation = activation
        self.ignore_index = ignore_index
        self.threshold = float(threshold)
        self.matrix = self.add_variable(shape=(self.num_classes, self.num_classes),
                                        initializer="zeros", dtype="float32", name="matrix")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if len(y_true.shape) == 4:
            y_true = ops.squeeze(y_true, axis=-1)
        classes = predicted_classes(y_pred, self.activation, self.threshold)
        self.matrix.assign_add(confusion_matrix(y_true, classes, self.num_classes,
                                                self.ignore_index))

    def reset_state(self):
        self.matrix.assign(ops.zeros((self.num_classes, self.num_classes), dtype="float32"))

    def _counts(self):
        """(true positives, ground-truth totals, predicted totals), each [K]."""
        matrix = ops.convert_to_tensor(self.matrix)
        return ops.diagonal(matrix), ops.sum(matrix, axis=1), ops.sum(matrix, axis=0)

    def _select(self, per_class, present, class_id):
        """The score of `class_id`, or the mean over the present classes."""
        if class_id is not None:
            return per_class[class_id]
        present = ops.cast(present, "float32")
        return ops.sum(per_class * present) / ops.maximum(ops.sum(present), 1.0)

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, activation=self.activation,
                      ignore_index=self.ignore_index, threshold=self.threshold)
        return config


@keras.saving.register_keras_serializable(package="kseg")
class MeanIoU(_ConfusionMetric):
    """Intersection over union TP / (TP + FP + FN): the mean over present classes, or of
    one class with `class_id` (e.g. `MeanIoU(2, class_id=1, name="road_iou")`)."""

    def __init__(self, num_classes, class_id=None, name=None, **kwargs):
        super().__init__(num_classes, name=name or _default_name("iou", class_id), **kwargs)
        self.class_id = class_id

    def result(self):
        tp, gt, pred = self._counts()
        union = gt + pred - tp
        return self._select(tp / ops.maximum(union, 1e-12), union > 0, self.class_id)

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


@keras.saving.register_keras_serializable(package="kseg")
class DiceScore(_ConfusionMetric):
    """Dice / F1 score 2 TP / (2 TP + FP + FN): the mean over present classes, or of
    one class with `class_id`."""

    def __init__(self, num_classes, class_id=None, name=None, **kwargs):
        super().__init__(num_classes, name=name or _default_name("dice", class_id), **kwargs)
        self.class_id = class_id

    def result(self):
        tp, gt, pred = self._counts()
        total = gt + pred
        return self._select(2.0 * tp / ops.maximum(total, 1e-12), total > 0, self.class_id)

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}


@keras.saving.register_keras_serializable(package="kseg")
class PixelAccuracy(_ConfusionMetric):
    """Correct pixels / counted pixels."""

    def __init__(self, num_classes, name="pixel_accuracy", **kwargs):
        super().__init__(num_classes, name=name, **kwargs)

    def result(self):
        tp, gt, _ = self._counts()
        return ops.sum(tp) / ops.maximum(ops.sum(gt), 1.0)


def _default_name(base, class_id):
    return f"mean_{base}" if class_id is None else f"{base}_class{class_id}"


def default_metrics(num_classes, activation="softmax", ignore_index=None):
    """[mean IoU, pixel accuracy] (+ IoU and Dice of class 1 for binary tasks)."""
    common = dict(activation=activation, ignore_index=ignore_index)
    metrics = [MeanIoU(num_classes, **common), PixelAccuracy(num_classes, **common)]
    if num_classes == 2:
        metrics += [MeanIoU(2, class_id=1, **common), DiceScore(2, class_id=1, **common)]
    return metrics
