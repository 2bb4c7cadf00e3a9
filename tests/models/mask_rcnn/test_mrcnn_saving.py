"""Native Keras saving of the Mask R-CNN models: .keras (safe_mode) and .weights.h5."""

import keras
import numpy as np
from helpers import TinyConfig

from kseg.models.mask_rcnn.inference import mold_inputs
from kseg.models.mask_rcnn.model import MaskRCNN


def _inputs(config):
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(2)]
    molded, metas, _ = mold_inputs(images, config)
    return [molded, metas]


def test_inference_model_keras_round_trip_in_safe_mode(tmp_path):
    config = TinyConfig()
    model = MaskRCNN("inference", config, tmp_path).keras_model
    path = tmp_path / "mrcnn.keras"
    model.save(path)
    again = keras.models.load_model(path, safe_mode=True)
    inputs = _inputs(config)
    for a, b in zip(model.predict_on_batch(inputs), again.predict_on_batch(inputs)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5)


def test_training_model_keras_round_trip_keeps_loss_settings(tmp_path):
    config = TinyConfig(WEIGHT_DECAY=0.01)
    model = MaskRCNN("training", config, tmp_path).keras_model
    path = tmp_path / "train.keras"
    model.save(path)
    again = keras.models.load_model(path, safe_mode=True, compile=False)
    assert type(again).__name__ == "MaskRCNNTrainingModel"
    assert again.weight_decay == 0.01
    assert again.get_layer("proposal_targets").train_rois_per_image == 16


def test_weights_h5_round_trip(tmp_path):
    config = TinyConfig()
    source = MaskRCNN("inference", config, tmp_path)
    source.keras_model.save_weights(tmp_path / "m.weights.h5")
    target = MaskRCNN("inference", config, tmp_path)
    target.load_weights(tmp_path / "m.weights.h5", by_name=False)
    inputs = _inputs(config)
    a = source.keras_model.predict_on_batch(inputs)[0]
    b = target.keras_model.predict_on_batch(inputs)[0]
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)
