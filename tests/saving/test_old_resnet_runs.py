"""ResNet runs written before the one-ResNet change (issue 12) load with the same numbers.

tests/fixtures/resnet_runs_v0_1/ was written by kseg at commit 9aff25f (`make_runs.py`),
when the FCN / U-Net ResNets had Keras-applications layer names (conv2_block1_1_conv, ...)
and Mask R-CNN had its own ResNet: an FCN-8s on ResNet-50 and a U-Net on ResNet-34 (run
folders with `.weights.h5` checkpoints, the U-Net also as a `.keras` file), every weight
random, their probabilities, and the features of Mask R-CNN's ResNet-50. Today's one
ResNet (Matterport's names) must give exactly those numbers."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

from kseg.models.runs import load_inference_model

RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "resnet_runs_v0_1"
IMAGE = RUNS.parent / "runs_v0_1" / "image.npy"


@pytest.fixture(scope="module")
def expected():
    return np.load(RUNS / "expected.npz")


@pytest.mark.parametrize("kind, backbone", [("fcn", "resnet50"), ("unet", "resnet34")])
def test_old_resnet_run_gives_the_same_probabilities(kind, backbone, expected):
    from kseg.semantic.predict import predict_semantic

    model, config, checkpoint = load_inference_model(RUNS / kind / f"{kind}20260102T0000",
                                                     kind=kind)
    assert config.BACKBONE == backbone and Path(checkpoint).name.endswith(".weights.h5")
    assert model.get_layer("res3a_branch1") is not None  # today's names
    _, probabilities = predict_semantic(model, config, [np.load(IMAGE)])
    assert expected[kind].std() > 0.01  # the stored outputs are not a constant
    np.testing.assert_allclose(np.asarray(probabilities[0]), expected[kind], atol=1e-6)


def test_old_resnet_keras_file_loads_and_predicts_the_same(expected):
    from kseg.config import UNetConfig
    from kseg.saving.files import load_keras_model
    from kseg.semantic.predict import predict_semantic

    model = load_keras_model(RUNS / "unet_resnet34.keras")
    assert model.get_layer("conv3_block1_0_conv") is not None  # the file's own (old) graph
    config = UNetConfig.from_json(RUNS / "unet" / "unet20260102T0000" / "config.json")
    _, probabilities = predict_semantic(model, config, [np.load(IMAGE)])
    np.testing.assert_allclose(np.asarray(probabilities[0]), expected["unet"], atol=1e-6)


def test_maskrcnn_resnet50_features_do_not_move(expected):
    from kseg.models.mask_rcnn.backbones import resnet_graph

    spec = importlib.util.spec_from_file_location("make_resnet_runs", RUNS / "make_runs.py")
    make_runs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_runs)
    c2, c3, c4, c5 = make_runs.maskrcnn_resnet50_features(resnet_graph)
    for level, feature in zip("234", (c2, c3, c4)):
        np.testing.assert_allclose(feature.mean(axis=(0, 1, 2)),
                                   expected[f"maskrcnn_resnet50_c{level}_mean"], atol=1e-5)
    assert expected["maskrcnn_resnet50_c5"].std() > 0.05
    np.testing.assert_allclose(c5, expected["maskrcnn_resnet50_c5"], atol=1e-5)
