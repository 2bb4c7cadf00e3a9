"""The whole Mask R-CNN: training steps lower all five losses, detect returns scaled results."""

import os

import numpy as np
import pytest
from helpers import TinyConfig

from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.training import LOSS_NAMES

HERE = os.path.dirname(__file__)


def _loss_curve(model, batch, steps):
    keras_model = model.keras_model
    curve = []
    for _ in range(steps):
        keras_model.reset_metrics()
        logs = keras_model.train_on_batch(batch, return_dict=True)
        curve.append({k: float(logs[k]) for k in LOSS_NAMES})
    return curve


def _assert_losses_fall(curve):
    for name in LOSS_NAMES:
        values = [c[name] for c in curve]
        assert np.all(np.isfinite(values)), name
        assert np.mean(values[-3:]) < np.mean(values[:3]), (name, values)


def test_training_lowers_all_five_losses_on_shapes(tmp_path):
    config = TinyConfig()
    dataset = ShapesDataset(4, 64, 64, seed=3)
    batch, _ = build_batch(dataset, config, [0, 1], rng=np.random.default_rng(0))
    model = MaskRCNN("training", config, model_dir=tmp_path)
    model.compile(3e-3)
    _assert_losses_fall(_loss_curve(model, batch, 25))


def test_train_writes_checkpoints_and_resumes_epoch(tmp_path):
    config = TinyConfig()
    dataset = ShapesDataset(8, 64, 64, seed=4)
    model = MaskRCNN("training", config, model_dir=tmp_path)
    history = model.train(dataset, None, learning_rate=1e-3, epochs=2, layers="all", verbose=0)
    assert len(history.history["loss"]) == 2
    last = model.find_last()
    assert last.endswith("mask_rcnn_tiny_0002.h5")
    resumed = MaskRCNN("training", config, model_dir=tmp_path)
    report = resumed.load_weights(last, by_name=True)
    assert resumed.epoch == 2 and not report.skipped
    history = resumed.train(dataset, None, learning_rate=1e-3, epochs=3, layers="heads",
                            verbose=0)
    assert history.epoch == [2]
    assert resumed.find_last().endswith("mask_rcnn_tiny_0003.h5")
    frozen = [layer.name for layer in resumed.keras_model.layers
              if layer.weights and not layer.trainable]
    assert "stem_conv1" in frozen and "mrcnn_mask" not in frozen


def test_detect_images_of_any_size_and_count(tmp_path):
    config = TinyConfig(DETECTION_MIN_CONFIDENCE=0.0)
    train = MaskRCNN("training", config, model_dir=tmp_path)
    path = train.save_weights(str(tmp_path / "w.h5"))
    model = MaskRCNN("inference", config, model_dir=tmp_path)
    model.load_weights(path, by_name=True)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
              for h, w in [(50, 80), (120, 90), (64, 64)]]
    results = model.detect(images)
    assert len(results) == 3
    for image, r in zip(images, results):
        n = len(r["class_ids"])
        assert r["rois"].shape == (n, 4) and r["scores"].shape == (n,)
        assert r["masks"].shape == image.shape[:2] + (n,) and r["masks"].dtype == bool
        if n:
            assert r["rois"][:, [2]].max() <= image.shape[0]
            assert r["rois"][:, [3]].max() <= image.shape[1]
            assert set(r["class_ids"]) <= {1, 2, 3}


def test_detect_boxes_are_scaled_back_to_the_original_image(tmp_path):
    """A molded detection maps back through the window and scale to original pixels."""
    from kseg.models.mask_rcnn.inference import mold_inputs, unmold_detections

    config = TinyConfig()
    image = np.zeros((32, 16, 3), np.uint8)  # scaled x2 to 64x32, padded left/right by 16
    molded, metas, windows = mold_inputs([image], config)
    np.testing.assert_array_equal(windows[0], [0, 16, 64, 48])
    det = np.zeros((2, 6), np.float32)
    # a box covering the molded window exactly, normalized as norm_boxes does
    det[0] = [0 / 63, 16 / 63, 63 / 63, 47 / 63, 1, 0.9]
    masks = np.ones((2, 14, 14, 4), np.float32)
    r = unmold_detections(det, masks, image.shape, molded.shape[1:], windows[0])
    np.testing.assert_array_equal(r["rois"], [[0, 0, 32, 16]])
    assert r["masks"].shape == (32, 16, 1) and r["masks"].all()


@pytest.mark.parametrize("mode", ["training", "inference"])
def test_matterport_layer_names_are_present(tmp_path, mode):
    config = TinyConfig(BACKBONE="resnet50", BACKBONE_FILTERS=4)
    model = MaskRCNN(mode, config, model_dir=tmp_path).keras_model
    names = {layer.name for layer in model.layers}
    for name in ["conv1", "bn_conv1", "res2a_branch2a", "res4f_branch2c", "res5c_branch2c",
                 "fpn_c5p5", "fpn_p2", "rpn_model", "mrcnn_class_conv1", "mrcnn_class_bn2",
                 "mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask_deconv", "mrcnn_mask"]:
        assert name in names, name
    rpn = model.get_layer("rpn_model")
    assert [layer.name for layer in rpn.layers if layer.weights] == [
        "rpn_conv_shared", "rpn_class_raw", "rpn_bbox_pred"]


def test_training_lowers_all_five_losses_on_car_damage(tmp_path, car_damage_dir):
    from kseg.data import load_via

    dataset = load_via(car_damage_dir, "train")
    config = TinyConfig(NUM_CLASSES=2, IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128,
                        MINI_MASK_SHAPE=(28, 28))
    batch, _ = build_batch(dataset, config, [0, 1], rng=np.random.default_rng(0))
    assert batch["input_gt_class_ids"].max() == 1
    model = MaskRCNN("training", config, model_dir=tmp_path)
    model.compile(3e-3)
    _assert_losses_fall(_loss_curve(model, batch, 40))
