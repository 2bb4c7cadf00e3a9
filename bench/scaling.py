"""Training step time and images/s on 1 vs 2 devices, with and without mixed precision
and XLA (TensorFlow backend; each variant in its own process).

    python bench/scaling.py                       # U-Net and Mask R-CNN, all variants
    python bench/scaling.py --models unet --steps 10

Rows: a model and a variant of its config:
  1 device       DISTRIBUTION=None
  2 devices      DISTRIBUTION="mirrored", GPU_COUNT=2: two GPUs when the machine has them,
                 else the CPU split into two logical devices (the same cores: no speed-up
                 is expected there, it measures the strategy's overhead)
  bf16 / fp16    MIXED_PRECISION="mixed_bfloat16" (CPU) or "mixed_float16" (GPU)
  XLA            JIT_COMPILE=True
Models: the smoke sample's U-Net (128 x 128, 4 images per replica) and the shapes main
job's Mask R-CNN (ShapesConfig, 128 x 128, 4 images per replica). Columns: first call
(build, trace, compile) in s, median step in ms after it, images/s (global batch / step).
Random weights, fixed random batches; `keras.Model.fit` with a batch-timing callback.
"""

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

WORKER = r"""
import json, statistics, sys, time
variant, model_name, steps = json.loads(sys.argv[1]), sys.argv[2], int(sys.argv[3])
import tensorflow as tf
gpus = tf.config.list_physical_devices("GPU")
if variant.get("DISTRIBUTION") and not gpus:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np

from kseg.config import UNetConfig
from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.distribute import num_replicas
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.presets import ShapesConfig
from kseg.models.unet import build_unet
from kseg.train import compile_semantic


class Batches(keras.utils.PyDataset):
    def __init__(self, batch, count):
        super().__init__()
        self.batch, self.count = batch, count

    def __len__(self):
        return self.count

    def __getitem__(self, index):
        return self.batch


class Timer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self.start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self.start)


fields = {k: v for k, v in variant.items() if k != "label"}
if "DISTRIBUTION" in fields:
    fields["GPU_COUNT"] = 2
if model_name == "unet":
    config = UNetConfig(NUM_CLASSES=2, IMAGE_MIN_DIM=128, IMAGE_MAX_DIM=128, IMAGES_PER_GPU=4,
                        UNET_DEPTH=4, UNET_BASE_FILTERS=16, **fields)
    model = compile_semantic(build_unet(config), config)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (config.BATCH_SIZE, 128, 128, 3)).astype("float32")
    data = Batches((x, (x[..., 0] > 128).astype("int32")), steps + 1)
    keras_model = model
else:
    config = ShapesConfig(IMAGES_PER_GPU=4, **fields)
    trainer = MaskRCNN("training", config, model_dir="/tmp/kseg_bench_scaling")
    trainer.compile(config.LEARNING_RATE)
    ids = list(range(config.BATCH_SIZE))
    batch, _ = build_batch(ShapesDataset(config.BATCH_SIZE, 128, 128, seed=0), config, ids,
                           rng=np.random.default_rng(0))
    data, keras_model = Batches(batch, steps + 1), trainer.keras_model
timer = Timer()
start = time.perf_counter()
keras_model.fit(data, epochs=1, verbose=0, callbacks=[timer])
step = statistics.median(timer.times[1:])
print("RESULT " + json.dumps({
    "first_s": timer.times[0], "step_ms": 1000 * step, "images_s": config.BATCH_SIZE / step,
    "replicas": num_replicas(config), "batch": int(config.BATCH_SIZE),
    "devices": [d.name for d in tf.config.list_logical_devices()
                if d.device_type in ("GPU", "CPU")]}))
"""


def variants(on_gpu):
    half = "mixed_float16" if on_gpu else "mixed_bfloat16"
    return [{"label": "1 device"}, {"label": "2 devices", "DISTRIBUTION": "mirrored"},
            {"label": half[6:], "MIXED_PRECISION": half}, {"label": "XLA", "JIT_COMPILE": True},
            {"label": f"2 devices + {half[6:]}", "DISTRIBUTION": "mirrored",
             "MIXED_PRECISION": half}]


def run(variant, model, steps):
    env = dict(os.environ, KERAS_BACKEND="tensorflow")
    proc = subprocess.run([sys.executable, "-c", WORKER, json.dumps(variant), model, str(steps)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1][:100]}
    return json.loads(lines[-1][len("RESULT "):])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["unet", "maskrcnn"])
    parser.add_argument("--steps", type=int, default=6, help="timed steps after the first")
    parser.add_argument("--gpu", action="store_true", help="use float16 rows (a GPU machine)")
    args = parser.parse_args(argv)
    print(f"{'model':10} {'variant':22} {'replicas':>8} {'batch':>5} {'first s':>8} "
          f"{'step ms':>8} {'img/s':>7}")
    for model in args.models:
        for variant in variants(args.gpu):
            r = run(variant, model, args.steps)
            if "error" in r:
                print(f"{model:10} {variant['label']:22} error: {r['error']}")
                continue
            print(f"{model:10} {variant['label']:22} {r['replicas']:>8} {r['batch']:>5} "
                  f"{r['first_s']:>8.1f} {r['step_ms']:>8.0f} {r['images_s']:>7.1f}", flush=True)


if __name__ == "__main__":
    main()
