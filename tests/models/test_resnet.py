"""The one ResNet: widths and strides of C1..C5 at every depth, Matterport's names and C1,
one block definition for both styles, and one registry for FCN, U-Net and Mask R-CNN."""

import keras
import pytest

from kseg.models.backbones import BACKBONES, ENCODERS, register_backbone
from kseg.models.backbones.resnet import resnet, resnet_graph, stage_dilations, stage_outputs
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


def test_stage_dilations_follow_torchvision():
    counts = (3, 4, 6, 3)
    assert stage_dilations(counts, 32) == [(1, [1] * 3), (2, [1] * 4), (2, [1] * 6), (2, [1] * 3)]
    # replace_stride_with_dilation=[False, True, True]: a dilated stage's first block keeps
    # the previous dilation
    assert stage_dilations(counts, 8) == [(1, [1] * 3), (2, [1] * 4), (1, [1] + [2] * 5),
                                          (1, [2, 4, 4])]
    assert stage_dilations(counts, 16)[3] == (1, [1, 2, 2])
    with pytest.raises(ValueError, match="output_stride"):
        stage_dilations(counts, 4)


@pytest.mark.parametrize("depth", [34, 50])
@pytest.mark.parametrize("output_stride", [16, 8])
def test_dilated_resnet_keeps_weights_and_resolution(depth, output_stride):
    """Dilated stages: C4 / C5 at the output stride, the same variables (names, shapes)
    as the strided network, the dilation on the 3x3 convolutions only, and different
    numbers (not a no-op)."""
    import numpy as np

    image = keras.Input((64, 64, 3))
    strided = keras.Model(image, resnet(image, depth, width=0.0625))
    image2 = keras.Input((64, 64, 3))
    dilated = keras.Model(image2, resnet(image2, depth, width=0.0625,
                                         output_stride=output_stride))
    strides = (2, 4, 8, min(16, output_stride), output_stride)
    assert [tuple(c.shape[1:3]) for c in dilated.outputs] == [(64 // s, 64 // s) for s in strides]
    assert [(w.path, w.shape) for w in dilated.weights] == [
        (w.path, w.shape) for w in strided.weights]
    dilations = {layer.name: layer.dilation_rate for layer in dilated.layers
                 if isinstance(layer, keras.layers.Conv2D)}
    # res5c_branch2b: the bottleneck's 3x3, the basic block's second 3x3
    assert dilations["res5c_branch2b"] == ((4, 4) if output_stride == 8 else (2, 2))
    assert dilations["res4b_branch2b"] == ((2, 2) if output_stride == 8 else (1, 1))
    assert dilations["res5a_branch1"] == (1, 1) and dilations["res3a_branch1"] == (1, 1)
    dilated.set_weights(strided.get_weights())
    x = np.random.default_rng(0).normal(size=(1, 64, 64, 3)).astype("float32")
    c3_strided, c3_dilated = strided.predict(x, verbose=0)[2], dilated.predict(x, verbose=0)[2]
    np.testing.assert_allclose(c3_dilated, c3_strided, rtol=1e-5, atol=1e-5)  # stages 2-3 alike


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
