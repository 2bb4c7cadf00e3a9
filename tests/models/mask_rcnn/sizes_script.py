"""Detect and one train step in every IMAGE_RESIZE_MODE on non-square images.

Run by test_mrcnn_sizes.py: imported on TensorFlow, and as a script on JAX and PyTorch
(`python sizes_script.py OUT_DIR [MODES]` with KERAS_BACKEND set), printing `RESULT {json}`.
"""

import json
import os
import sys

import numpy as np
from helpers import TinyConfig

from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.training import LOSS_NAMES

# (mode, training images h x w, detect image h x w); "crop" trains on 64x64 crops and
# detects with "pad64" (Matterport's nucleus recipe).
CASES = [("square", (64, 96), (40, 70)), ("pad64", (64, 128), (100, 70)),
         ("none", (128, 64), (64, 192)), ("crop", (96, 128), (70, 130))]


# Batches of 2 (batch 1 crashed in TF's oneDNN until resnet_tiny stopped using a 1x1
# stride-2 conv; test_mrcnn_batch_one.py trains at batch 1).
def mode_config(mode, **extra):
    return TinyConfig(IMAGE_RESIZE_MODE=mode, IMAGES_PER_GPU=2, **extra)


def run_case(mode, train_hw, detect_hw, model_dir):
    """Loss values of one train step and the detect output shape for one resize mode."""
    config = mode_config(mode)
    dataset = ShapesDataset(2, *train_hw, seed=5)
    batch, _ = build_batch(dataset, config, [0, 1], rng=np.random.default_rng(0))
    trainer = MaskRCNN("training", config, model_dir=model_dir)
    trainer.compile(1e-3)
    logs = trainer.keras_model.train_on_batch(batch, return_dict=True)
    path = os.path.join(model_dir, f"{mode}.h5")
    trainer.save_weights(path)
    detector = MaskRCNN("inference", mode_config("pad64" if mode == "crop" else mode),
                        model_dir=model_dir)
    detector.load_weights(path)
    image = np.random.default_rng(1).integers(0, 255, (*detect_hw, 3), dtype=np.uint8)
    r = detector.detect([image])[0]
    return {"losses": [float(logs[k]) for k in LOSS_NAMES],
            "masks": list(r["masks"].shape[:2]), "rois": list(r["rois"].shape),
            "input": list(batch["input_image"].shape[1:3])}


def main(model_dir, modes):
    import keras

    keras.utils.set_random_seed(0)
    out = {"backend": keras.backend.backend()}
    for mode, train_hw, detect_hw in CASES:
        if mode in modes:
            out[mode] = run_case(mode, train_hw, detect_hw, model_dir)
    print("RESULT " + json.dumps(out))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2].split(",") if len(sys.argv) > 2 else [c[0] for c in CASES])
