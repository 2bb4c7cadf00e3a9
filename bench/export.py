"""Latency of the exported SavedModels vs the Keras models they come from, per image.

    KERAS_BACKEND=tensorflow python bench/export.py [--runs 5] [--models maskrcnn,unet,fcn]

Models (random weights): Mask R-CNN with the shapes config (128 x 128, resnet_tiny;
DETECTION_MIN_CONFIDENCE=0 so random weights still give detections to unmold), U-Net
(depth 4, 64 filters) and FCN-8s (VGG16, fc6/fc7 4096) at 256 x 256. Each is timed on
a 240 x 320 uint8 image, batch 1:

    keras        `MaskRCNN.detect([image])` / `predict_semantic(model, config, [image])`:
                 NumPy molding + `predict_on_batch` + NumPy unmolding (full-size masks)
    saved_model  `signatures["serving_default"](images=uint8[1, H, W, 3])`: the same
                 work inside one TensorFlow graph

After one warm-up call each, the two are called in turn `--runs` times and the
medians are printed in milliseconds.
"""

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

IMAGE_SHAPE = (240, 320, 3)


def interleaved_ms(fns, runs):
    """Median wall time in ms of each of `fns`, called in turn `runs` times after one
    warm-up each (interleaving keeps a shared machine's load changes from favouring one)."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(runs):
        for fn, bucket in zip(fns, times):
            start = time.perf_counter()
            fn()
            bucket.append((time.perf_counter() - start) * 1000)
    return [statistics.median(bucket) for bucket in times]


def build(kind):
    """(exportable model, config, keras pipeline fn(image)) for `kind`."""
    import keras

    keras.utils.set_random_seed(0)
    if kind == "maskrcnn":
        from kseg.models.mask_rcnn.model import MaskRCNN
        from kseg.models.mask_rcnn.presets import ShapesConfig

        config = ShapesConfig(IMAGES_PER_GPU=1, DETECTION_MIN_CONFIDENCE=0.0)
        model = MaskRCNN("inference", config, model_dir="logs")
        return model, config, lambda image: model.detect([image])
    from kseg.config import FCNConfig, UNetConfig
    from kseg.semantic.predict import predict_semantic

    if kind == "unet":
        from kseg.models.unet import build_unet

        config = UNetConfig(NUM_CLASSES=2, IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256)
        model = build_unet(config)
    else:
        from kseg.models.fcn import build_fcn

        config = FCNConfig(NUM_CLASSES=2, IMAGE_MIN_DIM=256, IMAGE_MAX_DIM=256)
        model = build_fcn(config)
    return model, config, lambda image: predict_semantic(model, config, [image], batch_size=1)


def bench(kind, runs, folder):
    """One table row: (kind, keras ms, saved_model ms, export seconds, detections)."""
    import tensorflow as tf

    from kseg.export import export_saved_model

    model, config, keras_fn = build(kind)
    image = np.random.default_rng(0).integers(0, 256, IMAGE_SHAPE, dtype=np.uint8)
    start = time.perf_counter()
    path = export_saved_model(model, Path(folder) / kind, config=config)
    export_s = time.perf_counter() - start
    serve = tf.saved_model.load(path).signatures["serving_default"]
    batch = tf.constant(image[None])
    keras_ms, saved_ms = interleaved_ms(
        [lambda: keras_fn(image),
         lambda: {k: v.numpy() for k, v in serve(images=batch).items()}], runs)
    detections = int(serve(images=batch)["num_detections"][0]) if kind == "maskrcnn" else None
    return kind, keras_ms, saved_ms, export_s, detections


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="timed calls per model")
    parser.add_argument("--models", default="maskrcnn,unet,fcn")
    args = parser.parse_args(argv)
    import tensorflow as tf

    print(f"TensorFlow {tf.__version__}, {os.cpu_count()} CPU cores, "
          f"GPUs: {len(tf.config.list_physical_devices('GPU'))}, image {IMAGE_SHAPE}, "
          f"median of {args.runs}")
    print(f"{'model':10} {'keras ms':>10} {'saved_model ms':>15} {'speed-up':>9} {'export s':>9}")
    with tempfile.TemporaryDirectory() as folder:
        for kind in args.models.split(","):
            name, keras_ms, saved_ms, export_s, count = bench(kind, args.runs, folder)
            note = "" if count is None else f"  ({count} detections)"
            print(f"{name:10} {keras_ms:10.1f} {saved_ms:15.1f} {keras_ms / saved_ms:8.2f}x "
                  f"{export_s:9.1f}{note}")


if __name__ == "__main__":
    main()
