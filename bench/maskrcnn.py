"""Mask R-CNN speed, memory and accuracy-after-budget on this machine; prints a table.

    python bench/maskrcnn.py                      # everything (tens of minutes on 2 CPU cores)
    python bench/maskrcnn.py --only speed         # inference/training timings only
    python bench/maskrcnn.py --only shapes --budget 600
    python bench/maskrcnn.py --only car_damage --budget 600

Rows:
    inference ms/image at 512 and 1024 for ResNet50 and ResNet101 (random weights,
    Matterport-size heads, batch 1), training s/step (batch 1, 512, ResNet50),
    peak resident memory of the process after each row, and the mask mAP@0.5 reached
    on generated shapes (ShapesConfig) and on the car-damage val split (SmallDataConfig)
    after a fixed CPU training budget in seconds.
"""

import argparse
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def peak_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _median_ms(fn, repeats):
    fn()  # warm-up (graph building)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))


def bench_inference(backbone, size, repeats):
    from kseg import MaskRCNN, MaskRCNNConfig

    config = MaskRCNNConfig(NAME="bench", NUM_CLASSES=81, BACKBONE=backbone, IMAGES_PER_GPU=1,
                            IMAGE_MIN_DIM=size, IMAGE_MAX_DIM=size)
    model = MaskRCNN("inference", config, model_dir="/tmp/kseg_bench")
    image = np.random.default_rng(0).integers(0, 255, (size, size, 3), dtype=np.uint8)
    return _median_ms(lambda: model.detect([image]), repeats)


def bench_training_step(backbone, size, steps):
    from kseg import MaskRCNN, MaskRCNNConfig
    from kseg.data import ShapesDataset
    from kseg.data.pipelines.maskrcnn_pipeline import build_batch

    config = MaskRCNNConfig(NAME="bench", NUM_CLASSES=4, BACKBONE=backbone, IMAGES_PER_GPU=1,
                            IMAGE_MIN_DIM=size, IMAGE_MAX_DIM=size)
    batch, _ = build_batch(ShapesDataset(1, size, size), config, [0],
                           rng=np.random.default_rng(0))
    model = MaskRCNN("training", config, model_dir="/tmp/kseg_bench")
    model.compile(1e-3)
    return _median_ms(lambda: model.keras_model.train_on_batch(batch), steps) / 1000


class _Budget:
    """A Keras callback that stops training after `seconds`."""

    def __new__(cls, seconds):
        import keras

        class Stop(keras.callbacks.Callback):
            def on_train_begin(self, logs=None):
                self.start = time.time()

            def on_train_batch_end(self, batch, logs=None):
                if time.time() - self.start > seconds:
                    self.model.stop_training = True

        return Stop()


def map_after_budget(config, train, val, seconds, epochs=1000):
    from kseg import MaskRCNN
    from kseg.evaluate import evaluate_dataset_map

    logs = "/tmp/kseg_bench"
    model = MaskRCNN("training", config, model_dir=logs)
    model.train(train, None, config.LEARNING_RATE, epochs=epochs, layers="all", verbose=0,
                custom_callbacks=[_Budget(seconds)])
    config_class = type(config)
    inference = MaskRCNN("inference", config_class.from_dict(config.to_dict()), model_dir=logs)
    inference.load_weights(model.find_last(), by_name=True)
    result = evaluate_dataset_map(inference.detect, val, val.image_ids, verbose=0)
    return result["mask_map50"]


def bench_shapes(seconds):
    from kseg.data import ShapesDataset
    from kseg.models.mask_rcnn.presets import ShapesConfig

    config = ShapesConfig(STEPS_PER_EPOCH=50)
    return map_after_budget(config, ShapesDataset(2000, 128, 128, seed=1),
                            ShapesDataset(100, 128, 128, seed=2), seconds)


def bench_car_damage(seconds):
    from kseg.data import load_via
    from kseg.data.paths import dataset_path
    from kseg.models.mask_rcnn.presets import SmallDataConfig

    root = dataset_path("car_damage", "dataset")
    train, val = load_via(root, "train"), load_via(root, "val")
    config = SmallDataConfig(NAME="damage", NUM_CLASSES=2, STEPS_PER_EPOCH=25)
    return map_after_budget(config, train, val, seconds)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=["speed", "shapes", "car_damage"], default=None)
    p.add_argument("--budget", type=float, default=600, help="training seconds for mAP rows")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args(argv)
    rows = []
    if args.only in (None, "speed"):
        for backbone in ("resnet50", "resnet101"):
            for size in (512, 1024):
                ms = bench_inference(backbone, size, args.repeats)
                rows.append((f"inference {backbone} {size}x{size}", f"{ms:.0f} ms/image",
                             f"{peak_mb():.0f}"))
        step = bench_training_step("resnet50", 512, args.repeats)
        rows.append(("training resnet50 512x512 batch 1", f"{step:.2f} s/step", f"{peak_mb():.0f}"))
    if args.only in (None, "shapes"):
        value = bench_shapes(args.budget)
        rows.append((f"shapes mask mAP@0.5 after {args.budget:.0f} s", f"{value:.3f}",
                     f"{peak_mb():.0f}"))
    if args.only in (None, "car_damage"):
        value = bench_car_damage(args.budget)
        rows.append((f"car damage val mask mAP@0.5 after {args.budget:.0f} s", f"{value:.3f}",
                     f"{peak_mb():.0f}"))
    from kseg.evaluate import format_table

    print(format_table(rows, ["measure", "value", "peak RSS MB"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
