"""Confusion-matrix metrics against hand-computed and NumPy (kseg.evaluate) values."""

import numpy as np
import pytest

from kseg.evaluate.semantic import confusion_matrix, dice_per_class, iou_per_class
from kseg.semantic.metrics import DiceScore, MeanIoU, PixelAccuracy, default_metrics

Y_TRUE = np.array([[[0, 1, 1], [2, 2, 0]]], np.int32)                # [1, 2, 3]
Y_PRED_CLASSES = np.array([[[0, 1, 0], [2, 1, 0]]], np.int32)


def _softmax_like(classes, num_classes=3):
    return np.eye(num_classes, dtype=np.float32)[classes] * 0.8 + 0.2 / num_classes


def _value(metric, y_true, y_pred):
    metric.update_state(y_true, y_pred)
    return float(metric.result())


def test_mean_iou_by_hand():
    # class 0: tp 2, fp 1, fn 0 -> 2/3; class 1: tp 1, fp 1, fn 1 -> 1/3; class 2: 1/2.
    value = _value(MeanIoU(3), Y_TRUE, _softmax_like(Y_PRED_CLASSES))
    assert value == pytest.approx((2 / 3 + 1 / 3 + 1 / 2) / 3, rel=1e-6)
    assert _value(MeanIoU(3, class_id=1), Y_TRUE, _softmax_like(Y_PRED_CLASSES)) == \
        pytest.approx(1 / 3)


def test_agrees_with_numpy_and_accumulates():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 4, (3, 8, 8))
    logits = rng.normal(size=(3, 8, 8, 4)).astype(np.float32)
    iou, dice, acc = MeanIoU(4, activation="logits"), DiceScore(4), PixelAccuracy(4)
    for metric in (iou, dice, acc):
        metric.update_state(y_true[:2], logits[:2])
        metric.update_state(y_true[2:], logits[2:])
    cm = confusion_matrix(y_true, logits.argmax(-1), 4)
    assert float(iou.result()) == pytest.approx(np.nanmean(iou_per_class(cm)), rel=1e-5)
    assert float(dice.result()) == pytest.approx(np.nanmean(dice_per_class(cm)), rel=1e-5)
    assert float(acc.result()) == pytest.approx(np.trace(cm) / cm.sum(), rel=1e-6)
    iou.reset_state()
    assert float(iou.result()) == 0.0


def test_binary_sigmoid_and_logit_outputs():
    y = np.array([[[0, 1], [1, 1]]], np.int32)
    p = np.array([[[[0.2], [0.7]], [[0.4], [0.9]]]], np.float32)  # predicts 0, 1, 0, 1
    assert _value(MeanIoU(2, class_id=1, activation="sigmoid"), y, p) == pytest.approx(2 / 3)
    assert _value(DiceScore(2, class_id=1, activation="sigmoid"), y, p) == pytest.approx(0.8)
    logit = np.log(p / (1 - p))
    assert _value(MeanIoU(2, class_id=1, activation="logits"), y, logit) == pytest.approx(2 / 3)
    assert _value(PixelAccuracy(2, activation="sigmoid"), y[..., None], p) == pytest.approx(0.75)


def test_ignore_index_and_absent_classes():
    y = np.array([[[0, 255], [0, 0]]], np.int32)
    pred = _softmax_like(np.array([[[0, 1], [0, 0]]]), 3)
    # Only class 0 is present (class 1 predicted only on an ignored pixel): IoU 1.
    assert _value(MeanIoU(3, ignore_index=255), y, pred) == pytest.approx(1.0)
    assert _value(PixelAccuracy(3, ignore_index=255), y, pred) == pytest.approx(1.0)


def test_default_metrics_and_config_round_trip():
    names = [m.name for m in default_metrics(2, activation="sigmoid")]
    assert names == ["mean_iou", "pixel_accuracy", "iou_class1", "dice_class1"]
    metric = MeanIoU(2, class_id=1, activation="sigmoid", ignore_index=3)
    clone = MeanIoU.from_config(metric.get_config())
    assert (clone.class_id, clone.activation, clone.ignore_index) == (1, "sigmoid", 3)
