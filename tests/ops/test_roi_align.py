"""Tests for crop_and_resize / roi_align / PyramidROIAlign (+ JAX and XLA runs)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from keras import ops

from kseg.ops import PyramidROIAlign, crop_and_resize, roi_align, roi_level

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="compares against TensorFlow kernels")
IMAGE = (1024, 1024)  # level assignment only; the test maps are smaller (fast)


def crop_inputs(seed, batch=2, h=20, w=30, c=3, rois=40):
    rng = np.random.default_rng(seed)
    images = rng.random((batch, h, w, c)).astype("float32")
    boxes = rng.uniform(-0.2, 1.2, (rois, 4)).astype("float32")  # incl. flipped/outside
    return images, boxes, rng.integers(0, batch, rois).astype("int32")


def pyramid_inputs(seed, batch=2, rois=24, c=4):
    rng = np.random.default_rng(seed)
    maps = [rng.random((batch, 64 // s, 48 // s, c)).astype("float32") for s in (1, 2, 4, 8)]
    yx = rng.uniform(0.0, 0.4, (batch, rois, 2))
    hw = np.exp(rng.uniform(np.log(0.04), np.log(0.6), (batch, rois, 2)))
    return maps, np.concatenate([yx, yx + hw], -1).astype("float32")


def level_reference(boxes):
    h, w = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
    lvl = np.log2(np.sqrt(h * w) / (224.0 / np.sqrt(IMAGE[0] * IMAGE[1])))
    return np.clip(4 + np.round(lvl), 2, 5).astype(np.int32)


def pyramid_reference(maps, boxes, pool):
    """Crops each RoI from its level with tf.image.crop_and_resize, one at a time."""
    import tensorflow as tf

    levels = level_reference(boxes)
    out = np.zeros(boxes.shape[:2] + (pool, pool, maps[0].shape[-1]), "float32")
    for b, r in np.ndindex(*boxes.shape[:2]):
        fmap = maps[levels[b, r] - 2][b : b + 1]
        out[b, r] = tf.image.crop_and_resize(fmap, boxes[b, r][None], [0], (pool, pool))[0]
    return out


@TF_ONLY
@pytest.mark.parametrize("size", [(7, 7), (1, 1), (1, 5), (14, 3)])
def test_crop_and_resize_fallback_matches_tf(size):
    import tensorflow as tf

    images, boxes, idx = crop_inputs(seed=sum(size))
    ref = tf.image.crop_and_resize(images, boxes, idx, size).numpy()
    for fast in (False, True):
        got = crop_and_resize(images, boxes, idx, size, use_fast_ops=fast)
        assert tuple(got.shape) == (40, *size, 3)
        np.testing.assert_allclose(np.asarray(got), ref, atol=1e-4)


@TF_ONLY
def test_crop_and_resize_fallback_under_xla():
    import tensorflow as tf

    images, boxes, idx = crop_inputs(seed=5)
    ref = tf.image.crop_and_resize(images, boxes, idx, (6, 4)).numpy()
    # Auto selection must pick the fallback: CropAndResize has no XLA kernel.
    fn = tf.function(lambda i, b, k: crop_and_resize(i, b, k, (6, 4)), jit_compile=True)
    np.testing.assert_allclose(fn(images, boxes, idx).numpy(), ref, atol=1e-4)


def test_full_box_crop_is_identity():
    images = np.random.default_rng(0).random((1, 9, 13, 2)).astype("float32")
    crops = crop_and_resize(images, np.array([[0, 0, 1, 1]], "float32"), np.zeros(1, "int32"),
                            (9, 13), use_fast_ops=False)
    np.testing.assert_allclose(ops.convert_to_numpy(crops), images, atol=1e-6)


def test_roi_level_hand_made_boxes():
    side = np.array([224, 112, 56, 20, 448, 1000, 300, 0]) / 1024.0
    boxes = np.stack([np.zeros(8), np.zeros(8), side, side], -1).astype("float32")
    levels = ops.convert_to_numpy(roi_level(boxes[None], (1024, 1024)))
    # 300 px: log2(300 / 224) = 0.42 -> round 0 -> 4; empty box -> 2.
    np.testing.assert_array_equal(levels, [[4, 3, 2, 2, 5, 5, 4, 2]])
    wide = np.array([[0, 0, 112 / 1024, 448 / 1024]], "float32")  # sqrt(area) = 224 px
    assert int(ops.convert_to_numpy(roi_level(wide, (1024, 1024)))[0]) == 4


@TF_ONLY
@pytest.mark.parametrize("fast", [False, True])
def test_roi_align_matches_per_box_reference(fast):
    maps, boxes = pyramid_inputs(seed=3)
    assert len(np.unique(level_reference(boxes))) == 4  # every level is exercised
    got = roi_align(maps, boxes, 5, IMAGE, use_fast_ops=fast)
    assert tuple(got.shape) == (2, 24, 5, 5, 4)
    np.testing.assert_allclose(np.asarray(got), pyramid_reference(maps, boxes, 5), atol=1e-4)


@TF_ONLY
@pytest.mark.parametrize("fast", [True, False])
def test_roi_align_gives_zeros_for_a_nan_box(fast):
    """A RoI without a level (NaN coordinates, e.g. from diverged weights) is zeros, as
    Matterport's per-level gather leaves it out; the other RoIs are unchanged."""
    maps, finite = pyramid_inputs(seed=5)
    boxes = finite.copy()
    boxes[0, 3] = np.nan
    boxes[1, 0, 2] = np.nan
    got = np.asarray(roi_align(maps, boxes, 3, IMAGE, use_fast_ops=fast))
    assert np.all(got[0, 3] == 0) and np.all(got[1, 0] == 0)
    reference = pyramid_reference(maps, finite, 3)
    keep = np.ones(boxes.shape[:2], bool)
    keep[0, 3] = keep[1, 0] = False
    np.testing.assert_allclose(got[keep], reference[keep], atol=1e-4)


