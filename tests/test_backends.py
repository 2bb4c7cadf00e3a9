"""The models build, predict and train on every Keras backend (JAX and PyTorch here; the
rest of the suite runs on TensorFlow). Each backend runs in its own process, since Keras
fixes its backend at import."""

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = r"""
import json, sys
import numpy as np
import keras
sys.path.insert(0, "tests/models/mask_rcnn")
from helpers import TinyConfig
from kseg.config import FCNConfig, UNetConfig
from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.fcn import build_fcn
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.training import LOSS_NAMES
from kseg.models.unet import build_unet
from kseg.semantic.train import compile_semantic

out = {"backend": keras.backend.backend()}
keras.utils.set_random_seed(0)
x = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
y = (x[..., 0] > 128).astype("int32")
for name, config, build in [
    ("fcn", FCNConfig(NUM_CLASSES=2, ENCODER_WIDTH=0.0625, FCN_FC_FILTERS=8, LOSS="ce+dice"),
     build_fcn),
    ("unet", UNetConfig(NUM_CLASSES=2, UNET_DEPTH=2, UNET_BASE_FILTERS=4,
                        OUTPUT_ACTIVATION="sigmoid", LOSS="focal+dice"), build_unet),
]:
    model = compile_semantic(build(config), config)
    out[name + "_shape"] = list(model.predict(x[:, :20, :28], verbose=0).shape)
    out[name + "_losses"] = [float(model.train_on_batch(x, y, return_dict=True)["loss"])
                             for _ in range(8)]

from kseg.data.pipelines.augment import default_augmentation
from kseg.data.generated.synthetic import SmokeScenesDataset
from kseg.semantic.train import evaluate_semantic, train_semantic

config = UNetConfig(NUM_CLASSES=2, UNET_DEPTH=2, UNET_BASE_FILTERS=4, IMAGE_MIN_DIM=64,
                    IMAGE_MAX_DIM=64, IMAGES_PER_GPU=2, STEPS_PER_EPOCH=2, VALIDATION_STEPS=1,
                    OUTPUT_ACTIVATION="sigmoid", LOSS="ce+dice")
unet = build_unet(config)
history = train_semantic(unet, config, SmokeScenesDataset(4, 64, 64, seed=0),
                         SmokeScenesDataset(2, 48, 80, seed=1), epochs=1,
                         model_dir=sys.argv[1], augmentation=default_augmentation("semantic"),
                         verbose=0)
out["fit_semantic"] = sorted(history.history)
out["semantic_eval_pixels"] = int(np.sum(evaluate_semantic(
    unet, SmokeScenesDataset(2, 48, 80, seed=1), config)["confusion_matrix"]))

config = TinyConfig()
batch, _ = build_batch(ShapesDataset(4, 64, 64, seed=3), config, [0, 1],
                       rng=np.random.default_rng(0))
trainer = MaskRCNN("training", config, model_dir=sys.argv[1])
trainer.compile(3e-3)
out["jit"] = bool(trainer.keras_model.jit_compile)
curve = []
for _ in range(20):
    trainer.keras_model.reset_metrics()
    logs = trainer.keras_model.train_on_batch(batch, return_dict=True)
    curve.append([float(logs[k]) for k in LOSS_NAMES])
out["mrcnn_losses"] = curve
history = trainer.train(ShapesDataset(8, 64, 64, seed=4), None, learning_rate=1e-3, epochs=1,
                        layers="heads", verbose=0)
out["fit_loss"] = history.history["loss"]
out["checkpoint"] = trainer.find_last()
detector = MaskRCNN("inference", TinyConfig(), model_dir=sys.argv[1])
report = detector.load_weights(out["checkpoint"])
out["loaded"], out["skipped"] = report.num_arrays, sorted(report.skipped)
r = detector.detect([np.full((40, 70, 3), 128, np.uint8)])[0]
out["detect_masks"] = list(r["masks"].shape[:2])
print("RESULT " + json.dumps(out))
"""


def _available(backend):
    module = {"jax": "jax", "torch": "torch"}[backend]
    if importlib.util.find_spec(module) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{module} is not installed; the dev extra installs it")
        pytest.skip(f"{module} is not installed")


@pytest.mark.parametrize("backend", ["jax", "torch"])
def test_models_train_and_predict_on_backend(tmp_path, backend):
    _available(backend)
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stderr[-3000:]
    out = json.loads(lines[-1][len("RESULT "):])
    assert out["backend"] == backend
    assert out["jit"] == (backend == "jax")  # JAX steps are jitted; torch runs eagerly
    assert out["fcn_shape"] == [2, 20, 28, 2] and out["unet_shape"] == [2, 20, 28, 1]
    for name in ("fcn", "unet"):
        losses = out[name + "_losses"]
        assert all(v == v for v in losses) and losses[-1] < losses[0], (name, losses)
    assert {"loss", "val_loss", "val_iou_class1"} <= set(out["fit_semantic"])
    assert out["semantic_eval_pixels"] == 2 * 48 * 80
    curve = out["mrcnn_losses"]  # [step, 5 losses]
    for i in range(5):
        values = [step[i] for step in curve]
        assert all(v == v and abs(v) < 1e6 for v in values), (i, values)
        assert sum(values[-3:]) < sum(values[:3]), (i, values)
    assert len(out["fit_loss"]) == 1 and out["fit_loss"][0] == out["fit_loss"][0]
    assert out["checkpoint"].endswith("mask_rcnn_tiny_0001.h5") and out["loaded"] > 50
    assert out["skipped"] == []
    assert out["detect_masks"] == [40, 70]
