"""ROI_SAMPLING "matterport" vs "fill", ADD_GT_AS_PROPOSALS, and which preset uses which."""

import numpy as np
import pytest
from helpers import TinyConfig

from kseg.config import ConfigError
from kseg.models.mask_rcnn.config import MaskRCNNConfig
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.presets import CocoConfig, FineTuneConfig, ShapesConfig, SmallDataConfig
from kseg.models.mask_rcnn.targets import DetectionTargetLayer


def _inputs(num_pos):
    """`num_pos` proposals on the ground-truth box (IoU 1), 10 far from it (IoU 0)."""
    pos = [[0.1, 0.1, 0.4, 0.4]] * num_pos
    neg = [[0.6 + 0.01 * i, 0.6, 0.9, 0.9] for i in range(10)]
    proposals = np.array([pos + neg], np.float32)
    gt_class_ids = np.array([[1, 0]], np.int32)
    gt_boxes = np.array([[[0.1, 0.1, 0.4, 0.4], [0, 0, 0, 0]]], np.float32)
    gt_masks = np.ones((1, 4, 4, 2), bool)
    return proposals, gt_class_ids, gt_boxes, gt_masks


def _sample(sampling, num_pos, rois=12):
    layer = DetectionTargetLayer(rois, 0.33, [4, 4], [0.1, 0.1, 0.2, 0.2],
                                 add_gt_as_proposals=False, seed=0, roi_sampling=sampling)
    rois, class_ids, _, _, weights = (np.asarray(t) for t in layer(*_inputs(num_pos)))
    real = np.abs(rois[0]).sum(-1) > 0
    return int(np.sum(class_ids[0] > 0)), int(np.sum(real & (class_ids[0] == 0))), weights[0]


def test_matterport_sampling_takes_one_to_two_negatives_and_weights_padding():
    # 12 ROIs, ratio 0.33: at most int(3.96) = 3 positives, int(3 * (1 / 0.33)) - 3 = 6
    # negatives; the 3 empty rows still count (as background) in the class loss.
    pos, neg, weights = _sample("matterport", 5)
    assert (pos, neg) == (3, 6)
    np.testing.assert_array_equal(weights, np.ones(12))
    pos, neg, weights = _sample("matterport", 1)  # int(1 * 3.0303) - 1 = 2 negatives
    assert (pos, neg) == (1, 2)
    pos, neg, weights = _sample("matterport", 0)  # no positive: no negative either
    assert (pos, neg) == (0, 0) and weights.sum() == 12


def test_fill_sampling_fills_every_slot_and_ignores_padding():
    # round(3.96) = 4 positives at most; negatives fill the other 8 slots.
    pos, neg, weights = _sample("fill", 5)
    assert (pos, neg) == (4, 8)
    np.testing.assert_array_equal(weights, np.ones(12))
    pos, neg, weights = _sample("fill", 0, rois=14)  # 10 negatives, 4 empty slots ignored
    assert (pos, neg) == (0, 10)
    np.testing.assert_array_equal(weights, [1] * 10 + [0] * 4)


def test_presets_choose_their_sampling_on_purpose():
    for config in (MaskRCNNConfig(NUM_CLASSES=2), FineTuneConfig(), CocoConfig()):
        assert (config.ROI_SAMPLING, config.ADD_GT_AS_PROPOSALS) == ("matterport", False)
    for config in (ShapesConfig(), SmallDataConfig()):
        assert (config.ROI_SAMPLING, config.ADD_GT_AS_PROPOSALS) == ("fill", True)
    with pytest.raises(ConfigError, match="ROI_SAMPLING"):
        MaskRCNNConfig(NUM_CLASSES=2, ROI_SAMPLING="detectron")


def test_training_graph_uses_the_config_sampling(tmp_path):
    model = MaskRCNN("training", TinyConfig(ROI_SAMPLING="matterport",
                                            ADD_GT_AS_PROPOSALS=False), tmp_path)
    layer = model.keras_model.get_layer("proposal_targets")
    assert layer.roi_sampling == "matterport" and layer.add_gt_as_proposals is False


def test_use_rpn_rois_false_is_refused_with_a_reason():
    with pytest.raises(ConfigError, match="USE_RPN_ROIS.*RPN proposals"):
        MaskRCNNConfig(NUM_CLASSES=2, USE_RPN_ROIS=False)
