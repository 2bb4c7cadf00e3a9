"""Proposal, detection-target and detection layers on hand-made tensors."""

import numpy as np

from kseg.models.mask_rcnn.detection import DetectionLayer
from kseg.models.mask_rcnn.proposals import ProposalLayer
from kseg.models.mask_rcnn.targets import DetectionTargetLayer


def test_proposals_decode_sort_and_pad():
    anchors = np.array([[[0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.9, 0.9], [0.11, 0.11, 0.31, 0.31],
                         [0.6, 0.0, 0.8, 0.2]]], np.float32)
    probs = np.array([[[0.1, 0.9], [0.3, 0.7], [0.2, 0.8], [0.95, 0.05]]], np.float32)
    deltas = np.zeros((1, 4, 4), np.float32)
    deltas[0, 1] = [1.0, 0, 0, 0]  # dy = 1.0 * 0.1 std * height 0.4 -> shift 0.04
    layer = ProposalLayer(proposal_count=4, nms_threshold=0.5, pre_nms_limit=4)
    out = np.asarray(layer(probs, deltas, anchors))
    np.testing.assert_allclose(out[0, 0], [0.1, 0.1, 0.3, 0.3], atol=1e-6)
    np.testing.assert_allclose(out[0, 1], [0.54, 0.5, 0.94, 0.9], atol=1e-6)
    # anchor 2 overlaps anchor 0 (IoU ~0.82) and is suppressed; then the low-score one
    np.testing.assert_allclose(out[0, 2], [0.6, 0.0, 0.8, 0.2], atol=1e-6)
    np.testing.assert_array_equal(out[0, 3], 0)


def _target_inputs():
    proposals = np.array([[[0.1, 0.1, 0.4, 0.4], [0.6, 0.6, 0.9, 0.9], [0.0, 0.5, 0.1, 0.6],
                           [0.12, 0.1, 0.42, 0.4], [0, 0, 0, 0]]], np.float32)
    gt_class_ids = np.array([[2, 0]], np.int32)
    gt_boxes = np.array([[[0.1, 0.1, 0.4, 0.4], [0, 0, 0, 0]]], np.float32)
    gt_masks = np.zeros((1, 8, 8, 2), bool)
    gt_masks[0, :, :4, 0] = True  # left half of the box
    return proposals, gt_class_ids, gt_boxes, gt_masks


def test_detection_targets_positives_first_with_targets():
    layer = DetectionTargetLayer(6, 0.5, [4, 4], [0.1, 0.1, 0.2, 0.2], use_mini_mask=True,
                                 add_gt_as_proposals=False, seed=1)
    rois, class_ids, deltas, masks, weights = (np.asarray(t) for t in layer(*_target_inputs()))
    assert rois.shape == (1, 6, 4) and masks.shape == (1, 3, 4, 4)
    # two positives (IoU 1.0 and ~0.88) first, then the two negatives, then padding
    np.testing.assert_array_equal(class_ids[0], [2, 2, 0, 0, 0, 0])
    np.testing.assert_array_equal(weights[0], [1, 1, 1, 1, 0, 0])
    np.testing.assert_array_equal(rois[0, 4:], 0)
    exact = np.argmin(np.abs(rois[0, :2] - [0.1, 0.1, 0.4, 0.4]).sum(-1))
    np.testing.assert_allclose(deltas[0, exact], 0, atol=1e-5)
    shifted = 1 - exact
    # dy = (0.02 / 0.3) / 0.1 (std) for the proposal shifted by 0.02 in y
    np.testing.assert_allclose(deltas[0, shifted, 0], -(0.02 / 0.3) / 0.1, atol=1e-4)
    np.testing.assert_array_equal(masks[0, exact], [[1, 1, 0, 0]] * 4)
    np.testing.assert_array_equal(masks[0, 2], 0)  # not a positive row


def test_detection_targets_without_ground_truth():
    proposals, _, _, gt_masks = _target_inputs()
    layer = DetectionTargetLayer(6, 0.5, [4, 4], [0.1, 0.1, 0.2, 0.2], seed=0)
    out = layer(proposals, np.zeros((1, 2), np.int32), np.zeros((1, 2, 4), np.float32), gt_masks)
    rois, class_ids, deltas, masks, weights = (np.asarray(t) for t in out)
    np.testing.assert_array_equal(class_ids, 0)
    assert weights.sum() == 4  # the four real proposals are negatives
    assert np.all(np.isfinite(deltas)) and masks.sum() == 0


def test_detection_layer_per_class_nms_and_window():
    rois = np.array([[[0.1, 0.1, 0.5, 0.5], [0.12, 0.1, 0.52, 0.5], [0.1, 0.1, 0.5, 0.5],
                      [0.6, 0.6, 0.95, 1.0]]], np.float32)
    probs = np.array([[[0.05, 0.9, 0.05], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8],
                       [0.5, 0.3, 0.2]]], np.float32)
    deltas = np.zeros((1, 4, 3, 4), np.float32)
    window = np.array([[0.0, 0.0, 0.9, 0.9]], np.float32)
    layer = DetectionLayer(max_instances=5, min_confidence=0.7, nms_threshold=0.3)
    det = np.asarray(layer(rois, probs, deltas, window))[0]
    # class 1: the two overlapping boxes -> one kept; class 2 keeps its box; bg row dropped
    np.testing.assert_allclose(det[0], [0.1, 0.1, 0.5, 0.5, 1, 0.9], atol=1e-6)
    np.testing.assert_allclose(det[1], [0.1, 0.1, 0.5, 0.5, 2, 0.8], atol=1e-6)
    np.testing.assert_array_equal(det[2:], 0)
    config = DetectionLayer.from_config(layer.get_config()).get_config()
    assert config["nms_threshold"] == 0.3
