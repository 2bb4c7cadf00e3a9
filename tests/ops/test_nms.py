"""Tests for kseg.ops.non_max_suppression: NumPy greedy reference, TF kernels, XLA."""

import keras
import numpy as np
import pytest
from keras import ops

from kseg.ops import _tf_fast, non_max_suppression

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="compares against TensorFlow kernels")


def nms_reference(boxes, scores, max_output, iou_threshold, score_threshold):
    """Textbook greedy NMS on one image (float64)."""
    boxes = boxes.astype(np.float64)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        if scores[i] <= score_threshold or len(keep) == max_output:
            break
        ok = True
        for j in keep:
            ih = max(min(boxes[i, 2], boxes[j, 2]) - max(boxes[i, 0], boxes[j, 0]), 0)
            iw = max(min(boxes[i, 3], boxes[j, 3]) - max(boxes[i, 1], boxes[j, 1]), 0)
            union = area[i] + area[j] - ih * iw
            if union > 0 and ih * iw / union > iou_threshold:
                ok = False
                break
        if ok:
            keep.append(i)
    return np.array(keep, np.int32)


def make_inputs(seed, batch=3, n=120):
    """Clustered random boxes (lots of overlap) with distinct scores."""
    rng = np.random.default_rng(seed)
    centers = rng.uniform(0, 1, (batch, 8, 2))[:, rng.integers(0, 8, n)]
    yx = centers + rng.normal(0, 0.04, (batch, n, 2))
    hw = rng.uniform(0.05, 0.3, (batch, n, 2))
    boxes = np.concatenate([yx - hw / 2, yx + hw / 2], -1).astype("float32")
    boxes[:, -3:] = 0.0  # padding boxes (zero area) still have scores
    scores = np.stack([rng.permutation(n) for _ in range(batch)]) / n
    return boxes, (scores + 0.01).astype("float32")


def check_against_reference(indices, counts, boxes, scores, k, iou_t, score_t):
    indices, counts = ops.convert_to_numpy(indices), ops.convert_to_numpy(counts)
    assert indices.shape == (len(boxes), k) and indices.dtype == np.int32
    assert counts.shape == (len(boxes),) and counts.dtype == np.int32
    for b in range(len(boxes)):
        ref = nms_reference(boxes[b], scores[b], k, iou_t, score_t)
        assert counts[b] == len(ref)
        np.testing.assert_array_equal(indices[b, : counts[b]], ref)
        assert np.all(indices[b, counts[b]:] == 0)


@pytest.mark.parametrize("iou_t", [0.3, 0.5, 0.7])
@pytest.mark.parametrize("k,score_t", [(40, float("-inf")), (150, 0.5)])
def test_fallback_matches_numpy_greedy(iou_t, k, score_t):
    boxes, scores = make_inputs(seed=int(iou_t * 10) + k)
    idx, cnt = non_max_suppression(boxes, scores, k, iou_t, score_t, use_fast_ops=False)
    check_against_reference(idx, cnt, boxes, scores, k, iou_t, score_t)
    if k > 100:  # every box above the threshold survives or is suppressed
        assert np.all(ops.convert_to_numpy(cnt) < k)


def test_fallback_sorted_descending_and_flipped_boxes():
    boxes, scores = make_inputs(seed=7, batch=2, n=60)
    flipped = boxes[..., [2, 3, 0, 1]]  # TF canonicalizes corners; so do we
    idx, cnt = non_max_suppression(flipped, scores, 20, 0.5, use_fast_ops=False)
    check_against_reference(idx, cnt, boxes, scores, 20, 0.5, float("-inf"))
    picked = np.take_along_axis(scores, ops.convert_to_numpy(idx), 1)
    for b in range(2):
        assert np.all(np.diff(picked[b, : int(cnt[b])]) < 0)


def test_all_below_score_threshold_gives_zero_count():
    boxes, scores = make_inputs(seed=8, batch=2, n=30)
    idx, cnt = non_max_suppression(boxes, scores, 10, 0.5, 5.0, use_fast_ops=False)
    np.testing.assert_array_equal(ops.convert_to_numpy(cnt), [0, 0])
    np.testing.assert_array_equal(ops.convert_to_numpy(idx), np.zeros((2, 10)))


@TF_ONLY
@pytest.mark.parametrize("iou_t,score_t", [(0.3, float("-inf")), (0.5, 0.2), (0.7, 0.6)])
def test_fallback_and_fast_match_tf_image_nms(iou_t, score_t):
    import tensorflow as tf

    boxes, scores = make_inputs(seed=11)
    fast = non_max_suppression(boxes, scores, 50, iou_t, score_t, use_fast_ops=True)
    slow = non_max_suppression(boxes, scores, 50, iou_t, score_t, use_fast_ops=False)
    for b in range(len(boxes)):
        ref = tf.image.non_max_suppression(boxes[b], scores[b], 50, iou_t, score_t).numpy()
        for idx, cnt in (fast, slow):
            assert int(cnt[b]) == len(ref)
            np.testing.assert_array_equal(np.asarray(idx[b, : len(ref)]), ref)
    np.testing.assert_array_equal(np.asarray(fast[0]), np.asarray(slow[0]))


@TF_ONLY
def test_fallback_under_xla_and_dynamic_batch():
    import tensorflow as tf

    boxes, scores = make_inputs(seed=12)
    spec = (tf.TensorSpec([None, 120, 4]), tf.TensorSpec([None, 120]))

    def run(b, s):
        return non_max_suppression(b, s, 30, 0.5, use_fast_ops=False)

    for jit in (True, False):
        idx, cnt = tf.function(run, jit_compile=jit, input_signature=spec)(boxes, scores)
        check_against_reference(idx, cnt, boxes, scores, 30, 0.5, float("-inf"))
    # Default selection under XLA keeps the (XLA-compatible) TF kernel.
    idx, cnt = tf.function(lambda b, s: non_max_suppression(b, s, 30, 0.5),
                           jit_compile=True)(boxes, scores)
    check_against_reference(idx, cnt, boxes, scores, 30, 0.5, float("-inf"))


@TF_ONLY
def test_env_var_disables_fast_path(monkeypatch):
    monkeypatch.setenv(_tf_fast.ENV_DISABLE, "1")
    assert not _tf_fast.should_use(None)
    assert _tf_fast.should_use(True)  # explicit argument wins
    monkeypatch.setenv(_tf_fast.ENV_DISABLE, "0")
    assert _tf_fast.should_use(None)
    assert not _tf_fast.should_use(False)
