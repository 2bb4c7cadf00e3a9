"""U-Net: shapes (same / valid padding), concatenated skips, backbones, save/load."""

import keras
import numpy as np
import pytest

from kseg.config import UNetConfig
from kseg.models.backbones import ENCODERS
from kseg.models.unet import UNet, build_unet, unet_valid_input_size, unet_valid_output_size


def _images(height, width, batch=1):
    return np.random.default_rng(0).uniform(0, 255, (batch, height, width, 3)).astype("float32")


def _inbound(model, layer):
    node = layer._inbound_nodes[0]
    return [t._keras_history.operation.name for t in node.input_tensors]


def test_same_padding_keeps_odd_and_even_sizes():
    model = UNet(3, depth=3, base_filters=4)
    for height, width in [(64, 48), (37, 45), (9, 8)]:
        probs = model.predict(_images(height, width, batch=2), verbose=0)
        assert probs.shape == (2, height, width, 3)
        np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)


def test_binary_sigmoid_has_one_channel():
    model = UNet(2, depth=2, base_filters=4, output_activation="sigmoid", batchnorm=False)
    assert model.predict(_images(16, 16), verbose=0).shape == (1, 16, 16, 1)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)


def test_concatenate_takes_encoder_skip_and_upconv():
    depth = 3
    model = UNet(2, depth=depth, base_filters=4)
    concats = [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]
    assert len(concats) == depth
    for level in range(1, depth + 1):
        layer = model.get_layer(f"dec{level}_concat")
        assert _inbound(model, layer) == [f"enc{level}_relu2", f"dec{level}_upconv"]
        assert isinstance(model.get_layer(f"dec{level}_upconv"), keras.layers.Conv2DTranspose)
        assert model.get_layer(f"dec{level}_upconv").kernel_size == (2, 2)


def test_valid_padding_matches_the_paper_sizes():
    assert unet_valid_output_size(572, 4) == 388
    assert unet_valid_input_size(570, 4) == 572
    with pytest.raises(ValueError, match="even"):
        unet_valid_output_size(570, 4)
    model = UNet(2, depth=2, base_filters=4, padding="valid")
    size = unet_valid_input_size(40, 2)
    out = model.predict(_images(size, size), verbose=0)
    assert out.shape == (1, unet_valid_output_size(size, 2), unet_valid_output_size(size, 2), 2)
    crop = model.get_layer("dec1_crop")
    assert isinstance(crop, keras.layers.Cropping2D) and _inbound(model, crop) == ["enc1_relu2"]


@pytest.mark.parametrize("backbone", ["vgg16", "resnet34"])
def test_backbone_skips_come_from_the_encoder(backbone):
    model = UNet(2, base_filters=4, backbone=backbone, encoder_width=0.0625,
                 output_activation="sigmoid")
    assert model.predict(_images(40, 56), verbose=0).shape == (1, 40, 56, 1)
    skip_names = set(ENCODERS[backbone][1])
    concats = [layer for layer in model.layers if isinstance(layer, keras.layers.Concatenate)]
    assert len(concats) == len(ENCODERS[backbone][1]) - 1
    for layer in concats:
        skip, up = _inbound(model, layer)
        assert skip in skip_names and up.endswith("_upconv")


def test_keras_round_trip_is_identical(tmp_path):
    model = UNet(3, depth=2, base_filters=4)
    images = _images(24, 20)
    path = tmp_path / "unet.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)
    np.testing.assert_allclose(loaded.predict(images, verbose=0),
                               model.predict(images, verbose=0), atol=1e-6)


def test_build_unet_reads_the_config():
    config = UNetConfig(NUM_CLASSES=2, UNET_DEPTH=2, UNET_BASE_FILTERS=4,
                        OUTPUT_ACTIVATION="sigmoid", UNET_DROPOUT=0.5, NAME="unit")
    model = build_unet(config)
    assert model.name == "unit" and model.output_shape[-1] == 1
    assert "bottleneck_dropout" in [layer.name for layer in model.layers]
    assert model.get_layer("enc2_conv1").filters == 8


def test_foreground_prior_sets_the_classifier_bias():
    model = UNet(2, depth=1, base_filters=2, output_activation="sigmoid", foreground_prior=0.05)
    bias = keras.ops.convert_to_numpy(model.get_layer("classifier").bias)
    np.testing.assert_allclose(bias, [np.log(0.05 / 0.95)], rtol=1e-6)
    softmax = UNet(2, depth=1, base_filters=2, output_activation="softmax",
                   foreground_prior=0.05)
    bias = keras.ops.convert_to_numpy(softmax.get_layer("classifier").bias)
    np.testing.assert_allclose(bias, np.log([0.95, 0.05]), rtol=1e-6)
    with pytest.raises(ValueError, match="binary output"):
        UNet(3, depth=1, base_filters=2, foreground_prior=0.05)


def test_bad_arguments():
    with pytest.raises(ValueError, match="padding"):
        UNet(2, padding="full")
    with pytest.raises(ValueError, match="backbone"):
        UNet(2, backbone="vgg16", padding="valid")
