"""Each Mask R-CNN loss and the weight-decay term on tiny cases worked out by hand
(the arithmetic is in the comments; ln 2 = 0.693147, ln 3 = 1.098612, ln 0.75 = -0.287682)."""

import numpy as np
import pytest
from helpers import TinyConfig
from keras import ops

from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.mask_rcnn import losses
from kseg.models.mask_rcnn.model import MaskRCNN

LN2, LN3, LN075 = np.log(2.0), np.log(3.0), np.log(0.75)


def _value(x):
    return float(ops.convert_to_numpy(x))


def test_rpn_class_loss_by_hand():
    # anchors: positive with p(fg) = 3/4, negative with p(bg) = 3/4, neutral, p = 1/2 positive
    match = np.array([[[1], [-1], [0], [1]]], np.int32)
    logits = np.array([[[0, LN3], [LN3, 0], [9, -9], [0, 0]]], np.float32)
    # mean over the 3 non-neutral anchors of -ln p(label)
    expected = (-LN075 - LN075 + LN2) / 3  # 0.422837
    assert _value(losses.rpn_class_loss(match, logits)) == pytest.approx(expected, abs=1e-6)


def test_rpn_bbox_loss_by_hand():
    # positives are anchors 0 and 3; targets are packed in that order, row 2 is padding
    match = np.array([[[1], [0], [-1], [1]]], np.int32)
    target = np.array([[[0, 0, 0, 0], [1, -0.2, 0, 0], [7, 7, 7, 7]]], np.float32)
    pred = np.zeros((1, 4, 4), np.float32)
    pred[0, 0] = [0.5, 0, 0, 2]  # smooth L1: 0.5 * 0.25 = 0.125, and 2 - 0.5 = 1.5
    pred[0, 1] = [5, 5, 5, 5]    # not a positive anchor: ignored
    # anchor 3 vs target row 1: 0.5 * 1 = 0.5 (|d| = 1 is not < 1: 1 - 0.5), 0.5 * 0.04
    expected = (0.125 + 1.5 + 0.5 + 0.02) / 8  # mean over 2 anchors x 4 coordinates
    assert _value(losses.rpn_bbox_loss(target, match, pred)) == pytest.approx(expected, abs=1e-6)


def test_mrcnn_class_loss_by_hand():
    target = np.array([[1, 0, 2]], np.int32)
    logits = np.array([[[0, np.log(2), 0], [0, 0, 0], [0, 0, 5]]], np.float32)
    active = np.array([[1, 1, 0]], np.int32)  # class 2 is not in this image's source
    # row 0: softmax (1/4, 1/2, 1/4) -> -ln 1/2; row 1: -ln 1/3; row 2 predicts class 2,
    # which is inactive: weight 0 (Matterport)
    expected = (LN2 + LN3) / 2
    value = _value(losses.mrcnn_class_loss(target, logits, active))
    assert value == pytest.approx(expected, abs=1e-6)
    weights = np.array([[1, 0, 1]], np.float32)  # an empty ROI slot of "fill" sampling
    value = _value(losses.mrcnn_class_loss(target, logits, active, weights))
    assert value == pytest.approx(LN2, abs=1e-6)


def test_mrcnn_bbox_loss_by_hand():
    target = np.array([[[0.5, -2, 0, 0.1], [9, 9, 9, 9]]], np.float32)
    class_ids = np.array([[2, 0]], np.int32)  # row 1 is a negative: no box loss
    pred = np.zeros((1, 2, 3, 4), np.float32)
    pred[0, 0, 1] = [9, 9, 9, 9]  # another class's deltas: ignored
    pred[0, 0, 2] = [0, 0, 0, 0.3]
    # smooth L1 of (0.5, 2, 0, 0.2): 0.125, 1.5, 0, 0.02; mean over 4 coordinates
    expected = (0.125 + 1.5 + 0 + 0.02) / 4
    value = _value(losses.mrcnn_bbox_loss(target, class_ids, pred))
    assert value == pytest.approx(expected, abs=1e-6)


def test_mrcnn_mask_loss_by_hand():
    target = np.array([[[[1, 1], [0, 0]], [[1, 1], [1, 1]]]], np.float32)
    class_ids = np.array([[1, 0, 0]], np.int32)  # only ROI 0 is positive
    pred = np.full((1, 2, 2, 2, 2), 0.5, np.float32)
    pred[0, 0, :, :, 1] = [[0.5, 0.8], [0.2, 0.9]]  # the true class's mask
    # BCE per pixel: -ln .5, -ln .8, -ln .8, -ln .1; mean over the 4 pixels
    expected = (LN2 - 2 * np.log(0.8) - np.log(0.1)) / 4  # 0.860483
    value = _value(losses.mrcnn_mask_loss(target, class_ids, pred))
    assert value == pytest.approx(expected, abs=1e-5)


def test_weight_decay_term_by_hand(tmp_path):
    """Matterport: WEIGHT_DECAY * sum(w ** 2) / size(w) over every trainable variable
    but BatchNorm gamma / beta (kernels and biases)."""
    model = MaskRCNN("training", TinyConfig(WEIGHT_DECAY=0.01), tmp_path).keras_model
    x, _ = build_batch(ShapesDataset(2, 64, 64, seed=3), model_config(), [0, 1],
                       rng=np.random.default_rng(0))
    y_pred = model(x, training=False)
    model.loss_weights = dict.fromkeys(model.loss_weights, 0.0)  # the decay term alone
    term = _value(model.compute_loss(x, None, y_pred))
    decayed = [w for w in model.trainable_weights
               if "gamma" not in w.path and "beta" not in w.path]
    assert any(w.path.endswith("bias") for w in decayed)
    expected = 0.01 * sum(np.sum(np.square(w.numpy())) / w.numpy().size for w in decayed)
    assert term == pytest.approx(expected, rel=1e-5)


def model_config():
    return TinyConfig()
