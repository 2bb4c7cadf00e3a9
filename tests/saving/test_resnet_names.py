"""The one Keras-applications <-> Matterport ResNet name map: total on keras.applications'
ResNet-50, invertible, and Keras' ImageNet file (faked from a keras.applications.ResNet50
with random weights, no network) lands whole in kseg's ResNet-50 with the same outputs."""

import keras
import numpy as np
import pytest

from kseg.models.backbones import build_encoder, load_encoder_weights
from kseg.saving.legacy_h5 import legacy_weights, read_weight_groups
from kseg.saving.matterport_h5 import legacy_weight_names, write_matterport_fixture
from kseg.saving.resnet_names import to_keras, to_matterport, uses_keras_names

IMAGENET_FILE = "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"


@pytest.fixture(scope="module")
def reference():
    """keras.applications.ResNet50 (no top) with every weight random, BN statistics too."""
    model = keras.applications.ResNet50(weights=None, include_top=False,
                                        input_shape=(64, 64, 3))
    rng = np.random.default_rng(0)
    for variable in model.weights:
        name, shape = variable.path.split("/")[-1], tuple(variable.shape)
        if name in ("gamma", "moving_variance"):
            value = rng.uniform(0.2, 0.6, shape) if name == "gamma" else \
                rng.uniform(0.5, 1.5, shape)
        elif name in ("beta", "moving_mean", "bias"):
            value = rng.normal(0.0, 0.1, shape)
        else:
            value = rng.normal(0.0, np.sqrt(2.0 / np.prod(shape[:-1])), shape)
        variable.assign(value.astype("float32"))
    return model


def test_the_map_covers_keras_resnet50_and_inverts(reference):
    names = [layer.name for layer in reference.layers[1:]]  # not the input
    mapped = [to_matterport(name) for name in names]
    assert None not in mapped and len(set(mapped)) == len(names)
    assert [to_keras(name) for name in mapped] == names
    assert to_matterport("conv3_block4_2_bn") == "bn3d_branch2b"
    assert to_matterport("conv2_block1_0_conv") == "res2a_branch1"
    assert to_matterport("conv4_block6_out") == "res4f_out" and to_keras("res4f_out") == \
        "conv4_block6_out"
    assert to_matterport("conv1_bn") == "bn_conv1" and to_keras("conv1") == "conv1_conv"
    assert to_matterport("mrcnn_mask") is None and to_keras("fpn_c5p5") is None
    assert uses_keras_names(["conv1_conv"]) and not uses_keras_names(["conv1", "res2a_out"])


def test_keras_imagenet_resnet50_file_lands_whole(reference, tmp_path, monkeypatch):
    layers = [(layer.name, list(zip(legacy_weight_names(layer),
                                    [keras.ops.convert_to_numpy(v)
                                     for v in legacy_weights(layer)])))
              for layer in reference.layers]
    (tmp_path / "models").mkdir()
    write_matterport_fixture(tmp_path / "models" / IMAGENET_FILE, layers)
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    inputs = keras.Input((64, 64, 3))
    ours = build_encoder("resnet50", inputs, inputs)
    load_encoder_weights(ours, "resnet50", "imagenet")

    groups = read_weight_groups(tmp_path / "models" / IMAGENET_FILE)
    weighted = {layer.name for layer in ours.layers if layer.weights}
    assert {to_matterport(name) for name in groups} == weighted  # nothing left over
    for name, arrays in groups.items():  # every array landed, in the right variable
        variables = legacy_weights(ours.get_layer(to_matterport(name)))
        assert [tuple(v.shape) for v in variables] == [a.shape for _, a in arrays], name
        for variable, (_, array) in zip(variables, arrays):
            np.testing.assert_array_equal(keras.ops.convert_to_numpy(variable), array)

    images = np.random.default_rng(1).normal(0.0, 1.0, (2, 64, 64, 3)).astype("float32")
    expected = reference.predict_on_batch(images)
    assert np.asarray(expected).std() > 0.05
    np.testing.assert_allclose(ours.predict_on_batch(images), expected, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("names", ["matterport", "keras"])
def test_a_file_with_either_names_loads_into_the_resnet(names, tmp_path):
    """fchollet's old file (Matterport's names, cached under Keras' file name by Keras 2)
    and Keras' own (Keras-applications names) both load into the FCN / U-Net ResNet."""
    inputs = keras.Input((32, 32, 3))
    source = build_encoder("resnet34", inputs, inputs, width=0.0625)
    rename = (lambda n: to_keras(n) or n) if names == "keras" else (lambda n: n)
    layers = [(rename(layer.name), [(rename(w.split("/")[0]) + "/" + w.split("/", 1)[1], a)
                                    for w, a in zip(legacy_weight_names(layer),
                                                    [keras.ops.convert_to_numpy(v)
                                                     for v in legacy_weights(layer)])])
              for layer in source.layers if layer.weights]
    assert any(name.startswith("conv2_block") for name, _ in layers) == (names == "keras")
    write_matterport_fixture(tmp_path / "encoder.h5", layers)
    target = build_encoder("resnet34", inputs, inputs, width=0.0625)
    load_encoder_weights(target, "resnet34", tmp_path / "encoder.h5")
    for a, b in zip(source.weights, target.weights):
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
