"""Any image size, every resize mode: RoIAlign levels from the run-time image shape,
proposals when there are fewer anchors than PRE_NMS_LIMIT, detect and a train step in
square / pad64 / none / crop on non-square images, on TensorFlow, JAX and PyTorch."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
import sizes_script
from keras import ops

from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.proposals import ProposalLayer
from kseg.ops import PyramidROIAlign, roi_align

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]


def _pyramid(h, w, channels=2, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.random((1, h // s, w // s, channels)).astype("float32") for s in (4, 8, 16, 32)]


def _boxes(seed=0, rois=12):
    rng = np.random.default_rng(seed)
    yx = rng.uniform(0.0, 0.5, (1, rois, 2))
    hw = np.exp(rng.uniform(np.log(0.02), np.log(0.5), (1, rois, 2)))
    return np.concatenate([yx, yx + hw], -1).astype("float32")


def test_roi_align_levels_follow_the_image_fed_at_run_time():
    """A dynamic-size input: the level rule uses the image actually fed (here 128x448),
    not a build-time size; Matterport reads it from image_meta, which works too."""
    image = keras.Input((None, None, 3))
    boxes = keras.Input((12, 4))
    maps = [keras.Input((None, None, 2)) for _ in range(4)]
    model = keras.Model([boxes, image, *maps],
                        PyramidROIAlign((3, 3))([boxes, image, *maps]))
    h, w = 128, 448
    fmaps, rois = _pyramid(h, w), _boxes()
    out = model.predict([rois, np.zeros((1, h, w, 3), "float32"), *fmaps], verbose=0)
    expected = ops.convert_to_numpy(roi_align(fmaps, rois, 3, (h, w)))
    wrong = ops.convert_to_numpy(roi_align(fmaps, rois, 3, (64, 64)))
    assert np.abs(expected - wrong).max() > 0.1  # the sizes pick different levels here
    np.testing.assert_allclose(out, expected, atol=1e-5)
    meta = np.zeros((1, 16), "float32")
    meta[0, 4:7] = [h, w, 3]
    by_meta = PyramidROIAlign((3, 3))([rois, meta, *fmaps])
    np.testing.assert_allclose(ops.convert_to_numpy(by_meta), expected, atol=1e-5)


def test_inference_model_pools_pad64_images_at_their_own_level(tmp_path):
    """pad64 model built with IMAGE_MAX_DIM 64, fed 128x192: RoIAlign inside the model
    equals roi_align with the image's own size."""
    model = MaskRCNN("inference", sizes_script.mode_config("pad64"), tmp_path)
    km = model.keras_model
    names = ["ROI", "fpn_p2", "fpn_p3", "fpn_p4", "fpn_p5", "roi_align_classifier"]
    probe = keras.Model(km.inputs, [km.get_layer(n).output for n in names])
    image = np.random.default_rng(0).integers(0, 255, (128, 192, 3)).astype(np.uint8)
    molded, metas, _ = model.mold_inputs([image])
    assert molded.shape[1:3] == (128, 192)
    rois, *maps, pooled = probe.predict([molded, metas], verbose=0)
    expected = ops.convert_to_numpy(roi_align(maps, rois, 7, (128, 192)))
    np.testing.assert_allclose(pooled, expected, atol=1e-4)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="traces a tf.function")
def test_proposals_with_fewer_anchors_than_pre_nms_limit():
    """Anchors known only at run time and fewer than PRE_NMS_LIMIT (a small pad64 image)."""
    import tensorflow as tf

    layer = ProposalLayer(proposal_count=6, nms_threshold=0.7, pre_nms_limit=50)
    specs = [tf.TensorSpec((None, None, n), tf.float32) for n in (2, 4, 4)]
    dynamic = tf.function(lambda *x: layer(*x), input_signature=specs)  # A unknown when traced
    rng = np.random.default_rng(0)
    yx = rng.uniform(0, 0.6, (1, 5, 2))
    anchors = np.concatenate([yx, yx + 0.3], -1).astype("float32")
    scores = rng.random((1, 5)).astype("float32")
    probs = np.stack([1 - scores, scores], -1)
    out = dynamic(probs, np.zeros((1, 5, 4), "float32"), anchors).numpy()
    static = ops.convert_to_numpy(layer(probs, np.zeros((1, 5, 4), "float32"), anchors))
    np.testing.assert_allclose(out, static, atol=1e-6)
    real = out[0][np.abs(out[0]).sum(-1) > 0]
    assert 1 <= len(real) <= 5 and np.all(real[:, 2:] > real[:, :2])
    np.testing.assert_array_equal(out[0, 5], 0)  # padding after the 5 anchors' proposals


@pytest.mark.parametrize("mode,train_hw,detect_hw", sizes_script.CASES)
def test_detect_and_train_step_in_every_resize_mode(tmp_path, mode, train_hw, detect_hw):
    out = sizes_script.run_case(mode, train_hw, detect_hw, str(tmp_path))
    _check_case(mode, train_hw, detect_hw, out)


def _check_case(mode, train_hw, detect_hw, out):
    assert all(np.isfinite(out["losses"])) and all(v >= 0 for v in out["losses"]), out
    assert out["masks"] == list(detect_hw)
    assert out["rois"][1] == 4 and out["rois"][0] <= 8
    expected_input = {"square": [64, 64], "crop": [64, 64]}.get(mode, list(train_hw))
    assert out["input"] == expected_input


def _available(module):
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is not installed; the dev extra installs it")
        pytest.skip(f"{module} is not installed")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_every_resize_mode_on_backend(tmp_path, backend):
    _available(backend)
    # JAX compiles every model (slow on 2 cores): square is covered by test_backends.py.
    modes = "pad64,none,crop" if backend == "jax" else "square,pad64,none,crop"
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               PYTHONPATH=os.pathsep.join([str(ROOT), str(HERE),
                                           os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, str(HERE / "sizes_script.py"), str(tmp_path), modes],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["backend"] == backend
    for mode, train_hw, detect_hw in sizes_script.CASES:
        if mode in modes.split(","):
            _check_case(mode, train_hw, detect_hw, out[mode])
