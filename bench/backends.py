"""The same kseg models on each installed Keras backend: inference and training speed.

    python bench/backends.py                    # tensorflow, jax, torch (those installed)
    python bench/backends.py --backends tensorflow jax --repeats 10

Each backend runs in its own process (Keras picks its backend at import). Rows:
  unet   the smoke sample's U-Net (SmokeConfig), batch 4 x 128 x 128
  fcn8s  the road sample's FCN-8s (RoadConfig), batch 1 x 256 x 256
  maskrcnn  the shapes main job's Mask R-CNN (ShapesConfig), batch 8 x 128 x 128 molded
Columns: inference ms / batch (`predict_on_batch`, median after two warm-up calls),
training ms / step (`train_on_batch`; Mask R-CNN: the five losses, gradients for all
layers), the first call (build + trace / compile) in seconds. Random weights and inputs;
TensorFlow runs its graph functions, JAX its jitted step, PyTorch eagerly.
"""

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BACKEND_MODULES = {"tensorflow": "tensorflow", "jax": "jax", "torch": "torch"}

WORKER = r"""
import json, statistics, sys, time
import numpy as np
import keras

ROOT, repeats = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, f"{ROOT}/bench")
from semantic import load_sample as sample


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(predict, train):
    first = timed(predict) + timed(train)
    predict(); train()
    infer = statistics.median(timed(predict) for _ in range(repeats))
    step = statistics.median(timed(train) for _ in range(repeats))
    return {"infer_ms": 1000 * infer, "train_ms": 1000 * step, "first_s": first}


rng = np.random.default_rng(0)
rows = {}
from kseg.models.fcn import build_fcn
from kseg.models.unet import build_unet
from kseg.semantic.train import compile_semantic

for name, config, build, batch in [
    ("unet", sample("smoke").SmokeConfig(), build_unet, 4),
    ("fcn8s", sample("road").RoadConfig(), build_fcn, 1),
]:
    side = int(config.IMAGE_MAX_DIM)
    x = rng.uniform(0, 255, (batch, side, side, 3)).astype("float32")
    y = rng.integers(0, 2, (batch, side, side)).astype("int32")
    model = compile_semantic(build(config), config)
    rows[name] = measure(lambda: model.predict_on_batch(x), lambda: model.train_on_batch(x, y))
    rows[name]["input"] = f"{batch}x{side}x{side}"

from kseg.data import ShapesDataset
from kseg.data.pipelines.maskrcnn_pipeline import build_batch
from kseg.models.mask_rcnn.model import MaskRCNN
from kseg.models.mask_rcnn.presets import ShapesConfig

config = ShapesConfig()
batch, _ = build_batch(ShapesDataset(config.BATCH_SIZE, 128, 128, seed=0), config,
                       list(range(config.BATCH_SIZE)), rng=np.random.default_rng(0))
trainer = MaskRCNN("training", config, model_dir="/tmp/kseg_bench_backends")
trainer.compile(config.LEARNING_RATE)
detector = MaskRCNN("inference", config, model_dir="/tmp/kseg_bench_backends")
inputs = [batch["input_image"], batch["input_image_meta"]]
rows["maskrcnn"] = measure(lambda: detector.keras_model.predict_on_batch(inputs),
                           lambda: trainer.keras_model.train_on_batch(batch))
rows["maskrcnn"]["input"] = f"{config.BATCH_SIZE}x128x128"
print("RESULT " + json.dumps(rows))
"""


def installed(backend):
    return importlib.util.find_spec(BACKEND_MODULES[backend]) is not None


def run_backend(backend, repeats):
    """{model: {infer_ms, train_ms, first_s, input}} measured in a fresh process."""
    env = dict(os.environ, KERAS_BACKEND=backend, JAX_PLATFORMS="cpu",
               TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run([sys.executable, "-c", WORKER, str(ROOT), str(repeats)], cwd=ROOT,
                          env=env, capture_output=True, text=True)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    if proc.returncode or not lines:
        raise RuntimeError(f"{backend} run failed:\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT "):])


def format_table(results):
    header = ["model", "input", "backend", "infer ms/batch", "train ms/step", "first call s"]
    rows = []
    for model in ("unet", "fcn8s", "maskrcnn"):
        for backend, measured in results.items():
            r = measured[model]
            rows.append([model, r["input"], backend, f"{r['infer_ms']:.1f}",
                         f"{r['train_ms']:.1f}", f"{r['first_s']:.1f}"])
    widths = [max(len(str(v)) for v in col) for col in zip(header, *rows)]
    lines = ["  ".join(str(v).ljust(w) for v, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backends", nargs="+", default=list(BACKEND_MODULES),
                        choices=list(BACKEND_MODULES))
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per measure")
    args = parser.parse_args(argv)
    results = {}
    for backend in args.backends:
        if not installed(backend):
            print(f"{backend}: not installed, skipped")
            continue
        start = time.time()
        results[backend] = run_backend(backend, args.repeats)
        print(f"{backend}: measured in {time.time() - start:.0f} s", flush=True)
    print(f"\nCPU cores: {os.cpu_count()}")
    print(format_table(results))
    return results


if __name__ == "__main__":
    main()