@TF_ONLY
def test_roi_align_xla_dynamic_batch_and_gradients():
    import tensorflow as tf

    maps, boxes = pyramid_inputs(seed=4)
    ref = pyramid_reference(maps, boxes, 3)
    specs = [tf.TensorSpec([None, *m.shape[1:]]) for m in maps]
    fn = tf.function(lambda m, b: roi_align(m, b, 3, IMAGE), input_signature=[
        specs, tf.TensorSpec([None, 24, 4])])
    np.testing.assert_allclose(fn(maps, boxes).numpy(), ref, atol=1e-4)
    xla = tf.function(lambda m, b: roi_align(m, b, 3, IMAGE), jit_compile=True)
    np.testing.assert_allclose(xla(maps, boxes).numpy(), ref, atol=1e-4)
    tensors = [tf.constant(m) for m in maps]
    grads = []
    for fast in (False, True):
        with tf.GradientTape() as tape:
            tape.watch(tensors)
            loss = tf.reduce_sum(roi_align(tensors, boxes, 3, IMAGE, use_fast_ops=fast) ** 2)
        grads.append(tape.gradient(loss, tensors))
    for slow, fast in zip(*grads):
        np.testing.assert_allclose(tf.convert_to_tensor(slow).numpy(),
                                   tf.convert_to_tensor(fast).numpy(), atol=1e-4)
    assert float(tf.reduce_sum(tf.abs(grads[0][0]))) > 0


