"""Run folders written by kseg 0.1.0 before the package was reorganized (issue 12) still
open: tests/fixtures/runs_v0_1/ holds a tiny Mask R-CNN, FCN and U-Net run written by that
code (commit 6a014af, `make_runs.py`, with the outputs it computed; its config.json files
have no MODEL / PRESET yet), and today's code must rebuild each from its folder and give
the same outputs."""

from pathlib import Path

import numpy as np
import pytest

from kseg.models.runs import load_inference_model

RUNS = Path(__file__).resolve().parents[1] / "fixtures" / "runs_v0_1"


def test_old_maskrcnn_run_gives_the_same_detections():
    from kseg.models.mask_rcnn.inference import mold_inputs

    model, config, checkpoint = load_inference_model(next((RUNS / "maskrcnn").iterdir()))
    assert Path(checkpoint).name == "mask_rcnn_tiny_0001.h5"
    assert config.CLASS_NAMES == ["BG", "square", "circle", "triangle"]
    image = np.load(RUNS / "image.npy")
    molded, metas, _ = mold_inputs([image], config)
    outputs = model.keras_model.predict_on_batch([molded, metas])
    expected = np.load(RUNS / "maskrcnn_expected.npz")
    np.testing.assert_allclose(np.asarray(outputs[0]), expected["detections"], atol=1e-4)
    kept = expected["detections"][0, :, 4] > 0  # padding rows' masks are not part of the API
    assert kept.sum() >= 1
    np.testing.assert_allclose(np.asarray(outputs[3])[0, kept], expected["mrcnn_mask"][0, kept],
                               atol=1e-4)


@pytest.mark.parametrize("kind", ["fcn", "unet"])
def test_old_semantic_run_gives_the_same_probabilities(kind):
    from kseg.semantic.predict import predict_semantic

    model, config, checkpoint = load_inference_model(RUNS / kind / f"{kind}20260101T0000",
                                                     kind=kind)
    assert Path(checkpoint).name == f"kseg_{kind}_0001.weights.h5"
    _, probabilities = predict_semantic(model, config, [np.load(RUNS / "image.npy")])
    expected = np.load(RUNS / "semantic_expected.npz")[kind]
    assert expected.std() > 0  # the stored outputs are not a constant
    np.testing.assert_allclose(np.asarray(probabilities[0]), expected, atol=1e-5)


def test_old_maskrcnn_checkpoint_loads_into_the_training_model(tmp_path):
    """Checkpoints from before the RPN targets moved into the graph (the training model
    then took input_rpn_match / input_rpn_bbox) load into today's training model."""
    from kseg.data import ShapesDataset
    from kseg.data.pipelines.maskrcnn_pipeline import build_batch
    from kseg.models.mask_rcnn.model import MaskRCNN
    from kseg.models.mask_rcnn.training import five_losses

    inference, config, checkpoint = load_inference_model(next((RUNS / "maskrcnn").iterdir()))
    model = MaskRCNN("training", config, model_dir=tmp_path)
    assert not any("rpn" in name for name in model.keras_model.input)
    report = model.load_weights(checkpoint)
    assert not report.skipped and not report.missing_in_model
    for name in ("mrcnn_mask", "stem_conv1"):
        for a, b in zip(model.keras_model.get_layer(name).weights,
                        inference.keras_model.get_layer(name).weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    batch, _ = build_batch(ShapesDataset(config.BATCH_SIZE, 64, 64, seed=1), config,
                           list(range(config.BATCH_SIZE)), rng=np.random.default_rng(0))
    losses = five_losses(batch, model.keras_model(batch, training=False))
    assert all(np.isfinite(float(v)) for v in losses.values())
    assert float(losses["rpn_class_loss"]) > 0 and float(losses["rpn_bbox_loss"]) > 0
