"""FCN-32s/16s/8s: shapes, Long's layer graph, bilinear upsampling, save/load."""

import keras
import numpy as np
import pytest

from kseg.config import FCNConfig
from kseg.models.fcn import FCN, build_fcn, upsample
from kseg.models.semantic_layers import BilinearUpsampling, bilinear_kernel

TINY = dict(encoder_width=0.0625, fc_filters=8)


def _images(height, width, batch=1, seed=0):
    return np.random.default_rng(seed).uniform(0, 255, (batch, height, width, 3)).astype("float32")


def _inbound(model, name):
    """Names of the layers feeding layer `name`."""
    node = model.get_layer(name)._inbound_nodes[0]
    return [t._keras_history.operation.name for t in node.input_tensors]


@pytest.mark.parametrize("variant", ["fcn32s", "fcn16s", "fcn8s"])
def test_output_has_input_size(variant):
    model = FCN(variant, num_classes=3, **TINY)
    for height, width in [(64, 96), (32, 32), (50, 70)]:  # last one: padded inside the model
        probs = model.predict(_images(height, width, batch=2), verbose=0)
        assert probs.shape == (2, height, width, 3)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_fcn8s_fuses_pool4_and_pool3_scores_by_sum():
    model = FCN("fcn8s", num_classes=2, **TINY)
    assert isinstance(model.get_layer("fuse_pool4"), keras.layers.Add)
    assert sorted(_inbound(model, "fuse_pool4")) == ["score_pool4", "upscore2"]
    assert sorted(_inbound(model, "fuse_pool3")) == ["score_pool3", "upscore_pool4"]
    assert _inbound(model, "score_pool4") == ["block4_pool"]
    assert _inbound(model, "score_pool3") == ["block3_pool"]
    assert _inbound(model, "score_fr") == ["drop7"]
    assert _inbound(model, "upscore8") == ["fuse_pool3"]
    assert model.get_layer("fc6").kernel.shape == (7, 7, 32, 8)


def test_fcn32s_and_16s_graphs():
    fcn32 = FCN("fcn32s", num_classes=2, **TINY)
    assert _inbound(fcn32, "upscore") == ["score_fr"]
    assert not any(isinstance(layer, keras.layers.Add) for layer in fcn32.layers)
    fcn16 = FCN("fcn16s", num_classes=2, **TINY)
    assert _inbound(fcn16, "upscore16") == ["fuse_pool4"]
    assert "score_pool3" not in [layer.name for layer in fcn16.layers]


def test_bilinear_kernel_values():
    np.testing.assert_allclose(bilinear_kernel(4), [0.25, 0.75, 0.75, 0.25])
    np.testing.assert_allclose(bilinear_kernel(3), [0.5, 1.0, 0.5])
    kernel = keras.ops.convert_to_numpy(BilinearUpsampling()((4, 4, 2, 2)))
    assert kernel[:, :, 0, 1].sum() == 0 and kernel[:, :, 0, 0].sum() == pytest.approx(4.0)


def numpy_bilinear(image, factor):
    """Half-pixel (align_corners=False) bilinear resize of [H, W] by an integer factor."""
    def axis_weights(size):
        coords = (np.arange(size * factor) + 0.5) / factor - 0.5
        low = np.floor(coords).astype(int)
        frac = coords - low
        matrix = np.zeros((size * factor, size))
        for row, (i, f) in enumerate(zip(low, frac)):
            matrix[row, np.clip(i, 0, size - 1)] += 1 - f
            matrix[row, np.clip(i + 1, 0, size - 1)] += f
        return matrix
    return axis_weights(image.shape[0]) @ image @ axis_weights(image.shape[1]).T


@pytest.mark.parametrize("factor", [2, 8, 32])
def test_bilinear_upsampling_matches_numpy_on_a_ramp(factor):
    ys, xs = np.mgrid[0:6, 0:5].astype("float32")
    ramp = 3.0 * ys + 2.0 * xs + 1.0
    inputs = keras.Input((6, 5, 1))
    model = keras.Model(inputs, upsample(inputs, 1, factor, "up"))
    out = model.predict(ramp[None, :, :, None], verbose=0)[0, :, :, 0]
    expected = numpy_bilinear(ramp, factor)
    assert out.shape == expected.shape
    # Borders differ (zero padding vs edge clamping); the interior is exact.
    inner = slice(factor, -factor)
    np.testing.assert_allclose(out[inner, inner], expected[inner, inner], atol=1e-4)


def test_sigmoid_binary_has_one_channel_and_resnet50_backbone():
    model = FCN("fcn8s", backbone="resnet50", num_classes=2, output_activation="sigmoid",
                encoder_width=0.0625)
    out = model.predict(_images(64, 64), verbose=0)
    assert out.shape == (1, 64, 64, 1) and 0 <= out.min() and out.max() <= 1
    assert "fc6" not in [layer.name for layer in model.layers]
    assert _inbound(model, "score_pool4") == ["res4f_out"]  # kseg 0.1: conv4_block6_out