def test_pyramid_roi_align_layer_config_round_trip():
    layer = PyramidROIAlign(pool_shape=(7, 7), image_shape=(*IMAGE, 3), name="roi_align")
    config = layer.get_config()
    assert config["pool_shape"] == [7, 7] and config["image_shape"] == [*IMAGE, 3]
    clone = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(layer))
    assert isinstance(clone, PyramidROIAlign) and clone.get_config() == config
    maps, boxes = pyramid_inputs(seed=6, batch=1, rois=6)
    out = clone([boxes, *maps])
    assert tuple(out.shape) == (1, 6, 7, 7, 4)
    np.testing.assert_allclose(ops.convert_to_numpy(out),
                               ops.convert_to_numpy(roi_align(maps, boxes, 7, IMAGE)), atol=1e-5)
    inputs = [keras.Input((6, 4))] + [keras.Input(m.shape[1:]) for m in maps]
    model = keras.Model(inputs, PyramidROIAlign((3, 3), IMAGE)(inputs))
    assert tuple(model.output.shape) == (None, 6, 3, 3, 4)


JAX_SCRIPT = """
import json, sys
import numpy as np
import jax
import keras
from kseg.ops import compute_iou, crop_and_resize, non_max_suppression, roi_align
assert keras.backend.backend() == "jax"
d = {k: np.array(v, "float32") for k, v in json.loads(sys.stdin.read()).items()}
maps = [d["p2"], d["p3"], d["p4"], d["p5"]]
out = {
    "iou": compute_iou(d["nms_boxes"], d["nms_boxes"]),
    "crops": jax.jit(lambda i, b, k: crop_and_resize(i, b, k, (5, 4)))(
        d["images"], d["boxes"], d["idx"].astype("int32")),
    "nms": jax.jit(lambda b, s: non_max_suppression(b, s, 20, 0.5))(d["nms_boxes"], d["scores"]),
    "pooled": jax.jit(lambda m, b: roi_align(m, b, 3, (1024, 1024)))(maps, d["rois"]),
}
print(json.dumps({k: [np.asarray(x).tolist() for x in (v if isinstance(v, tuple) else [v])]
                  for k, v in out.items()}))
"""


@TF_ONLY
def test_fallbacks_under_jax_backend_subprocess():
    import tensorflow as tf

    rng = np.random.default_rng(9)
    images, boxes, idx = crop_inputs(seed=9)
    yx = rng.uniform(0, 0.5, (2, 50, 2)).astype("float32")
    nms_boxes = np.concatenate([yx, yx + rng.uniform(0.1, 0.5, (2, 50, 2))], -1)
    scores = np.stack([rng.permutation(50), rng.permutation(50)]).astype("float32") / 50
    maps, rois = pyramid_inputs(seed=9, batch=1, rois=8, c=2)
    data = dict(images=images, boxes=boxes, idx=idx, nms_boxes=nms_boxes, scores=scores,
                rois=rois, **{f"p{i + 2}": m for i, m in enumerate(maps)})
    env = dict(os.environ, KERAS_BACKEND="jax", JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(Path(__file__).parents[2]),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", JAX_SCRIPT], env=env, capture_output=True,
                          text=True, timeout=120,
                          input=json.dumps({k: v.tolist() for k, v in data.items()}))
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    a, b = nms_boxes[:, :, None].astype(np.float64), nms_boxes[:, None].astype(np.float64)
    inter = np.prod(np.maximum(np.minimum(a[..., 2:], b[..., 2:])
                               - np.maximum(a[..., :2], b[..., :2]), 0), -1)
    area = np.prod(nms_boxes[..., 2:] - nms_boxes[..., :2], -1)
    iou = inter / (area[:, :, None] + area[:, None] - inter)
    np.testing.assert_allclose(np.array(out["iou"][0]), iou, atol=1e-5)
    for k in range(2):
        ref = tf.image.non_max_suppression(nms_boxes[k], scores[k], 20, 0.5).numpy()
        assert out["nms"][1][k] == len(ref) > 3
        np.testing.assert_array_equal(out["nms"][0][k][: len(ref)], ref)
    ref = tf.image.crop_and_resize(images, boxes, idx, (5, 4)).numpy()
    np.testing.assert_allclose(np.array(out["crops"][0]), ref, atol=1e-4)
    np.testing.assert_allclose(np.array(out["pooled"][0]), pyramid_reference(maps, rois, 3),
                               atol=1e-4)
