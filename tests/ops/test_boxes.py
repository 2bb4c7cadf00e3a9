"""Tests for kseg.ops.boxes against hand-computed values and NumPy references."""

import numpy as np
import pytest
from keras import ops

from kseg.ops import (
    box_area,
    clip_boxes,
    compute_iou,
    decode_box_deltas,
    denormalize_boxes,
    encode_box_deltas,
    normalize_boxes,
)

STD = [0.1, 0.1, 0.2, 0.2]


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def random_boxes(rng, shape, scale=100.0):
    yx = rng.uniform(0, scale, shape + (2,))
    hw = rng.uniform(1, scale / 2, shape + (2,))
    return np.concatenate([yx, yx + hw], -1).astype("float32")


def iou_reference(a, b):
    """Plain loop IoU of [N, 4] x [M, 4] (float64)."""
    out = np.zeros((len(a), len(b)))
    for i, (ay1, ax1, ay2, ax2) in enumerate(a.astype(np.float64)):
        for j, (by1, bx1, by2, bx2) in enumerate(b.astype(np.float64)):
            ih = max(min(ay2, by2) - max(ay1, by1), 0)
            iw = max(min(ax2, bx2) - max(ax1, bx1), 0)
            union = (ay2 - ay1) * (ax2 - ax1) + (by2 - by1) * (bx2 - bx1) - ih * iw
            out[i, j] = ih * iw / union if union > 0 else 0.0
    return out


def test_box_area():
    boxes = np.array([[0, 0, 10, 20], [5, 5, 5, 9], [3, 3, 1, 1]], "float32")
    np.testing.assert_allclose(_np(box_area(boxes)), [200.0, 0.0, 0.0])


def test_compute_iou_hand_case():
    a = np.array([[0, 0, 10, 10], [0, 0, 0, 0]], "float32")
    b = np.array([[5, 5, 15, 15], [0, 0, 10, 10], [20, 20, 30, 30], [0, 0, 0, 0]], "float32")
    iou = _np(compute_iou(a, b))
    assert iou.shape == (2, 4)
    # 25 / (100 + 100 - 25), identical, disjoint, padding.
    np.testing.assert_allclose(iou[0], [25 / 175, 1.0, 0.0, 0.0], rtol=1e-6)
    np.testing.assert_array_equal(iou[1], [0.0, 0.0, 0.0, 0.0])  # padding row, no NaN


def test_compute_iou_matches_numpy_batched():
    rng = np.random.default_rng(1)
    a = random_boxes(rng, (3, 7))
    b = random_boxes(rng, (3, 5))
    b[1, 2] = 0.0  # padding box
    iou = _np(compute_iou(a, b))
    assert iou.shape == (3, 7, 5)
    for k in range(3):
        np.testing.assert_allclose(iou[k], iou_reference(a[k], b[k]), atol=1e-6)
    assert np.all(iou[1, :, 2] == 0.0)
    # Broadcasting: [3, 7, 4] against a shared [5, 4].
    np.testing.assert_allclose(_np(compute_iou(a, b[0])), _np(compute_iou(a, b[[0, 0, 0]])))


def test_encode_matches_matterport_box_refinement():
    boxes = np.array([[10, 20, 30, 60]], "float32")  # h=20, w=40, cy=20, cx=40
    gt = np.array([[12, 10, 52, 50]], "float32")  # h=40, w=40, cy=32, cx=30
    expected = [12 / 20, -10 / 40, np.log(2.0), 0.0]
    np.testing.assert_allclose(_np(encode_box_deltas(boxes, gt))[0], expected, rtol=1e-6)
    scaled = _np(encode_box_deltas(boxes, gt, std_dev=STD))[0]
    np.testing.assert_allclose(scaled, np.array(expected) / STD, rtol=1e-6, atol=1e-7)


def test_encode_decode_round_trip():
    rng = np.random.default_rng(2)
    boxes = random_boxes(rng, (4, 50))
    gt = random_boxes(rng, (4, 50))
    for std in (None, STD):
        deltas = encode_box_deltas(boxes, gt, std_dev=std)
        assert tuple(deltas.shape) == (4, 50, 4)
        np.testing.assert_allclose(_np(decode_box_deltas(boxes, deltas, std_dev=std)), gt,
                                   rtol=1e-5, atol=1e-3)


def test_decode_matches_matterport_apply_box_deltas():
    rng = np.random.default_rng(3)
    boxes = random_boxes(rng, (20,)).astype(np.float64)
    deltas = rng.normal(0, 0.5, (20, 4))
    h, w = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cy, cx = boxes[:, 0] + 0.5 * h, boxes[:, 1] + 0.5 * w
    d = deltas * STD
    cy, cx = cy + d[:, 0] * h, cx + d[:, 1] * w
    h, w = h * np.exp(d[:, 2]), w * np.exp(d[:, 3])
    y1, x1 = cy - 0.5 * h, cx - 0.5 * w
    expected = np.stack([y1, x1, y1 + h, x1 + w], 1)
    got = _np(decode_box_deltas(boxes.astype("float32"), deltas.astype("float32"), STD))
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-3)


def test_clip_boxes_single_and_batched_window():
    boxes = np.array([[[-5, -5, 50, 50], [10, 90, 20, 130]],
                      [[-5, -5, 50, 50], [10, 90, 20, 130]]], "float32")
    got = _np(clip_boxes(boxes, np.array([0, 0, 100, 100], "float32")))
    np.testing.assert_array_equal(got[0], [[0, 0, 50, 50], [10, 90, 20, 100]])
    windows = np.array([[0, 0, 100, 100], [10, 10, 40, 95]], "float32")
    got = _np(clip_boxes(boxes, windows))
    np.testing.assert_array_equal(got[0], [[0, 0, 50, 50], [10, 90, 20, 100]])
    np.testing.assert_array_equal(got[1], [[10, 10, 40, 50], [10, 90, 20, 95]])


def test_normalize_denormalize_matterport():
    boxes = np.array([[10, 20, 50, 100], [0, 0, 100, 200]], "float32")
    norm = _np(normalize_boxes(boxes, (100, 200)))
    np.testing.assert_allclose(norm[0], [10 / 99, 20 / 199, 49 / 99, 99 / 199], rtol=1e-6)
    np.testing.assert_allclose(norm[1], [0, 0, 1, 1], rtol=1e-6)
    back = denormalize_boxes(norm, (100, 200))
    assert ops.convert_to_numpy(back).dtype == np.int32
    np.testing.assert_array_equal(_np(back), boxes.astype(np.int32))
    np.testing.assert_allclose(_np(denormalize_boxes(norm, (100, 200), as_int=False)), boxes,
                               atol=1e-4)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_normalize_batched_shape(as_tensor):
    boxes = np.array([[[0, 0, 10, 10]], [[0, 0, 20, 40]]], "float32")
    shape = np.array([[11, 11], [21, 41]], "float32")
    shape = ops.convert_to_tensor(shape) if as_tensor else shape
    np.testing.assert_allclose(_np(normalize_boxes(boxes, shape)),
                               [[[0, 0, 0.9, 0.9]], [[0, 0, 0.95, 0.975]]], rtol=1e-6)
