"""RpnTargetLayer (RPN targets in the graph) against the NumPy reference
`rpn_targets_numpy`: identical matched sets, sampling counts and subsets, deltas; JAX and
PyTorch backends on one case; the training model computes its own RPN targets."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from helpers import TinyConfig
from test_rpn_targets_numpy import ANCHORS, GT_BOXES, GT_CLASS_IDS, STD, decode, make_config

from kseg.models.mask_rcnn import rpn_targets_numpy as reference
from kseg.models.mask_rcnn.rpn_targets import RpnTargetLayer, match_anchors, rpn_targets
from kseg.ops.anchors import config_anchors


def _np(x):
    return keras.ops.convert_to_numpy(x)


def run_layer(anchors, ids, boxes, total=64, seed=0):
    """The layer on a batch: rpn_match [B, A], rpn_bbox [B, R, 4] as NumPy."""
    layer = RpnTargetLayer(total, STD, seed=seed)
    rpn_match, rpn_bbox = layer(np.asarray(anchors, np.float32), np.asarray(ids, np.int32),
                                np.asarray(boxes, np.float32))
    return _np(rpn_match)[..., 0], _np(rpn_bbox)


def random_case(rng, count, side, crowd=0.1, padding=0.1, max_size=None):
    """`count` integer pixel boxes (some past the image border) and class ids."""
    corner = rng.uniform(-side / 10, side, (count, 2))
    sizes = rng.uniform(2, max_size or side / 2, (count, 2))
    boxes = np.round(np.concatenate([corner, corner + sizes], 1))
    ids = rng.choice([-1, 0, 1, 2], count, p=[crowd, padding, 0.5 - crowd, 0.5 - padding])
    boxes[ids == 0] = 0  # padding rows are all zero, as the pipeline writes them
    return ids.astype(np.int32), boxes.astype(np.float32)


def test_hand_made_positive_negative_sets():
    rpn_match, rpn_bbox = run_layer(ANCHORS, GT_CLASS_IDS[None], GT_BOXES[None])
    assert rpn_match.dtype == np.int32 and rpn_match.shape == (1, 9)
    assert np.flatnonzero(rpn_match[0] == 1).tolist() == [0, 1, 4]
    assert np.flatnonzero(rpn_match[0] == -1).tolist() == [3, 5, 8]
    assert np.flatnonzero(rpn_match[0] == 0).tolist() == [2, 6, 7]
    assert rpn_bbox.shape == (1, 64, 4) and rpn_bbox.dtype == np.float32
    decoded = decode(ANCHORS[[0, 1, 4]], rpn_bbox[0, :3].astype(np.float64))
    np.testing.assert_allclose(decoded, GT_BOXES[[0, 0, 1]], atol=1e-4)
    assert not rpn_bbox[0, 3:].any()
    np.testing.assert_allclose(rpn_bbox[0, 1], [0, 0.5 / 9 / 0.1, 0, np.log(10 / 9) / 0.2],
                               rtol=1e-5)
    _, expected = reference.build_rpn_targets(ANCHORS, GT_CLASS_IDS, GT_BOXES, make_config())
    np.testing.assert_allclose(rpn_bbox[0], expected, rtol=1e-5, atol=1e-6)


def test_crowd_ties_unreachable_gt_and_padding():
    rpn_match, _ = run_layer(ANCHORS, GT_CLASS_IDS[None, :2], GT_BOXES[None, :2])
    assert np.flatnonzero(rpn_match[0] == -1).tolist() == [3, 5, 6, 7, 8]  # no crowd
    anchors = np.array([[0, 0, 10, 10], [0, 10, 10, 20], [50, 50, 60, 60]], np.float32)
    gt = np.array([[[0, 5, 10, 15], [200, 200, 210, 210]]])  # a tie; a gt overlapping nothing
    rpn_match, rpn_bbox = run_layer(anchors, [[1, 1]], gt)
    assert rpn_match[0].tolist() == [1, 1, -1]
    np.testing.assert_allclose(decode(anchors[:2], rpn_bbox[0, :2].astype(np.float64)),
                               gt[0, [0, 0]], atol=1e-4)
    # Zero instances (all padding) next to a real image: only negatives, zero deltas.
    ids = np.array([[0, 0, 0], [1, 0, 0]], np.int32)
    boxes = np.zeros([2, 3, 4], np.float32)
    boxes[1, 0] = [0, 0, 10, 10]
    rpn_match, rpn_bbox = run_layer(ANCHORS, ids, boxes, total=4)
    assert (rpn_match[0] == 1).sum() == 0 and (rpn_match[0] == -1).sum() == 4
    assert rpn_bbox.shape == (2, 4, 4) and not rpn_bbox[0].any()
    assert (rpn_match[1] == 1).sum() == 2 and (rpn_match[1] != 0).sum() == 4


@pytest.mark.parametrize("count, side, max_size", [(12, 128, None), (100, 256, 40)])
def test_matched_sets_equal_numpy_reference(count, side, max_size):
    """Rules 1-4 give identical sets and best gt boxes (float32 in both) on a batch of
    random images: crowds, padding, boxes past the border, and up to 100 gt boxes."""
    anchors = config_anchors(make_config(IMAGE_MIN_DIM=side, IMAGE_MAX_DIM=side))
    rng = np.random.default_rng(count)
    cases = [random_case(rng, count, side, max_size=max_size) for _ in range(3)]
    cases[2][1][0] = [300, 300, 320, 320]  # past every anchor: no forced positive
    cases[2][0][0] = 1
    ids = np.stack([c[0] for c in cases])
    boxes = np.stack([c[1] for c in cases])
    match, best_gt = match_anchors(anchors[None].astype(np.float32), ids, boxes)
    match, best_gt = _np(match), _np(best_gt)
    for k in range(len(cases)):
        expected, pos_gt = reference.match_anchors(anchors, ids[k], boxes[k], dtype=np.float32)
        np.testing.assert_array_equal(match[k], expected)
        np.testing.assert_array_equal(best_gt[k][expected == 1], pos_gt)
        assert (expected == 1).sum() >= 5 and (expected == -1).sum() > 100


def test_sampling_counts_subsets_deltas_and_seeds():
    config = make_config(IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256)
    anchors = config_anchors(config)
    # 32 x 32 boxes on the stride-4 grid: each matches many shifted anchors (IoU >= 0.7).
    boxes = np.array([[16, 16, 48, 48], [100, 60, 132, 92], [150, 150, 182, 182],
                      [60, 200, 92, 232], [200, 20, 232, 52]], np.float32)
    ids = np.array([1, 2, 1, 2, 2], np.int32)
    few = np.zeros_like(boxes)
    few[0] = boxes[0]
    batch_ids, batch_boxes = np.stack([ids, [1, 0, 0, 0, 0]]), np.stack([boxes, few])
    rpn_match, rpn_bbox = run_layer(anchors, batch_ids, batch_boxes, total=32, seed=5)
    again = run_layer(anchors, batch_ids, batch_boxes, total=32, seed=5)
    other = run_layer(anchors, batch_ids, batch_boxes, total=32, seed=6)
    np.testing.assert_array_equal(again[0], rpn_match)
    np.testing.assert_array_equal(again[1], rpn_bbox)
    assert not np.array_equal(other[0], rpn_match)
    for k in range(2):
        full, pos_gt = reference.match_anchors(anchors, batch_ids[k], batch_boxes[k],
                                               dtype=np.float32)
        positives = np.flatnonzero(rpn_match[k] == 1)
        num_pos = min((full == 1).sum(), 16)
        assert len(positives) == num_pos and (rpn_match[k] != 0).sum() == 32
        assert np.all(full[rpn_match[k] == 1] == 1) and np.all(full[rpn_match[k] == -1] == -1)
        gt_of = dict(zip(np.flatnonzero(full == 1), pos_gt))
        matched_gt = batch_boxes[k][[gt_of[i] for i in positives]]
        expected = reference.box_deltas(anchors[positives], matched_gt) / STD
        np.testing.assert_allclose(rpn_bbox[k, :num_pos], expected, rtol=1e-4, atol=1e-5)
        assert not rpn_bbox[k, num_pos:].any()
    assert (full == 1).sum() < 16  # image 1 keeps all its positives


def test_sampling_draws_every_matched_anchor_and_config_round_trip():
    """Over repeated calls (the SeedGenerator advances), every positive and negative
    anchor gets sampled: the draw is random, not a fixed subset."""
    layer = RpnTargetLayer(4, STD, seed=1)
    anchors = np.array([[0, 0, 10, 10], [0, 1, 10, 11], [0, 2, 10, 12], [0, 3, 10, 13],
                        [40, 40, 50, 50], [60, 60, 70, 70], [80, 80, 90, 90]], np.float32)
    gt = np.array([[[0, 0, 10, 13]]], np.float32)  # IoU >= 0.7 with anchors 0-3
    seen = np.zeros([2, 7], int)
    for _ in range(40):
        rpn_match = _np(layer(anchors, np.array([[1]]), gt)[0])[0, :, 0]
        assert (rpn_match == 1).sum() == 2 and (rpn_match == -1).sum() == 2
        seen[0] += rpn_match == 1
        seen[1] += rpn_match == -1
    assert (seen[0, :4] > 0).all() and (seen[1, 4:] > 0).all()
    assert not seen[0, 4:].any() and not seen[1, :4].any()
    clone = RpnTargetLayer.from_config(layer.get_config())
    assert clone.get_config() == layer.get_config()


def test_numpy_helper_on_one_image():
    anchors = config_anchors(make_config(IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128))
    ids, boxes = random_case(np.random.default_rng(7), 8, 128, crowd=0.2)
    rpn_match, rpn_bbox = rpn_targets(anchors, ids, boxes, make_config(), seed=3)
    full, _ = reference.match_anchors(anchors, ids, boxes, dtype=np.float32)
    assert rpn_match.shape == (len(anchors),) and rpn_bbox.shape == (64, 4)
    assert np.all(full[rpn_match == 1] == 1) and np.all(full[rpn_match == -1] == -1)
    assert (rpn_match != 0).sum() == 64
    empty, _ = rpn_targets(anchors, [], np.zeros([0, 4]), make_config(), seed=3)
    assert (empty == 1).sum() == 0 and (empty == -1).sum() == 64


def test_training_model_computes_its_rpn_targets(tmp_path):
    from kseg.data import ShapesDataset
    from kseg.data.pipelines.maskrcnn_pipeline import INPUT_NAMES, build_batch
    from kseg.models.mask_rcnn.model import MaskRCNN

    config = TinyConfig()
    model = MaskRCNN("training", config, model_dir=tmp_path).keras_model
    assert set(model.input) == set(INPUT_NAMES)
    batch, _ = build_batch(ShapesDataset(2, 64, 64, seed=3), config, [0, 1],
                           rng=np.random.default_rng(0))
    out = model(batch, training=False)
    rpn_match, rpn_bbox = _np(out["rpn_match"])[..., 0], _np(out["rpn_target_bbox"])
    assert rpn_match.dtype == np.int32 and rpn_bbox.shape == (2, 32, 4)
    anchors = config_anchors(config)
    for k in range(2):
        full, _ = reference.match_anchors(anchors, batch["input_gt_class_ids"][k],
                                          batch["input_gt_boxes"][k], dtype=np.float32)
        assert (rpn_match[k] == 1).sum() == min((full == 1).sum(), 16) > 0
        assert (rpn_match[k] != 0).sum() == 32
        assert np.all(full[rpn_match[k] != 0] == rpn_match[k][rpn_match[k] != 0])


BACKEND_SCRIPT = r"""
import json, sys
import numpy as np
import keras
from kseg.models.mask_rcnn.rpn_targets import RpnTargetLayer
d = {k: np.asarray(v) for k, v in json.loads(sys.stdin.read()).items()}
layer = RpnTargetLayer(32, [0.1, 0.1, 0.2, 0.2], seed=4)
m, b = layer(d["anchors"].astype("float32"), d["ids"].astype("int32"), d["boxes"].astype("float32"))
m2, _ = RpnTargetLayer(32, [0.1, 0.1, 0.2, 0.2], seed=4)(
    d["anchors"].astype("float32"), d["ids"].astype("int32"), d["boxes"].astype("float32"))
