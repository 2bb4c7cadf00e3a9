"""Mixed precision: the heads end in float32 layers and the losses compute in float32."""

import keras
import numpy as np
from helpers import TinyConfig
from keras import ops

from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.mask_rcnn import losses
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.training import LOSS_NAMES


def test_mask_loss_of_float16_probabilities_is_finite():
    """A float16 probability of exactly 1 on a background pixel: clipping at 1 - 1e-7 in
    float16 gives 1.0 and log(0); in float32 it is -ln(1 - float32(1 - 1e-7)) = 15.94."""
    target = np.zeros((1, 1, 2, 2), np.float32)
    pred = np.ones((1, 1, 2, 2, 2), np.float16)
    loss = float(ops.convert_to_numpy(losses.mrcnn_mask_loss(target, np.array([[1]]), pred)))
    expected = -np.log(1.0 - float(np.float32(1.0 - 1e-7)))
    assert np.isfinite(loss) and abs(loss - expected) < 1e-3


def test_training_step_under_mixed_float16_is_finite(tmp_path):
    config = TinyConfig(MIXED_PRECISION="mixed_float16")
    model = MaskRCNN("training", config, tmp_path)
    km = model.keras_model
    for name in ("mrcnn_class_logits", "mrcnn_bbox_fc", "mrcnn_bbox",
                 "mrcnn_mask", "rpn_class_logits", "rpn_bbox"):
        assert km.get_layer(name).compute_dtype == "float32", name
    assert km.get_layer("mrcnn_mask_conv1").compute_dtype == "float16"
    batch, _ = build_batch(ShapesDataset(2, 64, 64, seed=3), config, [0, 1],
                           rng=np.random.default_rng(0))
    model.compile(1e-3)
    logs = km.train_on_batch(batch, return_dict=True)
    assert all(np.isfinite(logs[k]) for k in LOSS_NAMES), logs
    assert keras.mixed_precision.global_policy().name == "float32"  # restored after building
