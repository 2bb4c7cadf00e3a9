"""The mask head runs on the rows in use only (TF fast path) and gives the same numbers."""

import keras
import numpy as np
import pytest
from helpers import TinyConfig

from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.training import five_losses

TF_ONLY = pytest.mark.skipif(keras.backend.backend() != "tensorflow",
                             reason="the fast path is TensorFlow's")


@TF_ONLY
def test_training_mask_head_on_positive_rois_only_keeps_the_five_losses(tmp_path, monkeypatch):
    keras.utils.set_random_seed(0)
    config = TinyConfig(TRAIN_BN=False, TRAIN_ROIS_PER_IMAGE=32, ROI_POSITIVE_RATIO=0.5)
    model = MaskRCNN("training", config, model_dir=str(tmp_path))
    batch, _ = build_batch(ShapesDataset(2, 64, 64, seed=3), config, [0, 1],
                           rng=np.random.default_rng(0))
    batch = {k: keras.ops.convert_to_tensor(v) for k, v in batch.items()}
    generators = [model.keras_model.get_layer(name).seed_generator
                  for name in ("proposal_targets", "rpn_targets")]
    starts = [np.array(generator.state) for generator in generators]

    def run():
        for generator, start in zip(generators, starts):  # the same RPN and ROI samples
            generator.state.assign(start)
        outputs = model.keras_model(batch, training=True)
        return {k: float(v) for k, v in five_losses(batch, outputs).items()}, outputs

    fast, fast_out = run()
    monkeypatch.setenv("KSEG_DISABLE_FAST_OPS", "1")
    slow, slow_out = run()
    positives = (np.asarray(slow_out["target_class_ids"])[:, :16] > 0).sum(axis=1)
    assert 0 < positives.max() < 16  # the fast path really skipped rows
    fast_masks = np.asarray(fast_out["mrcnn_mask_true_logits"])
    assert not fast_masks[:, positives.max():].any()
    assert np.asarray(slow_out["mrcnn_mask_true_logits"])[:, positives.max():].any()
    for name in fast:
        np.testing.assert_allclose(fast[name], slow[name], rtol=1e-4, atol=1e-6, err_msg=name)


@TF_ONLY
def test_inference_mask_head_on_kept_detections_only_keeps_detect(tmp_path, monkeypatch):
    # More detection slots than ROIs: some slots are always padding.
    config = TinyConfig(IMAGES_PER_GPU=1, DETECTION_MAX_INSTANCES=40)
    image = ShapesDataset(1, 64, 64, seed=5).load_image(0)
    keras.utils.set_random_seed(0)  # random weights that keep 29 detections
    fast_model = MaskRCNN("inference", config, model_dir=str(tmp_path))
    fast = fast_model.detect([image])[0]
    monkeypatch.setenv("KSEG_DISABLE_FAST_OPS", "1")
    slow_model = MaskRCNN("inference", config, model_dir=str(tmp_path))
    slow_model.keras_model.set_weights(fast_model.keras_model.get_weights())
    slow = slow_model.detect([image])[0]
    assert 0 < len(slow["rois"]) < 40
    np.testing.assert_array_equal(fast["rois"], slow["rois"])
    np.testing.assert_array_equal(fast["class_ids"], slow["class_ids"])
    np.testing.assert_allclose(fast["scores"], slow["scores"], rtol=1e-4)
    assert (fast["masks"] != slow["masks"]).mean() < 1e-3  # RoIAlign kernels differ by ulps