def test_keras_round_trip_is_identical(tmp_path):
    model = FCN("fcn8s", num_classes=3, **TINY)
    images = _images(64, 64)
    path = tmp_path / "fcn.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-6)
    assert isinstance(loaded.get_layer("upscore8").kernel_initializer, BilinearUpsampling)


def test_build_fcn_reads_the_config():
    config = FCNConfig(NUM_CLASSES=4, FCN_VARIANT="fcn16s", ENCODER_WIDTH=0.0625,
                       FCN_FC_FILTERS=8, NAME="unit")
    model = build_fcn(config)
    assert model.name == "unit" and model.output_shape[-1] == 4
    assert "upscore16" in [layer.name for layer in model.layers]


@pytest.mark.parametrize("variant", ["fcn32s", "fcn8s"])
def test_dilated_resnet_fcn_scores_at_stride_8(variant):
    """output_stride 8 (torchvision's fcn_resnet50 layout, with its 3x3 head): pool3,
    pool4 and pool5 all at stride 8, skips added without upsampling, one x8 upsampling."""
    model = FCN(variant, backbone="resnet50", num_classes=3, encoder_width=0.0625,
                output_stride=8, fc_filters=8, fc_kernel_size=3, input_shape=(64, 64, 3))
    assert tuple(model.get_layer("res5c_out").output.shape[1:3]) == (8, 8)
    assert model.get_layer("fc6").kernel.shape[:2] == (3, 3)
    names = [layer.name for layer in model.layers]
    assert "upscore2" not in names and "upscore_pool4" not in names
    last = "upscore8" if variant == "fcn8s" else "upscore"
    assert model.get_layer(last).strides == (8, 8)
    if variant == "fcn8s":
        assert sorted(_inbound(model, "fuse_pool4")) == ["score_fr", "score_pool4"]
    probs = model.predict(_images(64, 64), verbose=0)
    assert probs.shape == (1, 64, 64, 3)
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_build_fcn_reads_output_stride_and_head_kernel():
    config = FCNConfig(NUM_CLASSES=2, BACKBONE="resnet50", FCN_OUTPUT_STRIDE=16,
                       FCN_FC_KERNEL_SIZE=3, ENCODER_WIDTH=0.0625, FCN_FC_FILTERS=8)
    model = build_fcn(config, input_shape=(64, 64, 3))
    assert tuple(model.get_layer("res5c_out").output.shape[1:3]) == (4, 4)  # stride 16
    assert "upscore2" not in [layer.name for layer in model.layers]  # pool5 at pool4's stride
    assert model.get_layer("upscore_pool4").strides == (2, 2)
    assert model.get_layer("fc6").kernel.shape[:2] == (3, 3)
    with pytest.raises(ValueError, match="FCN_OUTPUT_STRIDE"):
        FCNConfig(NUM_CLASSES=2, BACKBONE="vgg16", FCN_OUTPUT_STRIDE=8)
    with pytest.raises(ValueError, match="FCN_OUTPUT_STRIDE"):
        FCNConfig(NUM_CLASSES=2, BACKBONE="resnet50", FCN_OUTPUT_STRIDE=4)


def test_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        FCN("fcn4s", num_classes=2)
    with pytest.raises(ValueError, match="ResNet"):
        FCN(num_classes=2, output_stride=8, **TINY)  # vgg16
    with pytest.raises(ValueError, match="sigmoid"):
        FCN(num_classes=3, output_activation="sigmoid", **TINY)


def test_coord_channels_feed_fc6_and_hold_positions(tmp_path):
    from kseg.models.semantic_layers import CoordChannels

    features = np.zeros([2, 3, 5, 4], "float32")
    out = keras.ops.convert_to_numpy(CoordChannels()(features))
    assert out.shape == (2, 3, 5, 6)
    np.testing.assert_allclose(out[1, :, 0, 4], [-1, 0, 1])        # y: top -1 .. bottom 1
    np.testing.assert_allclose(out[0, 2, :, 5], [-1, -0.5, 0, 0.5, 1])  # x: left .. right
    model = build_fcn(FCNConfig(NUM_CLASSES=2, ENCODER_WIDTH=0.0625, FCN_FC_FILTERS=8,
                                FCN_COORD_CHANNELS=True))
    assert _inbound(model, "fc6") == ["coords"] and _inbound(model, "coords") == ["block5_pool"]
    assert model.get_layer("fc6").kernel.shape[2] == 512 * 0.0625 + 2  # block5 + (y, x)
    path = tmp_path / "coords.keras"
    model.save(path)
    images = _images(64, 96)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(images, verbose=0), model.predict(images, verbose=0),
                               atol=1e-6)
