"""Matterport-layout .h5 files load into the kseg Mask R-CNN by layer name."""

import numpy as np
from helpers import TinyConfig

from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.saving.matterport_h5 import fixture_from_model

FINE_TUNE_EXCLUDE = ["mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox", "mrcnn_mask"]


def _config(**kw):
    return TinyConfig(BACKBONE="resnet50", BACKBONE_FILTERS=4, DETECTION_MIN_CONFIDENCE=0.0,
                      TRAIN_BN=False, **kw)


def _outputs(model, seed=0):
    rng = np.random.default_rng(seed)
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    from kseg.models.mask_rcnn.inference import mold_inputs

    molded, metas, _ = mold_inputs(images, model.config)
    return [np.asarray(o) for o in model.keras_model.predict_on_batch([molded, metas])]


def test_fixture_loads_into_the_right_variables(tmp_path):
    source = MaskRCNN("inference", _config(), tmp_path)
    written = fixture_from_model(source.keras_model, tmp_path / "coco_like.h5",
                                 rng=np.random.default_rng(1))
    target = MaskRCNN("training", _config(), tmp_path)
    report = target.load_weights(tmp_path / "coco_like.h5", by_name=True)
    assert not report.skipped
    model = target.keras_model
    np.testing.assert_array_equal(model.get_layer("conv1").kernel.numpy(),
                                  written["conv1/conv1/kernel:0"])
    np.testing.assert_array_equal(
        model.get_layer("mrcnn_class_bn1").layer.moving_variance.numpy(),
        written["mrcnn_class_bn1/mrcnn_class_bn1/moving_variance:0"])
    rpn = model.get_layer("rpn_model").get_layer("rpn_bbox_pred")
    np.testing.assert_array_equal(rpn.bias.numpy(), written["rpn_model/rpn_bbox_pred/bias:0"])


def test_loaded_model_matches_model_with_variables_set_directly(tmp_path):
    source = MaskRCNN("inference", _config(), tmp_path)
    fixture_from_model(source.keras_model, tmp_path / "w.h5", rng=np.random.default_rng(2))
    direct = MaskRCNN("inference", _config(), tmp_path)
    source.load_weights(tmp_path / "w.h5", by_name=True)
    direct.keras_model.set_weights(source.keras_model.get_weights())
    loaded = MaskRCNN("inference", _config(), tmp_path)
    loaded.load_weights(tmp_path / "w.h5", by_name=True)
    for a, b in zip(_outputs(direct), _outputs(loaded)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_fine_tune_exclude_with_another_class_count(tmp_path):
    coco = MaskRCNN("inference", _config(NUM_CLASSES=6), tmp_path)
    fixture_from_model(coco.keras_model, tmp_path / "coco.h5")
    mine = MaskRCNN("training", _config(NUM_CLASSES=2), tmp_path)
    try:
        mine.load_weights(tmp_path / "coco.h5", by_name=True)
        raise AssertionError("a class-count mismatch must raise")
    except ValueError as e:
        assert "mrcnn_class_logits" in str(e) and "exclude" in str(e)
    report = mine.load_weights(tmp_path / "coco.h5", by_name=True, exclude=FINE_TUNE_EXCLUDE)
    assert {"mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_mask"} <= set(report.skipped)
    assert "res5c_branch2c" in report.loaded and "rpn_model" in report.loaded


def test_imagenet_resnet50_layout_loads_the_backbone_only(tmp_path):
    """fchollet's resnet50 notop file: backbone groups only, same names as Matterport's."""
    source = MaskRCNN("inference", _config(), tmp_path).keras_model
    backbone = [layer for layer in source.layers if layer.name.startswith(("conv1", "bn_conv1",
                                                                           "res", "bn"))]
    from kseg.saving.legacy_h5 import legacy_weights
    from kseg.saving.matterport_h5 import legacy_weight_names, write_matterport_fixture

    rng = np.random.default_rng(5)
    groups = []
    for layer in backbone:
        arrays = [rng.uniform(0.5, 1.5, v.shape).astype("float32") for v in legacy_weights(layer)]
        groups.append((layer.name, list(zip(legacy_weight_names(layer), arrays))))
    write_matterport_fixture(tmp_path / "resnet50_notop.h5", groups, full_model=True)
    target = MaskRCNN("training", _config(), tmp_path)
    report = target.load_weights(tmp_path / "resnet50_notop.h5", by_name=True)
    assert "res5c_branch2c" in report.loaded and "mrcnn_mask" not in report.loaded
    np.testing.assert_array_equal(target.keras_model.get_layer("res3a_branch1").kernel.numpy(),
                                  dict(groups)["res3a_branch1"][0][1])
