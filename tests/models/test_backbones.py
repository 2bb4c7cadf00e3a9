"""Encoders: the ENCODERS table, Keras-applications names (VGG16; the ResNet through the
name map), weight loading, freezing."""

import h5py
import keras
import numpy as np
import pytest

from kseg.models.backbones import (
    ENCODERS,
    IMAGENET_FILES,
    build_encoder,
    encoder_features,
    imagenet_weights_path,
    load_encoder_weights,
)
from kseg.models.fcn import FCN
from kseg.saving.resnet_names import to_matterport


def _encoder(name, width=0.0625, size=64):
    inputs = keras.Input((size, size, 3))
    return build_encoder(name, inputs, inputs, width=width)


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_skip_layers_have_their_strides(name):
    encoder = _encoder(name)
    for stride, tensor in encoder_features(encoder, name).items():
        assert tuple(tensor.shape[1:3]) == (64 // stride, 64 // stride), (name, stride)


def _weight_shapes(model):
    return {layer.name: [tuple(w.shape) for w in layer.weights]
            for layer in model.layers if layer.weights}


@pytest.mark.parametrize("name, app", [("vgg16", "VGG16"), ("resnet50", "ResNet50")])
def test_full_width_names_and_shapes_match_keras_applications(name, app):
    """VGG16 has Keras' names; the ResNet Matterport's, Keras' through the one name map."""
    reference = getattr(keras.applications, app)(weights=None, include_top=False,
                                                 input_shape=(64, 64, 3))
    ours = _encoder(name, width=1.0)
    expected = _weight_shapes(reference)
    if name == "resnet50":
        expected = {to_matterport(layer): shapes for layer, shapes in expected.items()}
    assert _weight_shapes(ours) == expected


def write_legacy_h5(model, path):
    """The Keras 2 `save_weights(.h5)` layout: layer_names / weight_names attributes."""
    with h5py.File(path, "w") as f:
        layers = [layer for layer in model.layers if layer.weights]
        f.attrs["layer_names"] = [layer.name.encode() for layer in layers]
        for layer in layers:
            group = f.create_group(layer.name)
            names = [f"{layer.name}/{w.name}_{i}:0".encode() for i, w in enumerate(layer.weights)]
            group.attrs["weight_names"] = names
            for n, w in zip(names, layer.weights):
                group.create_dataset(n.decode(), data=keras.ops.convert_to_numpy(w))


def test_legacy_h5_loads_by_name(tmp_path):
    source = _encoder("vgg16")
    path = tmp_path / "vgg16.h5"
    write_legacy_h5(source, path)
    target = _encoder("vgg16")
    load_encoder_weights(target, "vgg16", path)
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))


def test_imagenet_uses_keras_cache_and_never_downloads(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="never downloads") as info:
        imagenet_weights_path("vgg16")
    assert str(tmp_path / "models" / IMAGENET_FILES["vgg16"]) in str(info.value)
    (tmp_path / "models").mkdir()
    source = _encoder("vgg16")
    write_legacy_h5(source, tmp_path / "models" / IMAGENET_FILES["vgg16"])
    target = _encoder("vgg16")
    load_encoder_weights(target, "vgg16", "imagenet")
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(source.weights[0]),
                                  keras.ops.convert_to_numpy(target.weights[0]))


def test_bad_weights_are_explained(tmp_path):
    with pytest.raises(ValueError, match="no Keras ImageNet|publishes no"):
        imagenet_weights_path("resnet34")
    with pytest.raises(ValueError, match="width"):
        inputs = keras.Input((32, 32, 3))
        build_encoder("vgg16", inputs, inputs, width=0.5, weights=str(tmp_path / "x.h5"))
    other = tmp_path / "other.h5"
    write_legacy_h5(_encoder("resnet34"), other)
    with pytest.raises(ValueError, match="holds no layer"):
        load_encoder_weights(_encoder("vgg16"), "vgg16", other)


def test_encoder_freeze():
    model = FCN("fcn8s", num_classes=2, encoder_width=0.0625, fc_filters=4, encoder_freeze=True)
    assert not model.get_layer("block1_conv1").trainable
    assert not model.get_layer("block5_conv3").trainable
    assert model.get_layer("score_fr").trainable and model.get_layer("fc6").trainable