print(json.dumps({"backend": keras.backend.backend(),
                  "match": keras.ops.convert_to_numpy(m)[..., 0].tolist(),
                  "bbox": keras.ops.convert_to_numpy(b).tolist(),
                  "again": keras.ops.convert_to_numpy(m2)[..., 0].tolist()}))
"""


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_other_backends_match_the_reference(backend):
    pytest.importorskip(backend)
    anchors = config_anchors(make_config(IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128))
    rng = np.random.default_rng(11)
    cases = [random_case(rng, 10, 128) for _ in range(2)]
    ids, boxes = np.stack([c[0] for c in cases]), np.stack([c[1] for c in cases])
    data = {"anchors": anchors.tolist(), "ids": ids.tolist(), "boxes": boxes.tolist()}
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[3]),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", BACKEND_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=300, input=json.dumps(data))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == backend
    rpn_match, rpn_bbox = np.array(out["match"]), np.array(out["bbox"])
    np.testing.assert_array_equal(np.array(out["again"]), rpn_match)  # seeded
    for k in range(2):
        full, pos_gt = reference.match_anchors(anchors, ids[k], boxes[k], dtype=np.float32)
        positives = np.flatnonzero(rpn_match[k] == 1)
        assert len(positives) == min((full == 1).sum(), 16) > 0
        assert (rpn_match[k] != 0).sum() == 32
        assert np.all(full[rpn_match[k] != 0] == rpn_match[k][rpn_match[k] != 0])
        gt_of = dict(zip(np.flatnonzero(full == 1), pos_gt))
        expected = reference.box_deltas(anchors[positives],
                                        boxes[k][[gt_of[i] for i in positives]]) / STD
        np.testing.assert_allclose(rpn_bbox[k, :len(positives)], expected, rtol=1e-4,
                                   atol=1e-5)


def test_five_losses_read_rpn_targets_from_inputs_of_older_training_models():
    """Training models saved before the RPN targets moved into the graph take them as
    inputs (input_rpn_match / input_rpn_bbox): the losses read them there."""
    from kseg.models.mask_rcnn.training import five_losses

    rng = np.random.default_rng(0)
    rpn_match = rng.choice([-1, 0, 1], (2, 50, 1)).astype(np.int32)
    target = rng.normal(size=(2, 8, 4)).astype(np.float32)
    y_pred = {"rpn_class_logits": rng.normal(size=(2, 50, 2)).astype(np.float32),
              "rpn_bbox": rng.normal(size=(2, 50, 4)).astype(np.float32),
              "target_class_ids": np.array([[1, 0], [2, 0]], np.int32),
              "mrcnn_class_logits": rng.normal(size=(2, 2, 3)).astype(np.float32),
              "roi_weights": np.ones([2, 2], np.float32),
              "target_bbox": np.zeros([2, 2, 4], np.float32),
              "mrcnn_bbox": np.zeros([2, 2, 3, 4], np.float32),
              "target_mask": np.ones([2, 1, 4, 4], np.float32),
              "mrcnn_mask_logits": np.zeros([2, 1, 4, 4, 3], np.float32)}
    x = {"input_image_meta": np.ones([2, 15], np.float32)}
    new = five_losses(x, {**y_pred, "rpn_match": rpn_match, "rpn_target_bbox": target})
    old = five_losses({**x, "input_rpn_match": rpn_match, "input_rpn_bbox": target}, y_pred)
    for name in ("rpn_class_loss", "rpn_bbox_loss"):
        assert float(new[name]) == pytest.approx(float(old[name])) and float(new[name]) > 0


def test_padding_columns_are_trimmed_on_tensorflow_with_the_same_targets(monkeypatch):
    from kseg.models.mask_rcnn.rpn_targets import used_gt_columns

    anchors = config_anchors(make_config(IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128))
    ids = np.zeros([2, 20], np.int32)
    boxes = np.zeros([2, 20, 4], np.float32)
    ids[0, [0, 4]], ids[1, 1] = [1, -1], 2  # a padding row between two real ones
    boxes[0, [0, 4]] = [[10, 10, 50, 60], [40, 40, 100, 100]]
    boxes[1, 1] = [70, 20, 120, 64]
    trimmed = used_gt_columns(ids, boxes)
    if keras.backend.backend() == "tensorflow":
        assert tuple(trimmed[1].shape) == (2, 5, 4)
    fast = run_layer(anchors, ids, boxes, total=32, seed=2)
    monkeypatch.setenv("KSEG_DISABLE_FAST_OPS", "1")
    assert tuple(used_gt_columns(ids, boxes)[1].shape) == (2, 20, 4)
    slow = run_layer(anchors, ids, boxes, total=32, seed=2)
    np.testing.assert_array_equal(fast[0], slow[0])
    np.testing.assert_array_equal(fast[1], slow[1])
    assert (fast[0] == 1).sum() > 0
