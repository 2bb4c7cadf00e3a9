"""Backbone registry: strides must agree with BACKBONE_STRIDES (or a clear ConfigError),
COMPUTE_BACKBONE_SHAPE is checked against them, resnet50/101 stay Matterport-sized."""

import keras
import numpy as np
import pytest
from helpers import TinyConfig

from kseg.config import ConfigError
from kseg.models.mask_rcnn.backbones import (
    BACKBONES,
    build_backbone,
    get_backbone,
    register_backbone,
    resnet_tiny_graph,
)


@pytest.fixture
def registered():
    names = []

    def register(name, fn, strides):
        names.append(name)
        return register_backbone(name, fn, strides)

    yield register
    for name in names:
        BACKBONES.pop(name, None)


def _stride2_tiny(image, train_bn, filters):
    """resnet_tiny on a 2x upsampled image: C2..C5 at strides 2, 4, 8, 16."""
    return resnet_tiny_graph(keras.layers.UpSampling2D(2)(image), train_bn, filters)


def test_registered_strides_other_than_the_configs_are_refused(registered):
    registered("tiny_s2", _stride2_tiny, strides=(2, 4, 8, 16, 32))
    with pytest.raises(ConfigError, match=r"BACKBONE_STRIDES = \[2, 4, 8, 16, 32\]"):
        build_backbone(keras.Input((64, 64, 3)), TinyConfig(BACKBONE="tiny_s2"))
    features, strides = build_backbone(keras.Input((64, 64, 3)), TinyConfig(
        BACKBONE="tiny_s2", BACKBONE_STRIDES=[2, 4, 8, 16, 32]))
    assert strides == (2, 4, 8, 16, 32)
    assert [tuple(f.shape[1:3]) for f in features] == [(32, 32), (16, 16), (8, 8), (4, 4)]


def test_outputs_that_do_not_have_the_registered_strides_are_refused(registered):
    registered("tiny_lies", _stride2_tiny, strides=(4, 8, 16, 32, 64))
    with pytest.raises(ConfigError, match=r"strides \[2, 4, 8, 16\]"):
        build_backbone(keras.Input((64, 64, 3)), TinyConfig(BACKBONE="tiny_lies"))


def test_compute_backbone_shape_must_agree_with_the_strides():
    def shapes(image_shape):
        return [[int(np.ceil(image_shape[0] / s))] * 2 for s in (4, 8, 16, 32, 64)]

    config = TinyConfig(COMPUTE_BACKBONE_SHAPE=shapes)
    assert config.BACKBONE_SHAPES.tolist() == shapes(config.IMAGE_SHAPE)
    with pytest.raises(ConfigError, match="COMPUTE_BACKBONE_SHAPE"):
        TinyConfig(COMPUTE_BACKBONE_SHAPE=lambda image_shape: [[8, 8]] * 5)


@pytest.mark.parametrize("name", ["resnet50", "resnet101"])
def test_resnets_stay_matterport_sized_whatever_backbone_filters_says(name):
    fn, _ = get_backbone(name)
    c1, c2, c3, c4, c5 = fn(keras.Input((64, 64, 3)), False, 4)
    assert [c.shape[-1] for c in (c1, c2, c3, c4, c5)] == [64, 256, 512, 1024, 2048]
