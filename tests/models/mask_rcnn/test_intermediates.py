"""MaskRCNN's Matterport helpers: run_graph, mold/unmold, detect_molded, anchors, layers."""

import numpy as np
import pytest
from helpers import TinyConfig

from kseg.models.mask_rcnn.model import MaskRCNN


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return MaskRCNN("inference", TinyConfig(IMAGES_PER_GPU=1),
                    model_dir=tmp_path_factory.mktemp("logs"))


def _image(seed=0):
    rng = np.random.default_rng(seed)
    image = np.full((50, 80, 3), 40, np.uint8)
    image[10:30, 20:50] = rng.integers(150, 255, 3)
    return image


def test_run_graph_returns_named_intermediate_tensors(model):
    config = model.config
    out = model.run_graph([_image()], [
        ("proposals", model.ancestor("ROI").output),
        ("detections", model.ancestor("mrcnn_detection").output),
        ("masks", model.ancestor("mrcnn_mask").output),
    ])
    assert list(out) == ["proposals", "detections", "masks"]
    assert out["proposals"].shape == (1, config.POST_NMS_ROIS_INFERENCE, 4)
    assert out["detections"].shape == (1, config.DETECTION_MAX_INSTANCES, 6)
    boxes = out["proposals"][0]
    assert boxes.min() >= 0 and boxes.max() <= 1
    # the same numbers as the model's own outputs for the same molded input
    molded, metas, _ = model.mold_inputs([_image()])
    full = model.keras_model.predict_on_batch([molded, metas])
    np.testing.assert_allclose(out["detections"], np.asarray(full[0]), atol=1e-5)
    again = model.run_graph(molded, [("rois", model.ancestor("ROI").output)], metas)
    np.testing.assert_allclose(again["rois"], out["proposals"], atol=1e-6)
    with pytest.raises(ValueError, match="unique"):
        model.run_graph([_image()], [("a", model.ancestor("ROI").output)] * 2)


def test_mold_unmold_and_detect_molded_agree_with_detect(model):
    image = _image(1)
    molded, metas, windows = model.mold_inputs([image])
    assert molded.shape == (1, 64, 64, 3) and metas.shape == (1, model.config.IMAGE_META_SIZE)
    outputs = model.keras_model.predict_on_batch([molded, metas])
    boxes, class_ids, scores, masks = model.unmold_detections(
        np.asarray(outputs[0])[0], np.asarray(outputs[3])[0], image.shape, molded.shape[1:],
        windows[0])
    reference = model.detect([image])[0]
    np.testing.assert_array_equal(boxes, reference["rois"])
    np.testing.assert_array_equal(class_ids, reference["class_ids"])
    assert masks.shape[:2] == (50, 80)
    molded_results = model.detect_molded(molded, metas)[0]
    assert molded_results["masks"].shape[:2] == (64, 64)
    np.testing.assert_allclose(molded_results["scores"], scores, atol=1e-6)
    assert (molded_results["rois"] <= 64).all()


def test_anchors_and_trainable_layers(model):
    anchors = model.get_anchors()
    config = model.config
    per_level = [int(np.ceil(64 / s)) ** 2 * len(config.RPN_ANCHOR_RATIOS)
                 for s in config.BACKBONE_STRIDES]
    assert anchors.shape == (sum(per_level), 4)
    # first anchor: scale 8, ratio 0.5, centred on pixel (0, 0) of the stride-4 grid
    h, w = 8 / np.sqrt(0.5), 8 * np.sqrt(0.5)
    expected = np.array([-h / 2, -w / 2, h / 2 - 1, w / 2 - 1]) / 63
    np.testing.assert_allclose(anchors[0], expected, atol=1e-5)
    assert model.get_anchors((128, 128, 3)).shape[0] == 4 * anchors.shape[0]
    names = [layer.name for layer in model.get_trainable_layers()]
    assert "rpn_model" in names and "mrcnn_mask" in names and "ROI" not in names
    trainer = MaskRCNN("training", TinyConfig(), model_dir=model.model_dir)
    trainer.set_trainable("heads")
    frozen = {layer.name for layer in trainer.get_trainable_layers() if not layer.trainable}
    assert frozen and all(not name.startswith(("mrcnn_", "rpn_", "fpn_")) for name in frozen)
    trainer.set_trainable("all")
    assert all(layer.trainable for layer in trainer.get_trainable_layers())
