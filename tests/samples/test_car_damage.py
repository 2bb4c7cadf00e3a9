"""samples/car_damage: a few training steps on the real car-damage photos at 64x64."""

import json

import numpy as np
import pytest
from sample_module import load_sample

TINY = {"BACKBONE_FILTERS": 8, "TOP_DOWN_PYRAMID_SIZE": 16, "RPN_CONV_FILTERS": 16,
        "FPN_CLASSIF_FC_LAYERS_SIZE": 32, "MASK_HEAD_FILTERS": 16, "IMAGES_PER_GPU": 2,
        "RPN_ANCHOR_SCALES": [4, 8, 16, 32, 64], "PRE_NMS_LIMIT": 256,
        "POST_NMS_ROIS_TRAINING": 64, "TRAIN_ROIS_PER_IMAGE": 16}
LOSSES = ("rpn_class_loss", "rpn_bbox_loss", "mrcnn_class_loss", "mrcnn_bbox_loss",
          "mrcnn_mask_loss")




@pytest.mark.data
def test_multiclass_subsets_share_class_order(car_damage_dir):
    sample = load_sample("car_damage")
    train = sample.load_subset(car_damage_dir, "train", multiclass=True)
    val = sample.load_subset(car_damage_dir, "val", True, train.class_names[1:])
    assert train.class_names == val.class_names
    assert train.class_names[1:] == ["door", "front_bumper", "headlamp", "hood", "rear_bumper"]
    assert sample.load_subset(car_damage_dir, "train").class_names == ["BG", "damage"]


@pytest.mark.data
@pytest.mark.slow
def test_few_steps_on_real_images_give_finite_losses(car_damage_dir, tmp_path):
    sample = load_sample("car_damage")
    histories = sample.main(["train", "--dataset", str(car_damage_dir), "--weights", "none",
                             "--epochs-all", "1", "--steps", "2", "--image-size", "64",
                             "--no-augment", "--logs", str(tmp_path), "--verbose", "0",
                             "--config", json.dumps(TINY)])
    history = histories[-1].history
    for name in LOSSES:
        assert np.isfinite(history[name][-1]), (name, history[name])
    assert list(tmp_path.glob("damage*/mask_rcnn_damage_0001.h5"))
    config = json.loads(next(tmp_path.glob("damage*/config.json")).read_text())
    assert config["CLASS_NAMES"] == ["BG", "damage"] and config["IMAGE_MAX_DIM"] == 64
