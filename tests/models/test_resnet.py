"""The one ResNet: widths and strides of C1..C5 at every depth, Matterport's names and C1,
one block definition for both styles, and one registry for FCN, U-Net and Mask R-CNN."""

import keras
import pytest

from kseg.models.backbones import BACKBONES, ENCODERS, register_backbone
from kseg.models.backbones.resnet import resnet, resnet_graph, stage_outputs
from kseg.models.unet import UNet


@pytest.mark.parametrize("depth, widths", [(18, [4, 4, 8, 16, 32]), (34, [4, 4, 8, 16, 32]),
                                           (50, [4, 16, 32, 64, 128])])
def test_stage_outputs_have_their_strides_and_widths(depth, widths):
    image = keras.Input((64, 64, 3))
    model = keras.Model(image, resnet(image, depth, width=0.0625))
    assert [tuple(c.shape[1:]) for c in model.outputs] == [
        (64 // s, 64 // s, w) for s, w in zip((2, 4, 8, 16, 32), widths)]
    assert [t.name for t in model.outputs] == [model.get_layer(n).output.name
                                                for n in stage_outputs(depth)]


def test_matterport_graph_keeps_its_names_and_c1():
    image = keras.Input((64, 64, 3))
    c1, c2, c3, c4, c5 = resnet_graph(image, "resnet50", stage5=True, train_bn=False,
                                      filters=4)
    assert tuple(c1.shape[1:3]) == (16, 16)  # Matterport's C1: after the max pool
    model = keras.Model(image, c5)
    names = {layer.name for layer in model.layers if layer.weights}
    assert {"conv1", "bn_conv1", "res2a_branch1", "bn2a_branch1", "res4f_branch2c",
            "bn5c_branch2c"} <= names
    assert all(n in ("conv1", "bn_conv1") or n.startswith(("res", "bn")) for n in names)
    assert model.get_layer("bn_conv1").frozen and model.get_layer("bn_conv1").epsilon == 1e-3
    assert resnet_graph(image, "resnet50", stage5=False, filters=4)[4] is None


def test_one_registry_serves_every_model():
    from kseg.models.mask_rcnn import backbones as mask_rcnn

    assert mask_rcnn.register_backbone is register_backbone and mask_rcnn.BACKBONES is BACKBONES
    assert BACKBONES["resnet50"].fn is not None and "resnet50" in ENCODERS
    fn, strides = BACKBONES["resnet_tiny"]  # how Mask R-CNN's registry was read
    assert callable(fn) and strides == (4, 8, 16, 32, 64) and "resnet_tiny" not in ENCODERS


def test_a_registered_encoder_builds_a_unet():
    def encoder(x, width=1.0):
        return resnet(x, 18, width)[-1]

    register_backbone("my_resnet18", encoder=encoder, skips=stage_outputs(18),
                      skip_strides=(2, 4, 8, 16, 32), fcn_taps=stage_outputs(18)[2:])
    try:
        model = UNet(2, base_filters=4, backbone="my_resnet18", encoder_width=0.0625)
        assert model.output.shape[1:] == (None, None, 2)
        assert "res5b_out" in [layer.name for layer in model.layers]
    finally:
        BACKBONES.pop("my_resnet18")
    with pytest.raises(ValueError, match="my_resnet18"):
        UNet(2, backbone="my_resnet18")
