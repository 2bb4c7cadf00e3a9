"""Benchmark the semantic models on this machine's CPU: speed, memory, accuracy per budget.

    python bench/semantic.py                  # both models, 150 s training budget each
    python bench/semantic.py --budget 60 --models unet

Rows:
  unet: samples/smoke SmokeConfig U-Net, speed measured on 4 x 256 x 256 inputs;
  fcn8s: samples/road RoadConfig FCN-8s, speed measured on 1 x 512 x 512 inputs.
Columns: inference ms / image (predict_on_batch, after warm-up), training images / s
(train_on_batch), peak resident memory of the process (resource.getrusage ru_maxrss;
each model runs in its own subprocess), and the validation IoU of the foreground class
and mean IoU after training from scratch for `--budget` seconds at the sample's default
size (smoke: FSS split by source photo, 492 / 123 tiles; road: CamVid split by drive,
367 frames of 0001TP + 0016E5 / 101 of 0006R0; see the samples' READMEs), evaluated at
original image size.
"""

import argparse
import importlib.util
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
ROOT = Path(__file__).resolve().parents[1]
SPEED_SHAPES = {"unet": (4, 256), "fcn8s": (1, 512)}


def load_sample(name):
    """The module of `samples/<name>/<name>.py` (also used by bench/backends.py)."""
    path = ROOT / "samples" / name / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"{name}_sample", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setup(model_name):
    """(config, build function, train dataset, val dataset, augmentation) of a row."""
    from kseg.data.paths import dataset_path

    if model_name == "unet":
        from kseg.models.unet import build_unet

        smoke = load_sample("smoke")
        train, val = smoke.load_smoke_datasets(dataset_path("smoke_fss", "FSS"))
        config = smoke.SmokeConfig()
        return config, build_unet, train, val, smoke.augmentation(config.SEED)
    from kseg.models.fcn import build_fcn

    road = load_sample("road")
    train, val = road.load_road_datasets(dataset_path("road_camvid", "CamVid"))
    config = road.RoadConfig()
    return config, build_fcn, train, val, road.augmentation(config.SEED)


def measure_speed(model, batch, side, repeats=5):
    """(inference ms / image, training images / s) on random [batch, side, side, 3] data."""
    rng = np.random.default_rng(0)
    images = rng.uniform(0, 255, (batch, side, side, 3)).astype("float32")
    labels = rng.integers(0, 2, (batch, side, side)).astype("int32")
    model.predict_on_batch(images)
    start = time.perf_counter()
    for _ in range(repeats):
        model.predict_on_batch(images)
    infer_ms = (time.perf_counter() - start) * 1000 / (repeats * batch)
    model.train_on_batch(images, labels)
    start = time.perf_counter()
    for _ in range(repeats):
        model.train_on_batch(images, labels)
    return infer_ms, repeats * batch / (time.perf_counter() - start)


def train_for(model, config, train, augmentation, budget_s):
    """Train on `train` batches (the config's constant learning rate, the sample's
    augmentation) until `budget_s` seconds have passed -> (steps, images)."""
    from kseg.data.pipelines.semantic_pipeline import SemanticSequence
    from kseg.semantic.train import InMemoryDataset

    sequence = SemanticSequence(InMemoryDataset(train, config), config, shuffle=True,
                                augmentation=augmentation)
    steps, start = 0, time.perf_counter()
    while time.perf_counter() - start < budget_s:
        images, labels = sequence[steps % len(sequence)]
        model.train_on_batch(images, labels)
        steps += 1
        if steps % len(sequence) == 0:
            sequence.on_epoch_end()
    return steps, steps * config.BATCH_SIZE


def run_one(model_name, budget_s):
    """One benchmark row as a dict (run in a subprocess for a clean peak memory)."""
    from kseg.semantic.train import compile_semantic, evaluate_semantic

    config, build, train, val, augmentation = setup(model_name)
    batch, side = SPEED_SHAPES[model_name]
    infer_ms, train_ips = measure_speed(compile_semantic(build(config), config), batch, side)
    model = compile_semantic(build(config), config)
    steps, seen = train_for(model, config, train, augmentation, budget_s)
    results = evaluate_semantic(model, val, config)
    foreground = results["class_names"][1]
    return {"model": model_name, "input": f"{batch}x{side}x{side}", "infer_ms": infer_ms,
            "train_ips": train_ips, "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            / 1024, "params": model.count_params(), "budget_s": budget_s, "steps": steps,
            "images_seen": seen, "train_size": config.IMAGE_MAX_DIM, "class": foreground,
            "iou": results["iou"][foreground], "mean_iou": results["mean_iou"]}


def table(rows):
    from kseg.evaluate.semantic import format_table

    headers = ["model", "input", "params", "infer ms/img", "train img/s", "peak MB",
               "budget s", "steps", "class", "IoU", "mean IoU"]
    body = [[r["model"], r["input"], r["params"], f"{r['infer_ms']:.1f}", f"{r['train_ips']:.1f}",
             f"{r['peak_mb']:.0f}", f"{r['budget_s']:.0f}", r["steps"], r["class"],
             f"{r['iou']:.3f}", f"{r['mean_iou']:.3f}"] for r in rows]
    return format_table(body, headers)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="unet,fcn8s")
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per model")
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.one:
        print("RESULT " + json.dumps(run_one(args.one, args.budget)))
        return None
    rows = []
    for name in args.models.split(","):
        done = subprocess.run([sys.executable, __file__, "--one", name, "--budget",
                               str(args.budget)], capture_output=True, text=True, check=False)
        lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
        if not lines:
            raise RuntimeError(f"benchmark {name} failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(lines[-1][len("RESULT "):]))
    print(f"CPU cores: {os.cpu_count()}; keras backend: "
          f"{os.environ.get('KERAS_BACKEND', 'tensorflow')}")
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
