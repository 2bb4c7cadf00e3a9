"""A tiny Mask R-CNN trains at batch 1 on TensorFlow with oneDNN on (the default on x86).

TF 2.21's oneDNN filter gradient of a 1x1 stride-2 conv with under 16 input channels
corrupts the heap at batch 1 (bench/onednn_conv1x1_stride2.py); `resnet_tiny`'s strided
shortcut met it and killed the process. The run is in a subprocess, so a crash fails the
test instead of ending the test session.
"""

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]

SCRIPT = """
import sys, numpy as np
from helpers import TinyConfig
from kseg.data import ShapesDataset
from kseg.models.mask_rcnn.model import MaskRCNN

config = TinyConfig(IMAGES_PER_GPU=1, STEPS_PER_EPOCH=2)
model = MaskRCNN("training", config, model_dir=sys.argv[1])
history = model.train(ShapesDataset(4, 64, 64, seed=3), None, learning_rate=1e-3, epochs=1,
                      layers="all", verbose=0)
losses = [history.history[name][-1] for name in ("loss", "mrcnn_mask_loss")]
assert np.all(np.isfinite(losses)), losses
print("TRAINED", losses)
"""


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="oneDNN is TensorFlow's")
def test_tiny_maskrcnn_trains_two_steps_at_batch_one_with_onednn(tmp_path):
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "1", "KERAS_BACKEND": "tensorflow",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(ROOT),
                                          os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], env=env, cwd=HERE,
                          capture_output=True, text=True, timeout=600)
    output = (proc.stdout + proc.stderr)[-3000:]
    assert proc.returncode == 0, f"exit code {proc.returncode}:\n{output}"
    assert "TRAINED" in proc.stdout, output
