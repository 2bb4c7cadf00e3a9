"""kseg.Config: Matterport attributes, derived values, validation, serialization."""

import json

import numpy as np
import pytest

import kseg
from kseg.config import ConfigError


class BalloonConfig(kseg.MaskRCNNConfig):
    """A Matterport sample's config, ported by changing the import."""

    NAME = "balloon"
    IMAGES_PER_GPU = 2
    NUM_CLASSES = 1 + 1
    STEPS_PER_EPOCH = 100
    DETECTION_MIN_CONFIDENCE = 0.9


def test_matterport_subclass_ports_and_derives_values():
    config = BalloonConfig()
    assert config.BATCH_SIZE == 2
    np.testing.assert_array_equal(config.IMAGE_SHAPE, [1024, 1024, 3])
    assert config.IMAGE_META_SIZE == 1 + 3 + 3 + 4 + 1 + 2
    np.testing.assert_array_equal(config.BACKBONE_SHAPES[0], [256, 256])
    assert config.BACKBONE == "resnet101" and config.POST_NMS_ROIS_TRAINING == 2000
    assert config.MASK_SHAPE == [28, 28] and config.RPN_ANCHOR_RATIOS == [0.5, 1, 2]


def test_crop_mode_uses_min_dim():
    config = BalloonConfig(IMAGE_RESIZE_MODE="crop", IMAGE_MIN_DIM=512)
    np.testing.assert_array_equal(config.IMAGE_SHAPE, [512, 512, 3])


@pytest.mark.parametrize("overrides, attribute", [
    ({"NUM_CLASSES": 1}, "NUM_CLASSES"),
    ({"IMAGE_MAX_DIM": 1000}, "IMAGE_MAX_DIM"),
    ({"LEARNING_RATE": -0.1}, "LEARNING_RATE"),
    ({"IMAGE_RESIZE_MODE": "stretch"}, "IMAGE_RESIZE_MODE"),
    ({"MASK_SHAPE": [32, 32]}, "MASK_SHAPE"),
    ({"RPN_ANCHOR_SCALES": (32, 64)}, "RPN_ANCHOR_SCALES"),
])
def test_validation_names_the_attribute_and_what_is_allowed(overrides, attribute):
    with pytest.raises(ConfigError) as error:
        BalloonConfig(**overrides)
    assert attribute in str(error.value) and "expected" in str(error.value)


def test_unknown_resize_mode_lists_the_allowed_values():
    with pytest.raises(ConfigError, match="square, pad64, crop, none"):
        kseg.Config(NUM_CLASSES=2, IMAGE_RESIZE_MODE="stretch")


def test_lower_case_override_is_rejected():
    with pytest.raises(ConfigError, match="UPPER_CASE"):
        kseg.Config(num_classes=3)


def test_json_round_trip(tmp_path):
    config = BalloonConfig(LEARNING_RATE=0.002)
    path = config.to_json(tmp_path / "config.json")
    data = json.loads(open(path).read())
    assert data["LEARNING_RATE"] == 0.002 and data["NAME"] == "balloon"
    again = BalloonConfig.from_json(path)
    assert again.to_dict() == config.to_dict()
    assert kseg.MaskRCNNConfig.from_dict(config.to_dict()).DETECTION_MIN_CONFIDENCE == 0.9


def test_display_prints_every_attribute(capsys):
    BalloonConfig().display()
    out = capsys.readouterr().out
    assert "DETECTION_MIN_CONFIDENCE" in out and "BATCH_SIZE" in out


def test_semantic_configs_validate_their_fields():
    assert kseg.FCNConfig(NUM_CLASSES=2).FCN_VARIANT == "fcn8s"
    with pytest.raises(ConfigError, match="FCN_VARIANT"):
        kseg.FCNConfig(NUM_CLASSES=2, FCN_VARIANT="fcn4s")
    with pytest.raises(ConfigError, match="OUTPUT_ACTIVATION"):
        kseg.UNetConfig(NUM_CLASSES=3, OUTPUT_ACTIVATION="sigmoid")
    with pytest.raises(ConfigError, match="LOSS"):
        kseg.UNetConfig(NUM_CLASSES=2, LOSS="ce+hinge")


def test_unet_foreground_prior_is_checked():
    from kseg.config import ConfigError, UNetConfig

    UNetConfig(NUM_CLASSES=2, UNET_FOREGROUND_PRIOR=0.05).validate()
    for bad in ({"UNET_FOREGROUND_PRIOR": 1.5}, {"UNET_FOREGROUND_PRIOR": 0.05, "NUM_CLASSES": 3}):
        with pytest.raises(ConfigError, match="UNET_FOREGROUND_PRIOR"):
            UNetConfig(**{"NUM_CLASSES": 2, **bad}).validate()
